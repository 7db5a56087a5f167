"""Inventory tests run on a kit with the inventory module alone (it requires nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ngo_kit import SYSTEM, Kit
from ngo_kit.context import Context
from ngo_kit.modules.inventory.testing import Recorder, Worked, run_worked_example
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory


@pytest.fixture
def recorder() -> Recorder:
    """Records the inventory events of the ``kit`` fixture."""
    return Recorder()


@pytest.fixture
def kit(kit_factory: KitFactory, recorder: Recorder) -> Kit:
    """A kit with only the inventory module, and the event recorder."""
    return kit_factory(modules=["inventory"], plugins=[recorder])


@pytest.fixture
def catalogue(kit: Kit, org: OrgRead) -> OrgRead:
    """test-org with a warehouse (shelf-1 inside it), a lot-tracked milk and untracked kits."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.create_category(code="comfort", name="Comfort kits", name_zh="安慰包")
        inv.create_category(code="nutrition", name="Nutrition", name_zh="营养品")
        inv.create_item(
            code="kit", name="Comfort kit", name_zh="安慰包", category="comfort", reorder_level=12
        )
        inv.create_item(
            code="milk",
            name="Milk powder",
            name_zh="奶粉",
            category="nutrition",
            unit="tin",
            pack_units={"box": 12},
            tracked_by_lot=True,
            perishable=True,
            shelf_life_days=365,
        )
        inv.create_location(code="wh", name="Warehouse")
        inv.create_location(code="shelf-1", name="Shelf 1", parent="wh")
    return org


@pytest.fixture
def worked(kit: Kit, catalogue: OrgRead) -> Worked:
    """The worked example, run in test-org."""
    return run_worked_example(kit, catalogue)


@pytest.fixture
def sys_tx(kit: Kit, catalogue: OrgRead) -> Iterator[Context]:
    """A system transaction in test-org with the catalogue in place."""
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        yield tx
