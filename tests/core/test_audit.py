"""The audit log: append-only, hash-chained per organisation, and tamper-evident."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import ONE_STATEMENT_ROWS, AuditEntry, ChainHead
from ngo_kit.chain_keys import RowHashing
from ngo_kit.cli import main
from ngo_kit.outbox import OutboxRow
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import TEST_SECRET


def write_entries(kit: Kit, org: OrgRead, count: int) -> None:
    for i in range(count):
        with kit.begin(org=org, actor=SYSTEM) as tx:
            tx.audit("test.wrote", "thing", i, f"entry {i}", data={"i": i})


def rows(kit: Kit, org: OrgRead) -> list[AuditEntry]:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        return list(
            tx.session.scalars(
                sa.select(AuditEntry).where(AuditEntry.org_id == org.id).order_by(AuditEntry.seq)
            )
        )


def test_entries_record_who_what_when_and_chain_per_organisation(
    kit: Kit, org: OrgRead, other_org: OrgRead
) -> None:
    person = uuid.uuid4()
    with kit.begin(org=org, actor=person) as tx:
        tx.audit("thing.done", "thing", "t-1", "did the thing", data={"n": 1})
    entries = rows(kit, org)
    last = entries[-1]
    assert (last.actor, last.action, last.target_id, last.summary) == (
        str(person),
        "thing.done",
        "t-1",
        "did the thing",
    )
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert rows(kit, other_org)[0].seq == 1  # each organisation has its own chain
    assert kit.verify() == []


@pytest.mark.parametrize("batch", [1, 3, ONE_STATEMENT_ROWS, ONE_STATEMENT_ROWS + 1])
def test_a_unit_of_work_appends_its_entries_in_order_and_moves_the_head_to_the_last(
    kit: Kit, org: OrgRead, batch: int
) -> None:
    # PostgreSQL writes up to ONE_STATEMENT_ROWS entries and the head's move in one statement,
    # more as an insert and an update; every database must end with the same chain.
    write_entries(kit, org, 2)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        for i in range(batch):
            tx.audit("test.batch", "thing", i, f"batch entry {i}", data={"i": i, "名": "值"})
    entries = rows(kit, org)
    assert [e.target_id for e in entries[-batch:]] == [str(i) for i in range(batch)]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    with kit.begin(org=org, actor=SYSTEM) as tx:
        head = tx.session.get(ChainHead, (org.id, "audit"))
        assert head is not None
        assert (head.seq, head.hash) == (entries[-1].seq, entries[-1].hash)
    assert kit.verify() == []
    write_entries(kit, org, 1)  # the next unit of work continues from the moved head
    assert kit.verify() == []


JSON_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=60,
)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | JSON_TEXT
    | st.sampled_from(['"seq":1', "\\", "seq", "名字", "🙂"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=st.lists(
        st.tuples(JSON_TEXT, st.dictionaries(JSON_TEXT, JSON_VALUE, max_size=4)),
        min_size=1,
        max_size=3,
    )
)
def test_any_content_chains_to_hashes_verify_recomputes(
    kit: Kit, org: OrgRead, entries: list[tuple[str, dict[str, object]]]
) -> None:
    # On PostgreSQL the database computes each hash from the canonical bytes ngo-kit cut around
    # seq; whatever the content (quotes, escapes, any script, a "seq" key of its own), verify
    # must get the same hashes in Python.
    with kit.begin(org=org, actor=SYSTEM) as tx:
        for summary, data in entries:
            tx.audit("test.any", "thing", summary[:100], summary, data=data)
    assert kit.verify() == []


def test_a_chain_s_first_append_creates_its_head_and_writes_the_messages_once(
    kit: Kit, org: OrgRead
) -> None:
    with kit.engine.begin() as conn:  # as if the organisation had never written to the chain
        conn.execute(sa.delete(AuditEntry).where(AuditEntry.org_id == org.id))
        conn.execute(sa.delete(ChainHead).where(ChainHead.org_id == org.id))
    with kit.begin(org=org, actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Hello")
        tx.audit("test.first", "thing", 1, "first entry")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.connection.scalars(sa.select(OutboxRow.id)).all() == [message_id]
        [entry] = tx.session.scalars(sa.select(AuditEntry).where(AuditEntry.org_id == org.id))
        head = tx.session.get(ChainHead, (org.id, "audit"))
        assert head is not None
        assert (entry.seq, entry.prev_hash, head.seq, head.hash) == (1, "0" * 64, 1, entry.hash)
    assert kit.verify() == []


def test_a_hash_the_database_computes_differently_is_never_committed(
    kit: Kit, org: OrgRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kit.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL computes chain hashes in the database")
    before = rows(kit, org)
    with monkeypatch.context() as patched:  # as if ngo-kit and the database disagreed
        patched.setattr(RowHashing, "hash", lambda self, prev, seq: "f" * 64)
        with (
            pytest.raises(RuntimeError, match="nothing was committed"),
            kit.begin(org=org, actor=SYSTEM) as tx,
        ):
            tx.send("email", "ada@example.org", "Hello")
            tx.audit("test.disagreed", "thing", 1, "never written")
    assert [e.id for e in rows(kit, org)] == [e.id for e in before]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.connection.scalar(sa.select(sa.func.count()).select_from(OutboxRow)) == 0
    assert kit.verify() == []


def test_an_altered_row_is_named(kit: Kit, org: OrgRead) -> None:
    write_entries(kit, org, 5)
    victim = rows(kit, org)[3]
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(AuditEntry).where(AuditEntry.id == victim.id).values(summary="nothing to see")
        )
    problems = kit.verify()
    assert len(problems) == 1
    assert f"row {victim.seq} (id {victim.id}) was altered" in problems[0].message


def test_a_deleted_row_is_named(kit: Kit, org: OrgRead) -> None:
    write_entries(kit, org, 5)
    victim = rows(kit, org)[2]
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(AuditEntry).where(AuditEntry.id == victim.id))
    problems = kit.verify()
    assert len(problems) == 1
    assert f"row(s) {victim.seq}..{victim.seq} were deleted" in problems[0].message


def test_deleting_the_newest_row_is_caught_by_the_chain_head(kit: Kit, org: OrgRead) -> None:
    write_entries(kit, org, 3)
    newest = rows(kit, org)[-1]
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(AuditEntry).where(AuditEntry.id == newest.id))
    [problem] = kit.verify()
    assert f"row(s) {newest.seq}..{newest.seq} were deleted from the end" in problem.message


def keyed_hash(kit: Kit, prev: str, payload: dict[str, object]) -> dict[str, str]:
    """A row's hash as someone holding the newest chain key computes it, with its key id."""
    key_id = kit.chain_keys.signing_id
    return {"key_id": key_id, "hash": kit.chain_keys.hash(key_id, prev, payload)}


def test_a_row_inserted_in_the_middle_is_named(kit: Kit, org: OrgRead) -> None:
    # even by someone holding the chain key: the chain's links and numbering name it
    write_entries(kit, org, 4)
    entries = rows(kit, org)
    place = entries[2]  # insert a forged row before this one, renumbering the rest
    forged_id = uuid.uuid4()
    with kit.engine.begin() as conn:
        for e in reversed(entries[2:]):
            conn.execute(sa.update(AuditEntry).where(AuditEntry.id == e.id).values(seq=e.seq + 1))
        payload = {
            "id": forged_id,
            "org_id": org.id,
            "seq": place.seq,
            "at": place.at,
            "actor": "system",
            "action": "forged",
            "target_type": "thing",
            "target_id": "x",
            "summary": "forged",
            "data": {},
        }
        prev = entries[1].hash
        conn.execute(
            sa.insert(AuditEntry).values(
                **payload, prev_hash=prev, **keyed_hash(kit, prev, payload)
            )
        )
    [problem] = kit.verify()
    assert f"(id {forged_id}) was inserted" in problem.message


def test_a_row_appended_past_the_chain_head_is_named(kit: Kit, org: OrgRead) -> None:
    write_entries(kit, org, 2)
    last = rows(kit, org)[-1]
    payload = {
        "id": uuid.uuid4(),
        "org_id": org.id,
        "seq": last.seq + 1,
        "at": last.at,
        "actor": "system",
        "action": "forged",
        "target_type": "thing",
        "target_id": "x",
        "summary": "forged",
        "data": {},
    }
    with kit.engine.begin() as conn:
        conn.execute(
            sa.insert(AuditEntry).values(
                **payload, prev_hash=last.hash, **keyed_hash(kit, last.hash, payload)
            )
        )
    [problem] = kit.verify()
    assert "inserted after the chain head" in problem.message


def test_ngo_kit_verify_exits_non_zero_on_tampering(
    kit: Kit, org: OrgRead, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_entries(kit, org, 2)
    url = kit.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv(
        "NGO_KIT_SECRET_KEYS", TEST_SECRET
    )  # the chain keys the rows were hashed with
    main(["--database-url", url, "--no-autoload", "--module", "core", "verify"])
    assert capsys.readouterr().out.startswith("ok:")
    with kit.engine.begin() as conn:
        conn.execute(sa.update(AuditEntry).where(AuditEntry.seq == 2).values(action="rewritten"))
    with pytest.raises(SystemExit) as failed:
        main(["--database-url", url, "--no-autoload", "--module", "core", "verify"])
    assert failed.value.code == 1
    assert "FAILED audit" in capsys.readouterr().err


def test_concurrent_writers_keep_one_unbroken_chain(kit: Kit, org: OrgRead) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with kit.begin(org=org, actor=SYSTEM) as tx:
                    tx.audit("test.concurrent", "thing", f"{n}-{i}", "written concurrently")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = rows(kit, org)
    assert sum(1 for e in entries if e.action == "test.concurrent") == 80
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    with kit.begin(org=org, actor=SYSTEM) as tx:
        head = tx.session.scalar(
            sa.select(ChainHead.seq).where(ChainHead.org_id == org.id, ChainHead.chain == "audit")
        )
    assert head == len(entries)
    assert kit.verify() == []


def test_writers_locking_rows_before_or_after_auditing_never_deadlock(
    kit: Kit, org: OrgRead
) -> None:
    """An event hook may lock rows after its caller audited; the audit head must not deadlock it."""
    from ngo_kit.audit import lock_head

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                with kit.begin(org=org, actor=SYSTEM) as tx:
                    if n % 2:
                        tx.audit("test.first", "thing", f"{n}-{i}", "audit, then lock a row")
                        lock_head(tx.connection, org.id, "shared-counter")
                    else:
                        lock_head(tx.connection, org.id, "shared-counter")
                        tx.audit("test.second", "thing", f"{n}-{i}", "lock a row, then audit")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert kit.verify() == []
