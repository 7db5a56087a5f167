"""The ledger: award, deduct, transfer, reverse, idempotency, statements, verify."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from points_helpers import as_system, ledger_invariants, member

from ngo_kit import SYSTEM, InsufficientPoints, Kit, NotFound, ValidationFailed
from ngo_kit.context import Context
from ngo_kit.modules.points import NotReversible, TransfersDisabled
from ngo_kit.modules.points.models import PointsAccount, PointsEntry, PointsTxn
from ngo_kit.tenancy import OrgRead


def test_award_opens_the_account_and_balance_reads_the_account_row(
    pkit: Kit, porg: OrgRead
) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.balance(m) == 0
        first = tx.points.award(m, 50, reason="welcome")
        second = tx.points.award(member_id=m, points=25, reason="shift")
        assert (first.balance_after, second.balance_after) == (50, 75)
        assert tx.points.balance(m) == 75
        assert tx.points.standing(m).earned == 75
    ledger_invariants(pkit)


def test_every_operation_writes_entries_that_sum_to_zero(pkit: Kit, porg: OrgRead) -> None:
    a, b = member(), member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.configure(transfers_allowed=True)
        award = tx.points.award(a, 100)
        deduct = tx.points.deduct(a, 10)
        transfer = tx.points.transfer(from_member=a, to_member=b, points=20)
        for txn in (award, deduct, transfer):
            amounts = tx.session.scalars(
                sa.select(PointsEntry.amount).where(PointsEntry.txn_id == txn.id)
            ).all()
            assert len(amounts) == 2 and sum(amounts) == 0
    ledger_invariants(pkit)


def test_same_key_returns_the_first_result_and_writes_nothing_more(
    pkit: Kit, porg: OrgRead
) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        first = tx.points.award(m, 40, reason="welcome", key="welcome:1")
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        again = tx.points.award(m, 40, reason="welcome", key="welcome:1")
        assert again == first
        assert tx.points.balance(m) == 40
        assert tx.session.scalar(sa.select(sa.func.count()).select_from(PointsEntry)) == 2
        deducted = tx.points.deduct(m, 5, key="d1")
        assert tx.points.deduct(m, 5, key="d1") == deducted
        assert tx.points.balance(m) == 35


def test_deduct_refuses_more_than_the_balance_and_writes_nothing(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    as_system(pkit, porg, lambda tx: tx.points.award(m, 30))
    with pytest.raises(InsufficientPoints) as info, pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.deduct(m, 31, key="too-much")
    assert info.value.params == {"requested": 31, "available": 30}
    assert info.value.code == "insufficient_points"
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.balance(m) == 30
        assert tx.session.scalar(sa.select(PointsTxn.id).where(PointsTxn.key == "too-much")) is None
        with pytest.raises(InsufficientPoints):
            tx.points.deduct(member(), 1)


def test_bad_input_names_the_field_and_rule(sys_tx: Context) -> None:
    with pytest.raises(ValidationFailed) as info:
        sys_tx.points.award(member(), 0)
    assert (info.value.field, info.value.rule) == ("points", "greater_than")
    with pytest.raises(ValidationFailed) as info:
        sys_tx.points.award(member(), 10, surprise=1)
    assert info.value.rule == "extra_forbidden"
    m = member()
    with pytest.raises(ValidationFailed) as info:
        sys_tx.points.transfer(from_member=m, to_member=m, points=1)
    assert (info.value.field, info.value.rule) == ("to_member", "transfer_to_self")


def test_transfer_needs_the_organisation_to_allow_it(pkit: Kit, porg: OrgRead) -> None:
    a, b = member(), member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(a, 10)
        with pytest.raises(TransfersDisabled):
            tx.points.transfer(from_member=a, to_member=b, points=5)
        tx.points.configure(transfers_allowed=True)
        moved = tx.points.transfer(from_member=a, to_member=b, points=5, reason="thanks")
        assert moved.balance_after == 5 and moved.counterparty_id == b
        assert tx.points.balance(b) == 5
        with pytest.raises(InsufficientPoints):
            tx.points.transfer(from_member=a, to_member=b, points=6)


def test_reverse_writes_a_compensating_operation_once(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        award = tx.points.award(m, 60)
        reversal = tx.points.reverse(award.id, reason="typo")
        assert reversal.reverses_id == award.id and reversal.balance_after == 0
        assert tx.points.reverse(award.id, reason="typo") == reversal
        with pytest.raises(NotReversible):
            tx.points.reverse(award.id, key="another")
        with pytest.raises(NotReversible):
            tx.points.reverse(reversal.id)
        assert tx.points.standing(m).earned == 0
        kinds = tx.session.scalars(sa.select(PointsTxn.kind).order_by(PointsTxn.created_at)).all()
        assert kinds == ["award", "reverse"]
    ledger_invariants(pkit)


def test_reversing_a_spent_award_is_refused(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    award = as_system(pkit, porg, lambda tx: tx.points.award(m, 60))
    as_system(pkit, porg, lambda tx: tx.points.deduct(m, 30))
    with pytest.raises(InsufficientPoints), pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.reverse(award.id)
    ledger_invariants(pkit)


def test_reversing_a_deduction_and_a_transfer_restores_both_sides(pkit: Kit, porg: OrgRead) -> None:
    a, b = member(), member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.configure(transfers_allowed=True)
        tx.points.award(a, 100)
        deduct = tx.points.deduct(a, 30)
        transfer = tx.points.transfer(from_member=a, to_member=b, points=50)
        tx.points.reverse(deduct.id)
        tx.points.reverse(transfer.id)
        assert (tx.points.balance(a), tx.points.balance(b)) == (100, 0)
    ledger_invariants(pkit)


def test_statement_pages_newest_first_with_the_running_balance(sys_tx: Context) -> None:
    m = member()
    for points in (10, 20, 30):
        sys_tx.points.award(m, points)
    sys_tx.points.deduct(m, 5, reason="correction")
    page = sys_tx.points.statement(m, limit=2)
    assert [(e.amount, e.balance_after) for e in page] == [(-5, 55), (30, 60)]
    older = sys_tx.points.statement(m, limit=10, before_seq=page[-1].seq)
    assert [(e.amount, e.balance_after) for e in older] == [(20, 30), (10, 10)]
    assert page[0].reason == "correction" and page[0].actor == "system"
    assert sys_tx.points.statement(member()) == []


def test_csv_export_lists_every_entry_and_defuses_formulas(sys_tx: Context) -> None:
    m = member()
    sys_tx.points.award(m, 10, reason="=HYPERLINK(1)")
    text = sys_tx.points.export_csv()
    lines = text.strip().splitlines()
    assert lines[0].startswith("seq,at,operation")
    assert len(lines) == 3
    assert "'=HYPERLINK(1)" in text and ",=HYPERLINK" not in text


def test_batch_award_awards_each_member_once_per_key(pkit: Kit, porg: OrgRead) -> None:
    members = [member() for _ in range(30)]
    awards = {m: 10 + i for i, m in enumerate(members)}
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.award_many(awards=dict(list(awards.items())[:10]), key="march") == 10
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.award_many(awards=awards, key="march", reason="March") == 20
        assert tx.points.award_many(awards=awards, key="march") == 0
        assert all(tx.points.balance(m) == p for m, p in awards.items())
    ledger_invariants(pkit)


def test_verify_names_an_altered_entry_and_a_drifted_balance(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    as_system(pkit, porg, lambda tx: tx.points.award(m, 10))
    assert pkit.verify() == []
    with pkit.engine.begin() as conn:
        conn.execute(sa.update(PointsEntry).where(PointsEntry.amount == 10).values(amount=11))
    problems: dict[str, str] = {}
    for p in pkit.verify():
        problems[p.check] = problems.get(p.check, "") + str(p)
    assert "altered" in problems["points.ledger"]
    assert "sum to 11" in problems["points.balances"]
    assert "unbalanced" in problems["points.balances"]
    with pkit.engine.begin() as conn:
        conn.execute(sa.update(PointsEntry).where(PointsEntry.amount == 11).values(amount=10))
        conn.execute(
            sa.update(PointsAccount).where(PointsAccount.kind == "member").values(balance=99)
        )
    problems = {p.check: str(p) for p in pkit.verify()}
    assert set(problems) == {"points.balances"}
    assert "balance 99" in problems["points.balances"]


def test_organisations_never_see_each_others_points(pkit: Kit, porg: OrgRead) -> None:
    other = pkit.create_organisation("other-points", "Other")
    m = member()
    award = as_system(pkit, porg, lambda tx: tx.points.award(m, 70, key="same-key"))
    with pkit.begin(org=other, actor=SYSTEM) as tx:
        assert tx.points.balance(m) == 0
        assert tx.points.statement(m) == []
        with pytest.raises(NotFound):
            tx.points.reverse(award.id)
        with pytest.raises(InsufficientPoints):
            tx.points.deduct(m, 1)
        mine = tx.points.award(m, 5, key="same-key")  # keys are per organisation
        assert mine.id != award.id and mine.balance_after == 5
        assert "'=" not in tx.points.export_csv() and str(award.id) not in tx.points.export_csv()
        assert tx.points.leaderboard("all")[0].points == 5
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.balance(m) == 70
    ledger_invariants(pkit)


def test_system_accounts_are_opened_for_an_organisation_created_before_points(
    kit_factory: object,
) -> None:
    kit: Kit = kit_factory(modules=["points"])  # type: ignore[operator]
    org = kit.create_organisation("early", "Early")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.session.execute(sa.delete(PointsAccount))  # as if points was enabled later
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.award(uuid.uuid4(), 3).balance_after == 3
    ledger_invariants(kit)


def test_ngo_kit_org_created_opens_the_four_system_accounts(pkit: Kit, porg: OrgRead) -> None:
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        kinds = tx.session.scalars(
            sa.select(PointsAccount.kind).where(PointsAccount.org_id == porg.id)
        ).all()
    assert sorted(kinds) == ["adjustment", "expiry", "issuance", "redemption"]


def test_ngo_kit_register_checks_adds_the_chain_and_balance_checks(pkit: Kit) -> None:
    names = {getattr(check, "name", None) for check in pkit.checks}
    assert {"points.ledger", "points.balances"} <= names


def test_verify_names_an_operation_changed_behind_its_entries(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    award = as_system(pkit, porg, lambda tx: tx.points.award(m, 10, reason="shift"))
    assert pkit.verify() == []
    with pkit.engine.begin() as conn:  # the operation row is not chained: change it alone
        conn.execute(sa.update(PointsTxn).where(PointsTxn.id == award.id).values(points=1010))
    [problem] = pkit.verify()
    assert problem.check == "points.operations"
    assert f"operation {award.id} (award) records 1010 points but its entries move 10" in str(
        problem
    )
    with pkit.engine.begin() as conn:
        conn.execute(
            sa.update(PointsTxn).where(PointsTxn.id == award.id).values(points=10, reason="gift")
        )
    [problem] = pkit.verify()
    assert "does not match its entries" in problem.message
    with pkit.engine.begin() as conn:
        conn.execute(
            sa.update(PointsTxn)
            .where(PointsTxn.id == award.id)
            .values(reason="shift", member_id=member())
        )
    [problem] = pkit.verify()
    assert "none of its entries is on that member's account" in problem.message


def test_verify_names_an_earned_total_that_its_awards_do_not_add_up_to(
    pkit: Kit, porg: OrgRead
) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(m, 30)
        reversed_award = tx.points.award(m, 5)
        tx.points.deduct(m, 4)
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.reverse(reversed_award.id)
        assert tx.points.standing(m).earned == 30
    assert pkit.verify() == []
    with pkit.engine.begin() as conn:  # a level or badge is one UPDATE away
        conn.execute(
            sa.update(PointsAccount).where(PointsAccount.member_id == m).values(earned=1030)
        )
    [problem] = pkit.verify()
    assert problem.check == "points.earned"
    assert "has earned 1030 but its award entries sum to 30" in problem.message
