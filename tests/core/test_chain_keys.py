"""Keyed chains: a database writer without the chain key cannot forge rows; keys rotate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from chain_forgery import Row, chain_rows, rewrite

from ngo_kit import SYSTEM, ConfigurationError, Kit
from ngo_kit.audit import AUDIT_CHECK, AuditEntry
from ngo_kit.chain_keys import UNKEYED
from ngo_kit.modules.points import POINTS_CHAIN_CHECK
from ngo_kit.modules.points.models import PointsAccount
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, settings_for_tests

OLD_KEY = "2025:an-old-chain-key-of-more-than-32-characters"
NEW_KEY = "2026:a-new-chain-key-of-more-than-32-characters"


@pytest.fixture
def same_database() -> Iterator[Any]:
    """``open(kit, **settings)``: another Kit on ``kit``'s database with other settings."""
    opened: list[Kit] = []

    def open_(kit: Kit, modules: list[str] | None = None, **overrides: Any) -> Kit:
        url = kit.engine.url.render_as_string(hide_password=False)
        other = Kit(
            settings=settings_for_tests(url, **overrides),
            modules=modules if modules is not None else list(kit.modules),
            autoload=False,
        )
        opened.append(other)
        return other

    yield open_
    for kit in opened:
        kit.dispose()


def award(kit: Kit, org: OrgRead, member: uuid.UUID, points: int) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(member, points, reason="shift")


def write_audit(kit: Kit, org: OrgRead, count: int) -> None:
    for i in range(count):
        with kit.begin(org=org, actor=SYSTEM) as tx:
            tx.audit("test.wrote", "thing", i, f"entry {i}")


@pytest.mark.parametrize("label", ["as the rows before", UNKEYED])
def test_a_forged_award_with_every_later_hash_recomputed_is_caught(
    kit_factory: KitFactory, label: str
) -> None:
    # A writer adds +1000 points in the middle of the ledger (with the issuance leg that
    # balances it and the account's new balance and earned total), renumbers the rest and
    # recomputes every later hash and the head with SHA-256: all that is possible without the
    # chain key. Unkeyed chains verified this clean.
    kit = kit_factory(modules=["points"])
    org = kit.create_organisation("forged", "Forged")
    m = uuid.uuid4()
    for points in (10, 20, 30):
        award(kit, org, m, points)
    assert kit.verify() == []
    entries = chain_rows(kit, POINTS_CHAIN_CHECK, org.id)
    first_award = [e for e in entries if e["txn_id"] == entries[0]["txn_id"]]

    def forge(rows: list[Row]) -> list[Row]:
        txn = uuid.uuid4()
        legs = [{**leg, "id": uuid.uuid4(), "txn_id": txn} for leg in first_award]
        for leg in legs:
            leg["amount"] = 1000 if leg["amount"] > 0 else -1000
        return rows[:2] + legs + rows[2:]

    forged = rewrite(
        kit,
        POINTS_CHAIN_CHECK,
        org.id,
        forge,
        key_id=None if label != UNKEYED else UNKEYED,
    )
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(PointsAccount)
            .where(PointsAccount.member_id == m)
            .values(balance=1060, earned=1060)
        )
    problems = [p for p in kit.verify() if p.check == "points.ledger"]
    assert len(problems) == 1
    assert f"row 3 (id {forged[2]['id']}) was altered" in problems[0].message


def test_rows_under_an_old_key_verify_after_a_new_key_is_added(
    kit_factory: KitFactory, same_database: Any
) -> None:
    first = kit_factory(modules=["points"], chain_keys=[OLD_KEY])
    org = first.create_organisation("rotating", "Rotating")
    m = uuid.uuid4()
    award(first, org, m, 10)
    rotated = same_database(first, chain_keys=[NEW_KEY, OLD_KEY])
    award(rotated, org, m, 20)
    assert [e["key_id"] for e in chain_rows(rotated, POINTS_CHAIN_CHECK, org.id)] == [
        "2025",
        "2025",
        "2026",
        "2026",
    ]
    assert rotated.verify() == []
    retired = same_database(first, chain_keys=[NEW_KEY])
    problems = {p.check: p.message for p in retired.verify()}
    assert set(problems) == {"audit", "points.ledger"}  # the organisation's creation is audited
    for message in problems.values():
        assert "row 1 " in message
        assert "hashed with chain key '2025', which is not among the chain keys" in message


def test_rows_written_before_chains_were_keyed_still_verify(
    kit: Kit, org: OrgRead, same_database: Any
) -> None:
    write_audit(kit, org, 3)
    # as an upgraded database holds them: plain SHA-256, the migration's key id ``sha256``
    rewrite(kit, AUDIT_CHECK, org.id, lambda rows: [{**r, "key_id": UNKEYED} for r in rows])
    assert {r["key_id"] for r in chain_rows(kit, AUDIT_CHECK, org.id)} == {UNKEYED}
    assert kit.verify() == []
    write_audit(kit, org, 2)  # new rows are keyed and follow on
    assert [r["key_id"] for r in chain_rows(kit, AUDIT_CHECK, org.id)][-2:] == [
        kit.chain_keys.signing_id
    ] * 2
    assert kit.verify() == []


def test_an_unkeyed_row_after_keyed_ones_is_named(kit: Kit, org: OrgRead) -> None:
    write_audit(kit, org, 3)
    victim = chain_rows(kit, AUDIT_CHECK, org.id)[1]
    rewrite(
        kit,
        AUDIT_CHECK,
        org.id,
        lambda rows: [
            {**r, "summary": "rewritten"} if r["id"] == victim["id"] else r for r in rows
        ],
        key_id=UNKEYED,
    )
    [problem] = kit.verify()
    assert f"row 2 (id {victim['id']}) was altered or inserted: it has no keyed hash" in str(
        problem
    )


def test_keys_come_from_the_chain_keys_setting_or_from_the_secret_keys(
    kit_factory: KitFactory, same_database: Any
) -> None:
    kit = kit_factory(modules=[], chain_keys=[NEW_KEY, OLD_KEY])
    assert (kit.chain_keys.signing_id, list(kit.chain_keys.keys)) == ("2026", ["2026", "2025"])
    derived = same_database(kit, modules=[], chain_keys=[], secret_keys=["one" * 11, "two" * 11])
    again = same_database(kit, modules=[], chain_keys=[], secret_keys=["two" * 11])
    ids = list(derived.chain_keys.keys)
    assert len(ids) == 2 and all(i.startswith("s") and len(i) == 9 for i in ids)
    assert list(again.chain_keys.keys) == ids[1:]  # the same secret gives the same key


@pytest.mark.parametrize(
    ("keys", "environment", "says"),
    [
        (["no-separator"], "test", "chain key #1 of NGO_KIT_CHAIN_KEYS must be ID:SECRET"),
        (["sha256:reserved-id-is-refused"], "test", "not 'sha256'"),
        (["a id:space-in-the-id"], "test", "must be ID:SECRET"),
        (["k:one-secret", "k:another-secret"], "test", "chain key id 'k' is listed twice"),
        (["k:short"], "production", "chain key 'k' is shorter than 32 characters"),
    ],
)
def test_a_malformed_chain_key_is_refused_at_start_up(
    kit_factory: KitFactory, keys: list[str], environment: str, says: str
) -> None:
    overrides: dict[str, Any] = {"chain_keys": keys, "environment": environment}
    if environment == "production":
        overrides["secret_keys"] = ["a-production-secret-of-more-than-32-chars"]
    with pytest.raises(ConfigurationError) as refused:
        kit_factory(modules=[], upgrade=False, **overrides)
    assert refused.value.check == "core.E020"
    assert says in refused.value.message
    assert "NGO_KIT_CHAIN_KEYS" in refused.value.message or "chain key" in refused.value.message
    assert refused.value.message_in("zh_CN") != refused.value.message_in("en")


def test_the_environment_lists_chain_keys_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from ngo_kit.settings import KitSettings

    monkeypatch.setenv("NGO_KIT_CHAIN_KEYS", f"{NEW_KEY}, {OLD_KEY}")
    listed = [k.get_secret_value() for k in KitSettings().chain_keys]
    assert listed == [NEW_KEY, OLD_KEY]
    assert NEW_KEY not in repr(KitSettings())  # secrets stay out of logs


def test_a_row_s_key_id_is_stored_with_it(kit: Kit, org: OrgRead) -> None:
    write_audit(kit, org, 1)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        key_ids = set(tx.session.scalars(sa.select(AuditEntry.key_id)))
    assert key_ids == {kit.chain_keys.signing_id}


def test_a_chained_table_without_key_id_is_refused_at_start_up(kit_factory: KitFactory) -> None:
    from ngo_kit import hookimpl
    from ngo_kit.audit import ChainCheck
    from ngo_kit.plugins import Registrar

    meals = sa.Table(
        "meals_serving",
        sa.MetaData(),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.Uuid),
        sa.Column("seq", sa.BigInteger),
        sa.Column("prev_hash", sa.String(64)),
        sa.Column("hash", sa.String(64)),
    )

    class Meals:
        ngo_kit_plugin_name = "meals"

        @hookimpl
        def ngo_kit_register_checks(self, register: Registrar[Any]) -> None:
            register(ChainCheck("meals", "meals", meals, ("id", "org_id", "seq")))

    with pytest.raises(ConfigurationError) as refused:
        kit_factory(modules=[], plugins=[Meals()], upgrade=False)
    assert refused.value.check == "core.E021"
    assert "meals_serving" in refused.value.message and "key_id" in refused.value.message
