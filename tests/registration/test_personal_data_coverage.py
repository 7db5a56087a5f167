"""Every table that holds a person's id is covered by the person's export and by erasure.

The rule (``ngo_kit.db.holds_person_id``): a column named ``member_id``, ``user_id``,
``person_id``, ``account_id`` or ``actor_id`` holds a person's id unless its ``info`` says
``{"person_id": False}``; a column of another name that holds one says ``{"person_id": True}``.
The tables are read from the SQLAlchemy metadata of a kit with every built-in module and every
installed plugin, so a new table is covered without anyone listing it here. Each such table must
be claimed by a ``PersonalData`` registered through ``ngo_kit_register_personal_data`` (which
brings an export and an erasure); then one person who has used every module is exported and
erased: each claiming section shows up in the export, and no trace of the free text the person
left behind survives the erasure in any text or JSON column of any table.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit
from ngo_kit.db import holds_person_id
from ngo_kit.modules.registration.service import personal_data_registry
from ngo_kit.testing import KitFactory

MARK = "trace-7q3x"  # planted in every free-text field a person fills in


def _installed_plugins() -> list[object]:
    """The plugins of the other installed distributions (the first-party ones in ``plugins/``)."""
    return [
        ep.load()
        for ep in importlib.metadata.entry_points(group="ngo_kit")
        if ep.dist is not None and ep.dist.name.replace("_", "-").lower() != "ngo-kit"
    ]


@pytest.fixture
def full_kit(kit_factory: KitFactory) -> Kit:
    """Every built-in module and every installed plugin."""
    return kit_factory(plugins=_installed_plugins())


def person_tables(kit: Kit) -> dict[str, list[str]]:
    """Each table of the kit with a column holding a person's id, and those columns."""
    found: dict[str, list[str]] = {}
    for table in kit.metadata().sorted_tables:
        columns = [c.name for c in table.columns if holds_person_id(c)]
        if columns:
            found[table.name] = columns
    return found


def claimed_tables(kit: Kit) -> dict[str, str]:
    """Each table a registered ``PersonalData`` covers, with the section that covers it."""
    return {table: part.name for part in personal_data_registry(kit) for table in part.tables}


def test_the_rule_finds_person_columns_and_not_points_accounts(full_kit: Kit) -> None:
    found = person_tables(full_kit)
    assert found["volunteer_signup"] == ["user_id"]
    assert found["points_redemption"] == ["member_id"]
    assert found["core_membership"] == ["actor_id"]
    assert "points_entry" not in found  # its account_id names a points account
    assert "hours_points_award" in found  # plugins' tables are read too


def test_every_table_with_a_person_id_is_covered_by_export_and_erasure(full_kit: Kit) -> None:
    claimed = claimed_tables(full_kit)
    missing = sorted(set(person_tables(full_kit)) - set(claimed))
    assert not missing, (
        "tables holding a person's id that no PersonalData (ngo_kit_register_personal_data) "
        f"covers: {missing}"
    )
    unknown = sorted(set(claimed) - set(full_kit.metadata().tables))
    assert not unknown, f"PersonalData claims tables the kit does not have: {unknown}"


def _everything(kit: Kit) -> tuple[uuid.UUID, str]:
    """A person who used every module, leaving ``MARK`` in each free-text field they fill in."""
    org = kit.create_organisation("all-of-it", "All of it")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.define_field(name="motto", kind="text")
        person = tx.registration.register(
            email=f"{MARK}@example.org",
            display_name=f"Name {MARK}",
            fields={"motto": f"motto {MARK}"},
        ).id
        tx.volunteer.save_profile(
            user_id=person,
            city=f"city {MARK}",
            emergency_contact_name=f"contact {MARK}",
            emergency_contact_phone="13800138000",
        )
        tx.volunteer.approve(person)
        activity = tx.volunteer.create_activity(title="Sorting")
        shift = tx.volunteer.create_shift(
            activity_id=activity.id,
            starts_at=start,
            ends_at=start + dt.timedelta(hours=2),
            capacity=3,
        )
        tx.volunteer.sign_up(shift.id, person)
        tx.volunteer.record_hours(person, "3", served_on=dt.date(2026, 5, 1))
        tx.volunteer.issue_certificate(person)
        task = tx.volunteer.create_task(title="Fold leaflets", quantity=Decimal(100))
        assignment = tx.volunteer.assign(task.id, person, 10)
        tx.points.award(person, 50, reason="welcome", key="welcome")
        reward = tx.points.add_reward(code="mug", name="Mug", price=10)
        redemption = tx.points.redeem(reward_id=reward.id, member_id=person)
    with kit.begin(org=org, actor=person) as tx:
        tx.volunteer.claim_hours(served_on=dt.date(2026, 5, 2), hours=2, description=MARK)
        tx.volunteer.accept_assignment(assignment.id)
        tx.volunteer.submit_assignment(assignment.id, note=f"note {MARK}")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        # Staff's words, not the person's: the audit log keeps a fulfilment note, on purpose.
        tx.points.fulfil(redemption.id, note="posted to the person's home address")
    return person, org.slug


def _rows_about(kit: Kit, person: uuid.UUID) -> dict[str, int]:
    counts = {}
    metadata = kit.metadata()
    with kit.engine.connect() as conn:
        for name, columns in person_tables(kit).items():
            table = metadata.tables[name]
            where = sa.or_(*(table.c[c] == person for c in columns))
            counts[name] = (
                conn.scalar(sa.select(sa.func.count()).select_from(table).where(where)) or 0
            )
    return counts


def _traces(kit: Kit) -> list[str]:
    """``table.column`` of every text or JSON value that still holds ``MARK``."""
    found = []
    with kit.engine.connect() as conn:
        for table in kit.metadata().sorted_tables:
            texts = [c for c in table.columns if isinstance(c.type, sa.String | sa.Text | sa.JSON)]
            if not texts:
                continue
            for row in conn.execute(sa.select(*texts)):
                for column, value in zip(texts, row, strict=True):
                    if value is not None and MARK in json.dumps(value, default=str):
                        found.append(f"{table.name}.{column.name}")
    return sorted(set(found))


def test_one_person_in_every_module_is_exported_in_full_and_erased_without_trace(
    full_kit: Kit,
) -> None:
    person, slug = _everything(full_kit)
    rows = _rows_about(full_kit, person)
    claimed = claimed_tables(full_kit)
    with full_kit.begin(org=slug, actor=SYSTEM) as tx:
        exported: dict[str, Any] = tx.registration.export_personal_data(person)
    section = exported["organisations"][slug]
    used = {name for name, count in rows.items() if count}
    assert {claimed.get(t, t) for t in used} <= set(section), (used, sorted(section))
    assert section["points"]["account"] == {"balance": 40, "earned": 50}
    assert [r["status"] for r in section["points"]["redemptions"]] == ["fulfilled"]
    assert section["volunteer"]["claims"][0]["description"] == MARK
    assert section["volunteer"]["tasks"][0]["note"] == f"note {MARK}"
    assert len(section["volunteer"]["signups"]) == len(section["volunteer"]["certificates"]) == 1
    assert _traces(full_kit)  # the person's words are in the database before the erasure
    with full_kit.begin(org=slug, actor=SYSTEM) as tx:
        tx.registration.erase(person)
    assert _traces(full_kit) == []
    with full_kit.begin(org=slug, actor=SYSTEM) as tx:
        after = tx.registration.export_personal_data(person)["organisations"][slug]
    assert [r["note"] for r in after["points"]["redemptions"]] == [""]
    assert after["points"]["account"] == {"balance": 40, "earned": 50}  # ids and amounts stay
    assert full_kit.verify() == []  # ledgers and chains are whole: erasure pseudonymises
