"""Each organisation sees only its own inventory; each call needs its permission."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from ngo_kit import SYSTEM, Kit, NotFound, PermissionDenied
from ngo_kit.modules.inventory.testing import Worked
from ngo_kit.tenancy import OrgRead


@pytest.fixture
def theirs(kit: Kit, catalogue: OrgRead, worked: Worked) -> dict[str, Any]:
    """Ids from test-org that another organisation will try to use."""
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        need = tx.inventory.create_need(item="kit", quantity=2, requester="ward-3")
        doc = tx.inventory.create_document(
            kind="receipt", reference="R-1", location="wh", lines=[{"item": "kit", "quantity": 1}]
        )
    return {
        "move": worked.ops[6].moves[0].id,
        "group": worked.ops[6].group_id,
        "need": need.id,
        "doc": doc.id,
    }


CROSS_ORG_CALLS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "receive": lambda inv, ids: inv.receive(item="kit", quantity=1, to="wh"),
    "issue": lambda inv, ids: inv.issue(item="kit", quantity=1, from_="wh", recipient="x"),
    "transfer": lambda inv, ids: inv.transfer(item="kit", quantity=1, from_="wh", to="shelf-1"),
    "scrap": lambda inv, ids: inv.scrap(item="kit", quantity=1, from_="wh", reason="x"),
    "adjust": lambda inv, ids: inv.adjust(item="kit", location="wh", counted=1, reason="x"),
    "reverse": lambda inv, ids: inv.reverse(ids["move"], reason="x"),
    "item": lambda inv, ids: inv.item("kit"),
    "lot": lambda inv, ids: inv.lot("milk", "M1"),
    "stock_level": lambda inv, ids: inv.stock_level("kit", "wh"),
    "on_hand": lambda inv, ids: inv.on_hand("kit"),
    "trace_donation": lambda inv, ids: inv.trace_donation("D-100"),
    "trace_issue": lambda inv, ids: inv.trace_issue(ids["group"]),
    "need": lambda inv, ids: inv.need(ids["need"]),
    "cancel_need": lambda inv, ids: inv.cancel_need(ids["need"]),
    "create_need": lambda inv, ids: inv.create_need(item="kit", quantity=1, requester="x"),
    "document": lambda inv, ids: inv.document(ids["doc"]),
    "confirm_document": lambda inv, ids: inv.confirm_document(ids["doc"]),
    "approve_document": lambda inv, ids: inv.approve_document(ids["doc"]),
    "complete_document": lambda inv, ids: inv.complete_document(ids["doc"]),
    "cancel_document": lambda inv, ids: inv.cancel_document(ids["doc"]),
    "create_location": lambda inv, ids: inv.create_location(code="x", name="x", parent="wh"),
    "create_item": lambda inv, ids: inv.create_item(code="x", name="x", category="comfort"),
    "stock_on_hand": lambda inv, ids: inv.stock_on_hand(location="wh"),
    "history": lambda inv, ids: inv.history(item="kit"),
}


def test_another_organisations_things_are_not_found(
    kit: Kit, other_org: OrgRead, theirs: dict[str, Any]
) -> None:
    leaked = []
    for name, call in sorted(CROSS_ORG_CALLS.items()):  # one database set-up for every call
        try:
            with kit.begin(org=other_org, actor=SYSTEM) as tx:
                call(tx.inventory, theirs)
        except NotFound:
            continue
        leaked.append(name)
    assert leaked == []


def test_a_document_cannot_name_another_organisations_need(
    kit: Kit, other_org: OrgRead, theirs: dict[str, Any]
) -> None:
    with kit.begin(org=other_org, actor=SYSTEM) as tx:
        tx.inventory.create_item(code="kit", name="Kit")
        tx.inventory.create_location(code="wh", name="Warehouse")
    with pytest.raises(NotFound) as info, kit.begin(org=other_org, actor=SYSTEM) as tx:
        tx.inventory.create_document(
            kind="dispatch",
            reference="D-1",
            location="wh",
            recipient="x",
            lines=[{"item": "kit", "quantity": 1}],
            need=theirs["need"],
        )
    assert info.value.kind == "Need"


def test_lists_and_reports_show_only_the_own_organisation(
    kit: Kit, other_org: OrgRead, theirs: dict[str, Any]
) -> None:
    with kit.begin(org=other_org, actor=SYSTEM) as tx:
        inv = tx.inventory
        assert inv.items() == []
        assert {loc.code for loc in inv.locations()} == {
            "donors", "beneficiaries", "scrap", "adjustment", "transit",
        }  # fmt: skip
        assert inv.stock_on_hand() == []
        assert inv.history() == []
        assert inv.needs() == []
        assert inv.low_stock() == []
        assert inv.expiring(within_days=3650) == []
        assert inv.needs_vs_stock() == []
        assert inv.valuation() == 0
        assert inv.export_stock("csv").decode("utf-8-sig").strip().count("\n") == 0
        assert inv.export_history("csv").decode("utf-8-sig").strip().count("\n") == 0
        report = inv.import_opening_stock(b"item,location,quantity\nkit,wh,1\n", "csv")
        assert [(e.field, e.rule) for e in report.errors] == [("item", "unknown_reference")]


PERMISSION_CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "view": ("inventory.view", lambda inv: inv.stock_level("kit", "wh")),
    "trace": ("inventory.view", lambda inv: inv.trace_donation("D-100")),
    "receive": ("inventory.receive", lambda inv: inv.receive(item="kit", quantity=1, to="wh")),
    "issue": (
        "inventory.issue",
        lambda inv: inv.issue(item="kit", quantity=1, from_="wh", recipient="x"),
    ),
    "transfer": (
        "inventory.issue",
        lambda inv: inv.transfer(item="kit", quantity=1, from_="wh", to="shelf-1"),
    ),
    "adjust": (
        "inventory.adjust",
        lambda inv: inv.adjust(item="kit", location="wh", counted=1, reason="x"),
    ),
    "scrap": (
        "inventory.adjust",
        lambda inv: inv.scrap(item="kit", quantity=1, from_="wh", reason="x"),
    ),
    "item": ("inventory.manage", lambda inv: inv.create_item(code="new", name="New")),
    "location": ("inventory.manage", lambda inv: inv.create_location(code="new", name="New")),
}


def test_a_member_without_inventory_permissions_is_refused(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    member = uuid.uuid4()
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.tenancy.add_member(member, "member")
    refused = {}
    for name, (_permission, action) in sorted(PERMISSION_CALLS.items()):
        try:
            with kit.begin(org=catalogue, actor=member) as tx:
                action(tx.inventory)
        except PermissionDenied as exc:
            refused[name] = exc.permission
    assert refused == {name: perm for name, (perm, _) in PERMISSION_CALLS.items()}


def test_staff_may_view_receive_and_issue_but_not_adjust_approve_or_manage(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    staff = uuid.uuid4()
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.tenancy.add_member(staff, "staff")
    with kit.begin(org=catalogue, actor=staff) as tx:
        inv = tx.inventory
        inv.receive(item="kit", quantity=1, to="wh")
        op = inv.issue(item="kit", quantity=1, from_="wh", recipient="x")
        assert op.moves[0].approved_by == str(staff)
        assert op.moves[0].actor == str(staff)
        inv.trace_donation("D-100")
        for name in ("adjust", "scrap", "item", "location"):
            with pytest.raises(PermissionDenied):
                PERMISSION_CALLS[name][1](inv)
    granted = {p.name for p in kit.permissions.values() if p.name.startswith("inventory.")}
    assert granted == {
        "inventory.view", "inventory.receive", "inventory.issue",
        "inventory.approve", "inventory.adjust", "inventory.manage",
    }  # fmt: skip


def test_roles_are_set_per_organisation(kit: Kit, catalogue: OrgRead, other_org: OrgRead) -> None:
    person = uuid.uuid4()
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.tenancy.add_member(person, "member")
        tx.tenancy.grant("member", "inventory.adjust")
    with kit.begin(org=other_org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(person, "member")
    with kit.begin(org=catalogue, actor=person) as tx:
        assert tx.can("inventory.adjust")
    with kit.begin(org=other_org, actor=person) as tx:
        assert not tx.can("inventory.adjust")
