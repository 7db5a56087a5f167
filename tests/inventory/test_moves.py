"""The move rules: receive, issue, transfer, adjust, scrap, reverse; lots, units, keys, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, AlreadyExists, InsufficientStock, Kit, NotFound, ValidationFailed
from ngo_kit.context import Context
from ngo_kit.modules.inventory.models import Layer, Move, Stock
from ngo_kit.tenancy import OrgRead

D = Decimal


def _counts(tx: Context) -> tuple[int, int, int]:
    count = sa.func.count()
    return (
        tx.session.scalar(sa.select(count).select_from(Move)) or 0,
        tx.session.scalar(sa.select(count).select_from(Stock)) or 0,
        tx.session.scalar(sa.select(count).select_from(Layer)) or 0,
    )


def test_new_organisation_gets_the_virtual_locations(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        kinds = {loc.code: loc.kind for loc in tx.inventory.locations()}
    assert kinds == {
        "donors": "donor",
        "beneficiaries": "beneficiary",
        "scrap": "scrap",
        "adjustment": "adjustment",
        "transit": "transit",
    }


def test_receive_converts_pack_units_and_records_donor_details(sys_tx: Context) -> None:
    op = sys_tx.inventory.receive(
        item="milk",
        quantity=D(3),
        unit="box",
        to="shelf-1",
        lot="M9",
        donor="Hope Foundation",
        donation="D-1",
        unit_value=D(24),
        notes="by courier",
        attachments=["files/receipt-1.pdf"],
    )
    (move,) = op.moves
    assert move.quantity == D(36)
    assert move.unit_value == D(2)  # 24 per box of 12
    assert (move.donor_ref, move.donation_ref, move.kind) == ("Hope Foundation", "D-1", "receive")
    assert move.attachments == ["files/receipt-1.pdf"]
    assert move.sources[0].source_id == move.id
    assert sys_tx.inventory.stock_level("milk", "shelf-1", "M9") == D(36)
    listed = {it.code: it.pack_units for it in sys_tx.inventory.items()}
    assert listed == {"kit": {}, "milk": {"box": D(12)}}
    # a perishable lot without a date expires after the item's shelf life
    lot = sys_tx.inventory.lot("milk", "M9")
    assert lot.expires_on == dt.datetime.now(dt.UTC).date() + dt.timedelta(days=365)


def test_lot_rules_are_enforced(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="milk", quantity=1, to="wh")
    assert (info.value.field, info.value.rule) == ("lot", "lot_required")
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="kit", quantity=1, to="wh", lot="X")
    assert info.value.rule == "lot_not_tracked"
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="kit", quantity=1, to="wh", unit="crate")
    assert info.value.rule == "unknown_unit"


def test_bad_input_names_field_and_rule(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="kit", quantity=D(0), to="wh")
    assert (info.value.field, info.value.rule) == ("quantity", "greater_than")
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="kit", quantity=D("1.00001"), to="wh")
    assert info.value.field == "quantity"
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="kit", quantity=1, to="donors")
    assert info.value.rule == "not_a_stock_location"
    with pytest.raises(ValidationFailed) as info:
        inv.issue(item="kit", quantity=1, from_="wh", recipient="x", recipient_kind="friend")
    assert (info.value.field, info.value.rule) == ("recipient_kind", "literal_error")
    with pytest.raises(ValidationFailed) as info:
        inv.receive(item="kit", quantity=1.5, to="wh")
    assert (info.value.field, info.value.rule) == ("quantity", "float_not_allowed")
    assert "ValidationError" not in repr(info.value)


def test_unknown_item_and_location_are_not_found(sys_tx: Context) -> None:
    with pytest.raises(NotFound) as info:
        sys_tx.inventory.receive(item="nothing", quantity=1, to="wh")
    assert info.value.kind == "Item"
    with pytest.raises(NotFound) as info:
        sys_tx.inventory.receive(item="kit", quantity=1, to="attic")
    assert info.value.kind == "Location"


def test_issue_refuses_more_than_on_hand_and_writes_nothing(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.receive(item="kit", quantity=5, to="wh", donation="D-1")
        before = _counts(tx)
    with pytest.raises(InsufficientStock) as info, kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.issue(item="kit", quantity=6, from_="wh", recipient="child-1")
    assert info.value.params == {"requested": D(6), "available": D(5)}
    assert info.value.code == "insufficient_stock"
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        assert _counts(tx) == before
        assert tx.inventory.stock_level("kit", "wh") == D(5)


def test_issue_picks_first_expiring_lot_first_unless_a_lot_is_named(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    inv.receive(item="milk", quantity=5, to="wh", lot="LATE", expires_on=dt.date(2027, 6, 1))
    inv.receive(item="milk", quantity=5, to="wh", lot="SOON", expires_on=dt.date(2027, 1, 1))
    inv.receive(item="milk", quantity=5, to="wh", lot="NEXT", expires_on=dt.date(2027, 3, 1))
    op = inv.issue(item="milk", quantity=7, from_="wh", recipient="child-1")
    lots = {m.lot_id: m.quantity for m in op.moves}
    soon, nxt = inv.lot("milk", "SOON"), inv.lot("milk", "NEXT")
    assert lots == {soon.id: D(5), nxt.id: D(2)}
    named = inv.issue(item="milk", quantity=1, from_="wh", lot="LATE", recipient="child-2")
    assert named.moves[0].lot_id == inv.lot("milk", "LATE").id
    assert inv.stock_level("milk", "wh", "LATE") == D(4)
    with pytest.raises(InsufficientStock):
        inv.issue(item="milk", quantity=5, from_="wh", lot="NEXT", recipient="child-3")


def test_transfer_carries_sources_and_refuses_the_same_location(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    r = inv.receive(item="kit", quantity=4, to="wh", donation="D-1")
    op = inv.transfer(item="kit", quantity=3, from_="wh", to="transit")
    assert op.moves[0].sources[0].source_id == r.moves[0].id
    assert inv.stock_level("kit", "transit") == D(3)
    with pytest.raises(ValidationFailed) as info:
        inv.transfer(item="kit", quantity=1, from_="wh", to="wh")
    assert info.value.rule == "same_location"
    with pytest.raises(ValidationFailed) as info:
        inv.transfer(item="kit", quantity=1, from_="wh", to="beneficiaries")
    assert info.value.rule == "not_a_stock_location"


def test_adjust_posts_the_difference_to_inventory_adjustment(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    inv.receive(item="kit", quantity=10, to="wh", donation="D-1")
    down = inv.adjust(item="kit", location="wh", counted=D(7), reason="stocktake")
    assert down.quantity == D(3)
    assert down.moves[0].to_location_id == inv._location("adjustment").id
    up = inv.adjust(item="kit", location="wh", counted=D(9), reason="found a box")
    assert up.quantity == D(2)
    assert up.moves[0].sources[0].source_id == up.moves[0].id  # found stock is its own source
    assert inv.adjust(item="kit", location="wh", counted=D(9), reason="recount").moves == ()
    assert inv.stock_level("kit", "wh") == D(9)


def test_scrap_needs_a_reason(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    inv.receive(item="kit", quantity=2, to="wh")
    with pytest.raises(ValidationFailed) as info:
        inv.scrap(item="kit", quantity=1, from_="wh", reason="")
    assert info.value.field == "reason"
    op = inv.scrap(item="kit", quantity=2, from_="wh", reason="water damage")
    assert op.moves[0].reason == "water damage"
    assert inv.stock_level("kit", "wh") == D(0)


def test_reverse_points_at_the_original_and_only_once(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    r = inv.receive(item="kit", quantity=5, to="wh", donation="D-1")
    issued = inv.issue(item="kit", quantity=2, from_="wh", recipient="child-1")
    back = inv.reverse(issued.moves[0].id, reason="wrong child")
    (move,) = back.moves
    assert (move.kind, move.reverses_id, move.quantity) == ("reverse", issued.moves[0].id, D(2))
    assert move.sources[0].source_id == r.moves[0].id
    assert inv.stock_level("kit", "wh") == D(5)
    with pytest.raises(ValidationFailed) as info:
        inv.reverse(issued.moves[0].id, reason="again")
    assert info.value.rule == "already_reversed"
    with pytest.raises(ValidationFailed) as info:
        inv.reverse(move.id, reason="undo the undo")
    assert info.value.rule == "not_reversible"


def test_reversing_a_receipt_whose_goods_moved_on_is_refused(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    r = inv.receive(item="kit", quantity=5, to="wh", donation="D-1")
    inv.issue(item="kit", quantity=4, from_="wh", recipient="child-1")
    with pytest.raises(InsufficientStock):
        inv.reverse(r.moves[0].id, reason="donor took it back")


def test_reversing_a_receipt_returns_goods_to_the_donor(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        r = tx.inventory.receive(item="kit", quantity=5, to="wh", donation="D-1")
        tx.inventory.reverse(r.moves[0].id, reason="wrong goods")
        report = tx.inventory.trace_donation("D-1")
    assert (report.received, report.returned, report.on_hand) == (D(5), D(5), D(0))
    assert kit.verify() == []


def test_a_repeated_key_returns_the_first_result_and_writes_nothing(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    first = inv.receive(item="kit", quantity=5, to="wh", key="receipt-77")
    again = inv.receive(item="kit", quantity=5, to="wh", key="receipt-77")
    assert again == first
    issued = inv.issue(item="kit", quantity=2, from_="wh", recipient="c", key="issue-1")
    assert inv.issue(item="kit", quantity=2, from_="wh", recipient="c", key="issue-1") == issued
    assert inv.stock_level("kit", "wh") == D(3)


def test_items_that_allow_negative_stock_can_go_below_zero(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.create_item(code="water", name="Water", unit="litre", allow_negative=True)
        tx.inventory.receive(item="water", quantity=2, to="wh", donation="D-9")
        op = tx.inventory.issue(item="water", quantity=5, from_="wh", recipient="site-3")
        assert [(s.source_id is None, s.quantity) for s in op.moves[0].sources] == [
            (False, D(2)),
            (True, D(3)),
        ]
        assert tx.inventory.stock_level("water", "wh") == D(-3)
    assert kit.verify() == []


def test_an_item_allowed_below_zero_can_be_issued_where_it_never_was(
    kit: Kit, catalogue: OrgRead
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.create_item(code="water", name="Water", unit="litre", allow_negative=True)
        op = tx.inventory.issue(item="water", quantity=4, from_="wh", recipient="site-3")
        assert [(s.source_id, s.quantity) for s in op.moves[0].sources] == [(None, D(4))]
        assert tx.inventory.stock_level("water", "wh") == D(-4)
        tx.inventory.issue(item="water", quantity=1, from_="wh", recipient="site-4")
        assert tx.inventory.stock_level("water", "wh") == D(-5)
    assert kit.verify() == []


def test_catalogue_codes_are_unique_per_organisation(
    kit: Kit, catalogue: OrgRead, other_org: OrgRead
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx, pytest.raises(AlreadyExists):
        tx.inventory.create_item(code="kit", name="Another kit")
    with kit.begin(org=other_org, actor=SYSTEM) as tx:
        assert tx.inventory.create_item(code="kit", name="Their kit").code == "kit"
        with pytest.raises(AlreadyExists):
            tx.inventory.create_location(code="donors", name="Clash with a virtual location")


def test_fractional_quantities_are_exact_on_every_database(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    inv.create_item(code="rice", name="Rice", unit="kg")
    inv.receive(item="rice", quantity=D("0.7"), to="wh", donation="D-1")
    inv.issue(item="rice", quantity=D("0.4"), from_="wh", recipient="a")
    inv.issue(item="rice", quantity=D("0.3"), from_="wh", recipient="b")  # 0.7 - 0.4 - 0.3
    level = inv.stock_level("rice", "wh")
    assert level == 0 and str(level) == "0.0000"
    assert [x.item_code for x in inv.stock_on_hand()] == []
    with pytest.raises(InsufficientStock):
        inv.issue(item="rice", quantity=D("0.0001"), from_="wh", recipient="c")
    assert inv.trace_donation("D-1").distributed == D("0.7")


def test_a_lot_received_earlier_in_the_same_unit_of_work_can_be_issued(sys_tx: Context) -> None:
    inv = sys_tx.inventory
    inv.receive(item="milk", quantity=5, to="wh", lot="L1", expires_on=dt.date(2031, 1, 1))
    inv.issue(item="milk", quantity=1, from_="wh", recipient="a")
    inv.receive(item="milk", quantity=5, to="wh", lot="L2", expires_on=dt.date(2030, 1, 1))
    op = inv.issue(item="milk", quantity=7, from_="wh", recipient="b")
    assert [m.quantity for m in op.moves] == [D(5), D(2)]  # L2 expires first
    assert inv.stock_level("milk", "wh", "L1") == D(2)
