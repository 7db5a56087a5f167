"""Every report against hand-computed answers on one worked example.

The example (tests/inventory/conftest.py, ``run_worked_example``), by step:

 1. D-100 (Hope Foundation): 2 boxes of milk = 24 tins, lot M1 (expires 2026-12-10), 30/box
 2. D-100: 12 tins of milk, lot M2 (expires 2027-01-31), 2.50/tin
 3. D-100: 10 comfort kits into wh, 20.00 each
 4. D-200 (City Rotary): 6 kits into wh, no value
 5. D-200: 6 tins of milk, lot M1 (the same lot), 3.00/tin
 6. issue 28 milk to child-A, no lot named: FEFO picks M1; FIFO inside M1: 24 of D-100, 4 of D-200
 7. transfer 12 kits wh -> shelf-1: FIFO 10 of D-100, 2 of D-200
 8. issue 3 kits from shelf-1 to child-B: 3 of D-100
 9. issue 4 kits from shelf-1 to the art-therapy project: 4 of D-100
10. issue 5 milk of lot M2 to child-A: 5 of D-100
11. scrap 1 milk of lot M1 (damaged): 1 of D-200 (D-100's M1 is gone)
12. stocktake of kits at wh counts 3, books say 4: -1 of D-200
13. step 8 is reversed (wrong child): 3 kits of D-100 come back to shelf-1

Hand-computed state: milk M1 at shelf-1 = 1 (D-200); milk M2 at shelf-1 = 7 (D-100);
kits at wh = 3 (D-200); kits at shelf-1 = 8 (6 of D-100, 2 of D-200).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ngo_kit import SYSTEM, Kit
from ngo_kit.modules.inventory.testing import Recorder, Worked
from ngo_kit.tenancy import OrgRead

D = Decimal


def test_stock_levels_match_the_hand_computed_state(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        assert inv.stock_level("milk", "shelf-1", "M1") == D(1)
        assert inv.stock_level("milk", "shelf-1", "M2") == D(7)
        assert inv.stock_level("kit", "wh") == D(3)
        assert inv.stock_level("kit", "shelf-1") == D(8)
        assert inv.on_hand("kit") == D(11)
        assert inv.on_hand("milk") == D(8)
    assert kit.verify() == []


def test_fefo_then_fifo_allocation_of_the_first_issue(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    (move,) = worked.ops[6].moves
    receipts = {1: worked.ops[1].moves[0].id, 5: worked.ops[5].moves[0].id}
    assert move.quantity == D(28)
    assert [(s.source_id, s.quantity) for s in move.sources] == [
        (receipts[1], D(24)),
        (receipts[5], D(4)),
    ]
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        sources = tx.inventory.trace_issue(worked.ops[6].group_id)
    assert [(s.donation, s.donor, s.lot_code, s.quantity) for s in sources] == [
        ("D-100", "Hope Foundation", "M1", D(24)),
        ("D-200", "City Rotary", "M1", D(4)),
    ]


def test_trace_of_a_donation_is_exact(kit: Kit, catalogue: OrgRead, worked: Worked) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.trace_donation("D-100")
    assert report.donor == "Hope Foundation"
    assert report.received == D(46)  # 24 + 12 + 10
    assert report.distributed == D(33)  # 24 + 3 + 4 + 5 - 3
    assert report.on_hand == D(13)  # 7 milk M2 + 6 kits at shelf-1
    assert (report.scrapped, report.adjusted, report.returned) == (D(0), D(0), D(0))
    assert report.received == report.distributed + report.on_hand
    got = [(x.kind, x.item_code, x.lot_code, x.quantity, x.recipient) for x in report.lines]
    assert got == [
        ("issue", "milk", "M1", D(24), "child-A"),
        ("issue", "kit", None, D(3), "child-B"),
        ("issue", "kit", None, D(4), "art-therapy"),
        ("issue", "milk", "M2", D(5), "child-A"),
        ("reverse", "kit", None, D(-3), "child-B"),
    ]
    assert report.lines[-1].reverses_id == worked.ops[8].moves[0].id
    assert all(x.approved_by == "system" for x in report.lines if x.kind == "issue")


def test_trace_of_the_second_donation_covers_scrap_and_stocktake(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.trace_donation("D-200")
    assert report.received == D(12)
    assert (report.distributed, report.scrapped, report.adjusted) == (D(4), D(1), D(1))
    assert report.on_hand == D(6)  # 1 milk M1, 3 kits at wh, 2 kits at shelf-1
    got = [(x.kind, x.item_code, x.quantity, x.destination) for x in report.lines]
    assert got == [
        ("issue", "milk", D(4), "beneficiaries"),
        ("scrap", "milk", D(1), "scrap"),
        ("adjust", "kit", D(1), "adjustment"),
    ]


def test_donor_facing_trace_masks_beneficiaries_but_not_projects(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.trace_donation("D-100", donor_facing=True)
    assert report.donor_facing
    assert [x.recipient for x in report.lines] == [
        "Beneficiary 1",
        "Beneficiary 2",
        "art-therapy",
        "Beneficiary 1",
        "Beneficiary 2",
    ]
    assert "child-A" not in report.model_dump_json()
    assert "child-B" not in report.model_dump_json()


def test_stock_on_hand_by_location_tree_and_category_with_values(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        everything = inv.stock_on_hand(location="wh")  # wh and shelf-1 inside it
        shelf = inv.stock_on_hand(location="shelf-1")
        nutrition = inv.stock_on_hand(category="nutrition")
        total = inv.valuation()
    got = [(x.location_code, x.item_code, x.lot_code, x.quantity, x.value) for x in everything]
    assert got == [
        ("shelf-1", "kit", None, D(8), D("120.00")),  # 6 of D-100 at 20.00; D-200's 2 unvalued
        ("shelf-1", "milk", "M1", D(1), D("3.00")),  # 1 of D-200 at 3.00
        ("shelf-1", "milk", "M2", D(7), D("17.50")),  # 7 of D-100 at 2.50
        ("wh", "kit", None, D(3), None),  # D-200 gave no value
    ]
    assert len(shelf) == 3
    assert [(x.item_code, x.lot_code, x.expires_on) for x in nutrition] == [
        ("milk", "M1", dt.date(2026, 12, 10)),
        ("milk", "M2", dt.date(2027, 1, 31)),
    ]
    assert total == D("140.50")


def test_expiring_and_low_stock_reports(
    kit: Kit, catalogue: OrgRead, worked: Worked, recorder: Recorder
) -> None:
    today = dt.date(2026, 11, 24)
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        soon = tx.inventory.expiring(within_days=30, today=today)
        later = tx.inventory.expiring(within_days=90, today=today)
        low = tx.inventory.low_stock()
    assert [(x.lot_code, x.days_left, x.quantity) for x in soon] == [("M1", 16, D(1))]
    assert [(x.lot_code, x.quantity) for x in later] == [("M1", D(1)), ("M2", D(7))]
    assert [(x.item_code, x.on_hand, x.reorder_level) for x in low] == [("kit", D(11), D(12))]
    # 16 kits -> 13 (step 8) -> 9 (step 9) crosses the level of 12 once; step 12 does not re-fire
    fired = recorder.named("ngo_kit_stock_low")
    assert [(e["item"].code, e["on_hand"]) for e in fired] == [("kit", D(9))]


def test_movement_history_filters(kit: Kit, catalogue: OrgRead, worked: Worked) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        assert len(inv.history()) == 13
        assert [m.quantity for m in inv.history(donation="D-100")] == [D(10), D(12), D(24)]
        assert [m.quantity for m in inv.history(kind="issue", item="milk")] == [D(5), D(28)]
        assert len(inv.history(recipient="child-A")) == 2
        assert len(inv.history(location="wh")) == 4  # steps 3, 4, 7, 12
        assert [m.kind for m in inv.history(limit=2)] == ["reverse", "adjust"]


def test_donor_facing_masks_are_in_the_callers_language(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM, locale="zh_CN") as tx:
        report = tx.inventory.trace_donation("D-100", donor_facing=True)
    assert [x.recipient for x in report.lines][:3] == ["受助人 1", "受助人 2", "art-therapy"]
