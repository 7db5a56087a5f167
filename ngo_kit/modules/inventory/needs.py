"""Needs (需求): items asked for by a beneficiary, site or project, and what fulfils them."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import ValidationFailed
from ngo_kit.modules.inventory.base import ZERO, InventoryBase, ItemRow
from ngo_kit.modules.inventory.models import Item, Need
from ngo_kit.modules.inventory.schemas import NeedGap, NeedIn, NeedRead
from ngo_kit.operations import operation
from ngo_kit.schemas import coerce


class Needs(InventoryBase):
    """Needs recorded, listed, cancelled, fulfilled by issues and compared with stock."""

    @operation("POST /needs", permission="inventory.issue", status=201)
    def create_need(
        self, data: NeedIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> NeedRead:
        """Record a need (需求) for an item by a beneficiary, site or project (``inventory.issue``)."""
        tx = self.tx
        spec = coerce(NeedIn, data, kwargs)
        tx.require("inventory.issue")
        item = self._item(spec.item)
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "item_id": item.id,
            "quantity": self._base_quantity(item, spec.quantity, None),
            "fulfilled": ZERO,
            "requester_ref": spec.requester,
            "requester_kind": spec.requester_kind,
            "priority": spec.priority,
            "state": "open",
            "note": spec.note,
            "created_at": utcnow(),
        }
        self.db.execute(sa.insert(Need).values(values))
        tx.audit("inventory.need_created", "inventory_need", values["id"], f"need of {item.code}")
        return NeedRead.model_validate(values)

    @operation("GET /needs/{need_id}", permission="inventory.view")
    def need(self, need_id: uuid.UUID | str) -> NeedRead:
        """One need (``inventory.view``)."""
        self.tx.require("inventory.view")
        return NeedRead.model_validate(self.tx.get_owned(Need, need_id, "Need"))

    @operation("GET /needs", permission="inventory.view")
    def needs(self, *, state: str | None = "open") -> list[NeedRead]:
        """Needs by priority (1 first), then age (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        stmt = sa.select(Need).where(Need.org_id == tx.org_id)
        if state is not None:
            stmt = stmt.where(Need.state == state)
        rows = tx.session.scalars(stmt.order_by(Need.priority, Need.created_at, Need.id))
        return [NeedRead.model_validate(r) for r in rows]

    @operation("POST /needs/{need_id}/cancel", permission="inventory.issue")
    def cancel_need(self, need_id: uuid.UUID | str) -> NeedRead:
        """Close an open need without fulfilling it (``inventory.issue``)."""
        tx = self.tx
        tx.require("inventory.issue")
        row: Need = tx.get_owned(Need, need_id, "Need")
        done = self.db.execute(
            sa.update(Need).where(Need.id == row.id, Need.state == "open").values(state="cancelled")
        )
        if done.rowcount != 1:
            raise ValidationFailed("need", "need_closed")
        tx.audit("inventory.need_cancelled", "inventory_need", row.id, "need cancelled")
        tx.session.refresh(row)
        return NeedRead.model_validate(row)

    @operation("GET /need-gaps", permission="inventory.view")
    def needs_vs_stock(self) -> list[NeedGap]:
        """Open needs against stock on hand, per item: the shortfall is what to ask donors for."""
        tx = self.tx
        tx.require("inventory.view")
        rows = self.db.execute(
            sa.select(Need.item_id, Item.code, sa.func.sum(Need.quantity - Need.fulfilled))
            .join(Item, Item.id == Need.item_id)
            .where(Need.org_id == tx.org_id, Need.state == "open")
            .group_by(Need.item_id, Item.code)
            .order_by(Item.code)
        )
        out = []
        for item_id, code, needed in rows:
            needed = Decimal(needed).quantize(Decimal("0.0001"))
            have = self._on_hand(item_id)
            out.append(
                NeedGap(
                    item_id=item_id,
                    item_code=code,
                    needed=needed,
                    on_hand=have,
                    shortfall=max(needed - have, ZERO),
                )
            )
        return out

    def _open_need(self, need_id: uuid.UUID, item: ItemRow) -> Need:
        need: Need = self.tx.get_owned(Need, need_id, "Need")
        if need.state != "open":
            raise ValidationFailed("need", "need_closed")
        if need.item_id != item.id:
            raise ValidationFailed("need", "need_other_item")
        return need

    def _fulfil(self, need: Need, quantity: Decimal) -> None:
        tx = self.tx
        done = self.db.execute(
            sa.update(Need)
            .where(Need.id == need.id, Need.state == "open")
            .values(fulfilled=Need.fulfilled + quantity)
        )
        if done.rowcount != 1:
            raise ValidationFailed("need", "need_closed")
        closed = self.db.execute(
            sa.update(Need)
            .where(Need.id == need.id, Need.state == "open", Need.fulfilled >= Need.quantity)
            .values(state="fulfilled")
        )
        if closed.rowcount == 1:
            tx.session.refresh(need)
            tx.emit("ngo_kit_need_fulfilled", need=NeedRead.model_validate(need))

    def _unfulfil(self, need_id: uuid.UUID, quantity: Decimal) -> None:
        tx = self.tx
        self.db.execute(
            sa.update(Need)
            .where(Need.id == need_id, Need.org_id == tx.org_id)
            .values(
                fulfilled=Need.fulfilled - quantity,
                state=sa.case((Need.state == "fulfilled", "open"), else_=Need.state),
            )
        )
