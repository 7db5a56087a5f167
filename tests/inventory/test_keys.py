"""Move keys are scoped to who uses them; a key reused for another request is refused."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ngo_kit import SYSTEM, KeyReused, Kit
from ngo_kit.tenancy import OrgRead


def test_staff_sending_anothers_key_move_their_own_goods(kit: Kit, catalogue: OrgRead) -> None:
    ann, bo = uuid.uuid4(), uuid.uuid4()
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.tenancy.add_member(ann, "staff")
        tx.tenancy.add_member(bo, "staff")
        tx.inventory.receive(item="kit", quantity=10, to="wh", donor="Red Cross")
    with kit.begin(org=catalogue, actor=ann) as tx:
        first = tx.inventory.issue(
            item="kit", quantity=2, from_="wh", recipient="child-A", key="d1"
        )
    with kit.begin(org=catalogue, actor=bo) as tx:
        mine = tx.inventory.issue(item="kit", quantity=3, from_="wh", recipient="child-B", key="d1")
        assert mine.group_id != first.group_id
        assert mine.moves[0].recipient_ref == "child-B"
        assert tx.inventory.stock_level("kit", "wh") == Decimal(5)
    with kit.begin(org=catalogue, actor=ann) as tx:
        again = tx.inventory.issue(
            item="kit", quantity=2, from_="wh", recipient="child-A", key="d1"
        )
        assert again.group_id == first.group_id
        with pytest.raises(KeyReused) as refused:
            tx.inventory.issue(item="kit", quantity=4, from_="wh", recipient="child-A", key="d1")
        assert refused.value.code == "idempotency_key_reused"


def test_a_repeat_after_the_stock_is_gone_returns_the_first_issue(
    kit: Kit, catalogue: OrgRead
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        tx.inventory.receive(item="kit", quantity=4, to="wh", key="r1")
        first = tx.inventory.issue(item="kit", quantity=4, from_="wh", recipient="c", key="i1")
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        assert tx.inventory.stock_level("kit", "wh") == Decimal(0)
        again = tx.inventory.issue(item="kit", quantity=4, from_="wh", recipient="c", key="i1")
        assert again.group_id == first.group_id
        assert tx.inventory.receive(item="kit", quantity=4, to="wh", key="r1").moves
        assert tx.inventory.stock_level("kit", "wh") == Decimal(0)
