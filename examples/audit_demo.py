"""A first look at ngo-kit's core: an organisation, audited changes, and a verified chain.

Run with ``python examples/audit_demo.py``. It uses a fresh SQLite file
under build/demo/, creates the Rainbow Children's Charity with its owner and a staff member,
makes some audited changes, then verifies the hash chain, tampers with one row and shows that
verification names it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit, PermissionDenied
from ngo_kit.audit import AuditEntry

HERE = Path(__file__).resolve().parent.parent / "build" / "demo"


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    kit = Kit(f"sqlite:///{HERE / 'demo.db'}", modules=[])
    kit.upgrade()
    print(f"database: {HERE / 'demo.db'} (migrated)")

    owner, staff = uuid.uuid4(), uuid.uuid4()
    org = kit.create_organisation(
        "rainbow",
        "彩虹儿童关爱中心 Rainbow Children's Charity",
        owner=owner,
        timezone="Asia/Shanghai",
        locale="zh_CN",
    )
    print(f"organisation: {org.name} ({org.slug}, {org.timezone}, {org.locale})")

    with kit.begin(org="rainbow", actor=owner) as tx:
        tx.tenancy.add_member(staff, "staff")
        tx.tenancy.create_role("warehouse", "Warehouse volunteers", ("members.view",))
        tx.audit("demo.note", "note", 1, "opening stock count planned for Saturday")
    print("owner added a staff member, a custom role and a note")

    try:
        with kit.begin(org="rainbow", actor=staff) as tx:
            tx.tenancy.create_role("hackers", "", ())
    except PermissionDenied as err:
        print(f"staff tried to create a role and was refused: {err}")

    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        rows = tx.session.execute(
            sa.select(AuditEntry.seq, AuditEntry.actor, AuditEntry.action, AuditEntry.summary)
            .where(AuditEntry.org_id == org.id)
            .order_by(AuditEntry.seq)
        ).all()
    print("audit log:")
    for seq, actor, action, summary in rows:
        who = "owner" if actor == str(owner) else actor
        print(f"  #{seq:<2} {who:<8} {action:<20} {summary}")

    problems = kit.verify()
    print(f"verify: {problems or 'ok, the chain is whole'}")

    with kit.engine.begin() as conn:  # what someone with database access might try
        conn.execute(
            sa.update(AuditEntry).where(AuditEntry.seq == 2).values(summary="nothing happened")
        )
    print("tampered with audit row #2 directly in the database...")
    for problem in kit.verify():
        print(f"verify: {problem}")
    kit.dispose()


if __name__ == "__main__":
    main()
