"""Events, needs, multi-line documents with approvals, and the expiry command."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from ngo_kit import SYSTEM, InsufficientStock, Kit, PluginError, ValidationFailed, hookimpl
from ngo_kit.context import Context
from ngo_kit.modules.inventory.testing import Recorder
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory

D = Decimal


def test_every_move_fires_stock_moved_inside_the_transaction(
    kit: Kit, catalogue: OrgRead, recorder: Recorder
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.receive(item="milk", quantity=3, to="wh", lot="A")
        tx.inventory.receive(item="milk", quantity=3, to="wh", lot="B")
        op = tx.inventory.issue(item="milk", quantity=5, from_="wh", recipient="c")
    moved = [e["move"] for e in recorder.named("ngo_kit_stock_moved")]
    assert [m.kind for m in moved] == ["receive", "receive", "issue", "issue"]
    assert [m.id for m in moved[2:]] == [m.id for m in op.moves]


def test_a_failing_stock_moved_hook_rolls_the_move_back(
    kit_factory: KitFactory, catalogue: OrgRead
) -> None:
    class Refuses:
        ngo_kit_plugin_name = "refuses"

        @hookimpl
        def ngo_kit_stock_moved(self, tx: Context, move: Any) -> None:
            raise RuntimeError("no")

    strict = kit_factory(modules=["inventory"], plugins=[Refuses()])
    org = strict.create_organisation("strict", "Strict")
    with strict.begin(org=org, actor=SYSTEM) as tx:
        tx.inventory.create_item(code="kit", name="Kit")
        tx.inventory.create_location(code="wh", name="Warehouse")
    with pytest.raises(PluginError) as info, strict.begin(org=org, actor=SYSTEM) as tx:
        tx.inventory.receive(item="kit", quantity=1, to="wh")
    assert info.value.plugin == "refuses"
    with strict.begin(org=org, actor=SYSTEM) as tx:
        assert tx.inventory.history() == []
        assert tx.inventory.stock_level("kit", "wh") == 0


def test_needs_are_fulfilled_by_linked_issues(
    kit: Kit, catalogue: OrgRead, recorder: Recorder
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.receive(item="kit", quantity=11, to="wh", donation="D-1")
        inv.receive(item="milk", quantity=8, to="wh", lot="A", donation="D-1")
        kits = inv.create_need(item="kit", quantity=10, requester="ward-3", priority=2)
        milk = inv.create_need(item="milk", quantity=20, requester="ward-3", priority=1)
        gaps = {g.item_code: (g.needed, g.on_hand, g.shortfall) for g in inv.needs_vs_stock()}
        assert gaps == {"kit": (D(10), D(11), D(0)), "milk": (D(20), D(8), D(12))}
        assert [n.id for n in inv.needs()] == [milk.id, kits.id]  # priority 1 first
        inv.issue(
            item="kit",
            quantity=4,
            from_="wh",
            recipient="ward-3",
            recipient_kind="site",
            need=kits.id,
        )
        assert inv.need(kits.id).fulfilled == D(4)
        assert recorder.named("ngo_kit_need_fulfilled") == []
        with pytest.raises(ValidationFailed) as info:
            inv.issue(item="milk", quantity=1, from_="wh", recipient="w", need=kits.id)
        assert info.value.rule == "need_other_item"
        inv.issue(
            item="kit",
            quantity=6,
            from_="wh",
            recipient="ward-3",
            recipient_kind="site",
            need=kits.id,
        )
        assert inv.need(kits.id).state == "fulfilled"
        (event,) = recorder.named("ngo_kit_need_fulfilled")
        assert event["need"].id == kits.id and event["need"].fulfilled == D(10)
        assert [n.id for n in inv.needs()] == [milk.id]
        assert inv.cancel_need(milk.id).state == "cancelled"
        with pytest.raises(ValidationFailed):
            inv.cancel_need(milk.id)


def test_reversing_a_fulfilling_issue_reopens_the_need(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.receive(item="kit", quantity=5, to="wh")
        need = inv.create_need(item="kit", quantity=5, requester="site-1")
        op = inv.issue(item="kit", quantity=5, from_="wh", recipient="site-1", need=need.id)
        inv.reverse(op.moves[0].id, reason="returned")
        again = inv.need(need.id)
    assert (again.state, again.fulfilled) == ("open", D(0))


def test_receipt_document_goes_draft_confirmed_done(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        doc = inv.create_document(
            kind="receipt", reference="R-2026-001", location="wh", donor="Hope", donation="D-7",
            lines=[
                {"item": "kit", "quantity": 10},
                {"item": "milk", "quantity": 2, "unit": "box", "lot": "Z", "expires_on": "2027-01-01"},
            ],
        )  # fmt: skip
        assert doc.state == "draft" and [x.quantity for x in doc.lines] == [D(10), D(24)]
        with pytest.raises(ValidationFailed) as info:
            inv.complete_document(doc.id)
        assert info.value.rule == "wrong_state"
        assert inv.confirm_document(doc.id).state == "confirmed"
        done = inv.complete_document(doc.id)
        assert done.state == "done" and len(done.group_ids) == 2
        assert inv.stock_level("milk", "wh", "Z") == D(24)
        assert inv.trace_donation("D-7").received == D(34)
        assert all(m.document_id == doc.id for m in inv.history(donation="D-7"))


def test_dispatch_above_the_threshold_needs_two_different_approvers(
    kit: Kit, catalogue: OrgRead
) -> None:
    first, second, clerk = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.tenancy.update_organisation(settings={"inventory.second_approval_above": "20"})
        tx.tenancy.add_member(first, "admin")
        tx.tenancy.add_member(second, "admin")
        tx.tenancy.add_member(clerk, "staff")
        tx.inventory.receive(item="kit", quantity=50, to="wh", donation="D-1")
    with kit.begin(org=catalogue, actor=clerk) as tx:
        inv = tx.inventory
        with pytest.raises(ValidationFailed) as info:
            inv.issue(item="kit", quantity=30, from_="wh", recipient="camp")
        assert info.value.rule == "needs_second_approval"
        with pytest.raises(ValidationFailed) as info:  # the threshold counts base units
            inv.issue(item="milk", quantity=2, unit="box", from_="wh", lot="A", recipient="camp")
        assert info.value.rule == "needs_second_approval"
        doc = inv.create_document(
            kind="dispatch", reference="X-1", location="wh", recipient="camp",
            recipient_kind="site", lines=[{"item": "kit", "quantity": 30}],
        )  # fmt: skip
        inv.confirm_document(doc.id)
        with pytest.raises(ValidationFailed) as info:
            inv.complete_document(doc.id)
        assert info.value.field == "approved_by"
    with kit.begin(org=catalogue, actor=first) as tx:
        tx.inventory.approve_document(doc.id)
        with pytest.raises(ValidationFailed) as info:
            tx.inventory.approve_document(doc.id)
        assert info.value.rule == "same_approver"
    with kit.begin(org=catalogue, actor=clerk) as tx:
        with pytest.raises(ValidationFailed) as info:
            tx.inventory.complete_document(doc.id)
        assert info.value.rule == "needs_second_approval"
    with kit.begin(org=catalogue, actor=second) as tx:
        tx.inventory.approve_document(doc.id)
    with kit.begin(org=catalogue, actor=clerk) as tx:
        done = tx.inventory.complete_document(doc.id)
        (line,) = tx.inventory.trace_donation("D-1").lines
    assert done.state == "done"
    assert (line.approved_by, line.second_approved_by) == (str(first), str(second))
    assert line.recipient == "camp" and line.quantity == D(30)


def test_a_dispatch_short_of_stock_posts_nothing(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.receive(item="kit", quantity=5, to="wh")
        doc = tx.inventory.create_document(
            kind="dispatch", reference="X-2", location="wh", recipient="camp",
            lines=[{"item": "kit", "quantity": 3}, {"item": "kit", "quantity": 3}],
        )  # fmt: skip
        tx.inventory.confirm_document(doc.id)
        tx.inventory.approve_document(doc.id)
    with pytest.raises(InsufficientStock), kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.complete_document(doc.id)
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        assert tx.inventory.document(doc.id).state == "confirmed"
        assert tx.inventory.stock_level("kit", "wh") == D(5)
        assert tx.inventory.cancel_document(doc.id).state == "cancelled"


def test_warn_expiring_fires_once_per_lot_per_day(
    kit: Kit, catalogue: OrgRead, recorder: Recorder
) -> None:
    today = dt.date(2026, 11, 24)
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.receive(item="milk", quantity=4, to="wh", lot="OLD", expires_on=dt.date(2026, 11, 30))
        inv.receive(item="milk", quantity=4, to="wh", lot="NEW", expires_on=dt.date(2027, 11, 30))
        inv.receive(item="milk", quantity=1, to="wh", lot="GONE", expires_on=dt.date(2026, 11, 25))
        inv.scrap(item="milk", quantity=1, from_="wh", lot="GONE", reason="expired")
        warned = inv.warn_expiring(within_days=30, today=today)
        assert inv.warn_expiring(within_days=30, today=today) == []
        tomorrow = inv.warn_expiring(within_days=30, today=today + dt.timedelta(days=1))
    assert [(w.lot_code, w.days_left, w.quantity) for w in warned] == [("OLD", 6, D(4))]
    assert [w.lot_code for w in tomorrow] == ["OLD"]
    assert [e["lot"].lot_code for e in recorder.named("ngo_kit_lot_expiring")] == ["OLD", "OLD"]


def test_the_warn_expiring_command_runs_for_every_organisation(
    kit: Kit, catalogue: OrgRead, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ngo_kit import cli as cli_module

    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.receive(
            item="milk", quantity=4, to="wh", lot="OLD", expires_on=dt.date(2026, 12, 1)
        )
    monkeypatch.setattr(cli_module.CliState, "kit", property(lambda self: kit))
    group = cli_module.command_line([])
    result = CliRunner().invoke(
        group, ["inventory", "warn-expiring", "--days", "30", "--today", "2026-11-24"]
    )
    assert result.exit_code == 0, result.output
    assert "test-org\tmilk\tOLD\t2026-12-01\t7\t4.0000" in result.output
    assert [e["lot"].lot_code for e in recorder.named("ngo_kit_lot_expiring")] == ["OLD"]
