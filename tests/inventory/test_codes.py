"""Catalogue codes and ids: a code never stands for another item's or location's id."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit, ValidationFailed
from ngo_kit.db import new_id
from ngo_kit.modules.inventory.models import Item, Location
from ngo_kit.tenancy import OrgRead

D = Decimal


def test_a_code_written_like_an_id_is_refused_and_nothing_is_written(
    kit: Kit, catalogue: OrgRead
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        kit_id = tx.inventory.item("kit").id
        wh_id = next(loc.id for loc in tx.inventory.locations() if loc.code == "wh")
        before = (len(tx.inventory.items()), len(tx.inventory.locations()))
        for code in (str(kit_id), kit_id.hex, str(new_id()).upper()):
            with pytest.raises(ValidationFailed) as info:
                tx.inventory.create_item(code=code, name="Decoy")
            assert (info.value.field, info.value.rule) == ("code", "code_like_id")
            with pytest.raises(ValidationFailed) as info:
                tx.inventory.create_location(code=code, name="Decoy")
            assert (info.value.field, info.value.rule) == ("code", "code_like_id")
        with pytest.raises(ValidationFailed) as info:
            tx.inventory.create_category(code=str(wh_id), name="Decoy")
        assert (info.value.field, info.value.rule) == ("code", "code_like_id")
        assert (len(tx.inventory.items()), len(tx.inventory.locations())) == before
    with kit.begin(org=catalogue, actor=SYSTEM, locale="zh_CN") as tx:
        with pytest.raises(ValidationFailed) as info:
            tx.inventory.create_item(code=str(kit_id), name="Decoy")
        assert "UUID" in info.value.message and "不能" in info.value.message
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        data = f"code,name\n{kit_id},Decoy\n".encode()
        report = tx.inventory.import_items(data)
    assert not report.ok and [(e.field, e.rule) for e in report.errors] == [
        ("code", "code_like_id")
    ]


def test_an_old_row_whose_code_is_another_ones_id_never_stands_for_it(
    kit: Kit, catalogue: OrgRead
) -> None:
    """A database written before codes like ids were refused may hold such rows: looking up
    by id still finds the row with that id, in one unit of work and across them (the cache)."""
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        kit_item = tx.inventory.item("kit")
        wh = next(loc for loc in tx.inventory.locations() if loc.code == "wh")
        decoy_item, decoy_location = new_id(), new_id()
        tx.connection.execute(
            sa.insert(Item).values(
                id=decoy_item, org_id=tx.org_id, code=str(kit_item.id), name="Decoy"
            )
        )
        tx.connection.execute(
            sa.insert(Location).values(
                id=decoy_location, org_id=tx.org_id, code=str(wh.id), name="Decoy"
            )
        )
    for _ in range(2):  # the second round reads what the first one cached
        with kit.begin(org=catalogue, actor=SYSTEM) as tx:
            inv = tx.inventory
            assert inv.item(decoy_item).code == str(kit_item.id)  # the decoy, by its own id
            inv.receive(item=str(decoy_item), quantity=1, to=str(decoy_location))
            assert inv.item(kit_item.id).code == "kit"
            assert inv.item(str(kit_item.id)).code == "kit"
            op = inv.receive(item=str(kit_item.id), quantity=D(5), to=str(wh.id))
            assert (op.moves[0].item_id, op.moves[0].to_location_id) == (kit_item.id, wh.id)
            assert inv.stock_level(str(kit_item.id), str(wh.id)) == inv.on_hand(kit_item.id)
            assert inv.stock_level(decoy_item, decoy_location) == inv.on_hand(decoy_item)
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        assert tx.inventory.on_hand(kit_item.id) == D(10)
        assert tx.inventory.on_hand(decoy_item) == D(2)
        assert tx.inventory.stock_level("kit", "wh") == D(10)
    assert kit.verify() == []
