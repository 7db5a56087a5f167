"""The catalogue: categories, items with their pack units, locations and lots."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, Conflict, NotFound, ValidationFailed
from ngo_kit.modules.inventory.base import VIRTUAL_LOCATIONS, InventoryBase
from ngo_kit.modules.inventory.models import Category, Item, Location, PackUnit
from ngo_kit.modules.inventory.schemas import (
    CategoryIn,
    CategoryRead,
    ItemIn,
    ItemRead,
    LocationIn,
    LocationRead,
    LotRead,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import coerce


class Catalogue(InventoryBase):
    """Categories, items, locations and lots: created once, never changed."""

    @operation(
        "POST /categories", permission="inventory.manage", status=201, errors=(AlreadyExists,)
    )
    def create_category(
        self, data: CategoryIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> CategoryRead:
        """Add a category (``inventory.manage``). ``AlreadyExists`` for a taken code."""
        tx = self.tx
        spec = coerce(CategoryIn, data, kwargs)
        tx.require("inventory.manage")
        values = {"id": new_id(), "org_id": tx.org_id, **spec.model_dump()}
        with tx.translate_integrity(AlreadyExists("Category", spec.code)):
            self.db.execute(sa.insert(Category).values(values))
        tx.audit("inventory.category_created", "inventory_category", values["id"], spec.code)
        return CategoryRead.model_validate(values)

    @operation(
        "POST /items",
        permission="inventory.manage",
        status=201,
        errors=(AlreadyExists,),
        custom=True,
    )
    def create_item(
        self, data: ItemIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ItemRead:
        """Add a catalogue item with its pack units (``inventory.manage``).

        Raises ``AlreadyExists`` for a taken code, ``NotFound`` for an unknown category.
        """
        tx = self.tx
        spec = coerce(ItemIn, data, kwargs)
        tx.require("inventory.manage")
        return self._create_item(spec)

    def _create_item(self, spec: ItemIn) -> ItemRead:
        tx = self.tx
        category_id = None
        if spec.category is not None:
            category_id = self.db.scalar(
                sa.select(Category.id).where(
                    Category.org_id == tx.org_id, Category.code == spec.category
                )
            )
            if category_id is None:
                raise NotFound("Category", spec.category)
        values = spec.model_dump(exclude={"category", "pack_units"})
        values.update(id=new_id(), org_id=tx.org_id, category_id=category_id, created_at=utcnow())
        with tx.translate_integrity(AlreadyExists("Item", spec.code)):
            self.db.execute(sa.insert(Item).values(values))
        if spec.pack_units:
            self.db.execute(
                sa.insert(PackUnit),
                [
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "item_id": values["id"],
                        "name": n,
                        "factor": f,
                    }
                    for n, f in spec.pack_units.items()
                ],
            )
        tx.audit("inventory.item_created", "inventory_item", values["id"], spec.code)
        return ItemRead.model_validate({**values, "pack_units": dict(spec.pack_units)})

    @operation("GET /items/{ref}", permission="inventory.view")
    def item(self, ref: str | uuid.UUID) -> ItemRead:
        """One item by code or id (``inventory.view``); ``NotFound`` otherwise."""
        self.tx.require("inventory.view")
        row = self._item(ref)
        return self._item_read(row)

    @operation("GET /items", permission="inventory.view", custom=True)
    def items(self) -> list[ItemRead]:
        """Every item of the catalogue by code (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        packs: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)
        for item_id, name, factor in self.db.execute(
            sa.select(PackUnit.item_id, PackUnit.name, PackUnit.factor).where(
                PackUnit.org_id == tx.org_id
            )
        ):
            packs[item_id][name] = factor
        rows = self.db.execute(
            sa.select(*Item.__table__.c).where(Item.org_id == tx.org_id).order_by(Item.code)
        )
        return [ItemRead.model_validate({**r._mapping, "pack_units": packs[r.id]}) for r in rows]

    @operation(
        "POST /locations",
        permission="inventory.manage",
        status=201,
        errors=(AlreadyExists,),
        custom=True,
    )
    def create_location(
        self, data: LocationIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> LocationRead:
        """Add a real location, optionally inside ``parent`` (``inventory.manage``)."""
        tx = self.tx
        spec = coerce(LocationIn, data, kwargs)
        tx.require("inventory.manage")
        parent_id = None
        if spec.parent is not None:
            parent = self._location(spec.parent)
            if parent.kind != "internal":
                raise ValidationFailed("parent", "not_a_stock_location")
            parent_id = parent.id
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "code": spec.code,
            "name": spec.name,
            "kind": "internal",
            "parent_id": parent_id,
        }
        with tx.translate_integrity(AlreadyExists("Location", spec.code)):
            self.db.execute(sa.insert(Location).values(values))
        tx.audit("inventory.location_created", "inventory_location", values["id"], spec.code)
        return LocationRead.model_validate(values)

    @operation("GET /locations", permission="inventory.view", custom=True)
    def locations(self) -> list[LocationRead]:
        """Every location, real and virtual, by code (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        rows = tx.session.scalars(
            sa.select(Location).where(Location.org_id == tx.org_id).order_by(Location.code)
        )
        return [LocationRead.model_validate(r) for r in rows]

    @operation("GET /items/{item}/lots/{code}", permission="inventory.view")
    def lot(self, item: str | uuid.UUID, code: str) -> LotRead:
        """One lot of an item (``inventory.view``)."""
        self.tx.require("inventory.view")
        row = self._lot(self._item(item), code)
        assert row is not None
        return LotRead.model_validate(row)

    @operation(
        not_http="run once by the ngo_kit_org_created hook as the organisation is created",
        changes=True,
        permission="inventory.manage",
        errors=(Conflict,),
    )
    def seed_locations(self) -> None:
        """Create this organisation's virtual locations (``inventory.manage``).

        Called by ``ngo_kit_org_created`` as the organisation is created (the system actor);
        a second call raises ``Conflict``: they exist already.
        """
        tx = self.tx
        tx.require("inventory.manage")
        self.db.execute(
            sa.insert(Location),
            [
                {
                    "id": new_id(),
                    "org_id": tx.org_id,
                    "code": code,
                    "name": name,
                    "kind": kind,
                    "parent_id": None,
                }
                for code, (kind, name) in VIRTUAL_LOCATIONS.items()
            ],
        )
