"""Quantities are exact on every database, to 4 decimal places and 18 digits, or refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngo_kit import SYSTEM, Kit, ValidationFailed, migrations
from ngo_kit.modules.inventory.models import Move, Stock
from ngo_kit.modules.inventory.testing import run_worked_example
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory

D = Decimal
LARGEST = D("99999999999999.9999")
#: The inventory module's revision before quantities were exact on SQLite.
BEFORE_EXACT = "4083d8be91b3"


def test_a_quantity_with_eighteen_digits_reads_back_exactly_and_verifies(
    kit: Kit, catalogue: OrgRead
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        op = inv.receive(item="kit", quantity=D("1234567890123.4567"), to="wh", donation="D-1")
        inv.issue(item="kit", quantity=D("0.0001"), from_="wh", recipient="a")
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        assert [m.quantity for m in inv.history(kind="receive")] == [D("1234567890123.4567")]
        assert inv.stock_level("kit", "wh") == D("1234567890123.4566")
        assert inv.trace_donation("D-1").on_hand == D("1234567890123.4566")
        assert op.moves[0].quantity == D("1234567890123.4567")
    assert kit.verify() == []


def test_quantities_beyond_the_precision_are_refused_and_nothing_is_written(
    kit: Kit, catalogue: OrgRead
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.create_item(
            code="oil", name="Oil", unit="litre", pack_units={"cup": D("0.3333"), "crate": 12}
        )
        refused: list[tuple[dict[str, Any], str]] = [
            ({"quantity": D("100000000000000")}, "decimal_whole_digits"),  # 15 digits
            ({"quantity": D("0.00001")}, "decimal_max_places"),
            ({"quantity": D("1.5"), "unit": "cup"}, "decimal_max_places"),  # 0.49995 litres
            ({"quantity": D("9000000000000"), "unit": "crate"}, "decimal_whole_digits"),
        ]
        for given_, rule in refused:
            with pytest.raises(ValidationFailed) as info:
                inv.receive(item="oil", to="wh", **given_)
            assert (info.value.field, info.value.rule) == ("quantity", rule), given_
        assert inv.history(item="oil") == []
        assert inv.receive(item="oil", quantity=3, unit="cup", to="wh").quantity == D("0.9999")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantity=st.decimals(
        min_value=D("0.0001"), max_value=LARGEST, places=4, allow_nan=False, allow_infinity=False
    )
)
def test_any_accepted_quantity_round_trips_exactly(
    kit: Kit, catalogue: OrgRead, quantity: Decimal
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        received = inv.receive(item="kit", quantity=quantity, to="wh", unit_value=quantity)
        inv.transfer(item="kit", quantity=quantity, from_="wh", to="shelf-1")
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        inv = tx.inventory
        read = inv.history(kind="receive", limit=1)[0]
        assert (read.id, read.quantity, read.unit_value) == (
            received.moves[0].id,
            quantity,
            quantity,
        )
        assert inv.stock_level("kit", "shelf-1") == quantity
        inv.issue(item="kit", quantity=quantity, from_="shelf-1", recipient="a")
        assert inv.stock_level("kit", "shelf-1") == 0
    assert kit.verify() == []


def test_upgrading_a_database_written_before_keeps_every_row_and_digit(
    kit_factory: KitFactory,
) -> None:
    """The migration turns SQLite's floats into exact integers; other databases keep theirs."""
    kit = kit_factory(modules=["inventory"], upgrade=False)
    kit.upgrade()
    org = kit.create_organisation("old-org", "Old organisation")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.create_item(code="kit", name="Comfort kit", reorder_level=D("12.5"))
        inv.create_item(
            code="milk", name="Milk", unit="tin", pack_units={"box": 12}, tracked_by_lot=True
        )
        inv.create_location(code="wh", name="Warehouse")
        inv.create_location(code="shelf-1", name="Shelf 1", parent="wh")
        inv.create_item(code="rice", name="Rice", unit="kg")
        inv.receive(item="rice", quantity=D("0.7"), to="wh", donation="D-1")
        inv.issue(item="rice", quantity=D("0.4"), from_="wh", recipient="a")
        inv.receive(item="rice", quantity=D("123456789012.3456"), to="wh", unit_value=D("0.1"))
    run_worked_example(kit, org)

    def snapshot() -> list[tuple[object, ...]]:
        with kit.begin(org=org, actor=SYSTEM) as tx:
            moves = [(m.id, m.quantity, m.unit_value) for m in tx.inventory.history(limit=1000)]
            stock = [
                (x.item_code, x.location_code, x.quantity) for x in tx.inventory.stock_on_hand()
            ]
            items = [
                (i.code, i.reorder_level, tuple(i.pack_units.items())) for i in tx.inventory.items()
            ]
        return [*moves, *stock, *items]

    before = snapshot()
    sqlite = kit.engine.dialect.name == "sqlite"
    migrations.downgrade(kit, BEFORE_EXACT)  # the quantities as written before, on SQLite floats
    with kit.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(Move)).scalar_one()
        if sqlite:
            kinds = conn.exec_driver_sql(
                "SELECT DISTINCT typeof(quantity) FROM inventory_move"
            ).scalars()
            assert "real" in set(kinds)
    kit.upgrade()
    assert migrations.pending_heads(kit) == []
    with kit.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Move)).scalar_one() == rows
        if sqlite:
            kinds = conn.exec_driver_sql(
                "SELECT DISTINCT typeof(quantity) FROM inventory_stock"
            ).scalars()
            assert set(kinds) == {"integer"}
            stock = conn.execute(sa.select(Stock.quantity)).scalars()
            assert all(isinstance(q, Decimal) for q in stock)
    assert snapshot() == before
    assert kit.verify() == []
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.inventory.issue(item="rice", quantity=D("0.3"), from_="wh", recipient="b")
        assert tx.inventory.stock_level("rice", "wh") == D("123456789012.3456")
    assert kit.verify() == []
