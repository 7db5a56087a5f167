"""Test helpers for the inventory module, for our tests and plugin authors' alike.

* :class:`Recorder`: a plugin that records every inventory event;
* :func:`run_worked_example`: the children's cancer charity story as data, two donations split
  across lots, locations and beneficiaries (the hand-computed answers are in
  ``tests/inventory/test_reports.py`` and the module's docs page).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ngo_kit import SYSTEM, Kit
from ngo_kit.context import Context
from ngo_kit.hookspecs import hookimpl
from ngo_kit.modules.inventory.schemas import Operation
from ngo_kit.tenancy import OrgRead


@dataclass
class Recorder:
    """A plugin that records every inventory event it sees."""

    ngo_kit_plugin_name = "tests.inventory.recorder"
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def named(self, hook: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.events if name == hook]

    @hookimpl(optionalhook=True)
    def ngo_kit_stock_moved(self, tx: Context, move: Any) -> None:
        self.events.append(("ngo_kit_stock_moved", {"move": move}))

    @hookimpl(optionalhook=True)
    def ngo_kit_stock_low(self, tx: Context, item: Any, on_hand: Decimal) -> None:
        self.events.append(("ngo_kit_stock_low", {"item": item, "on_hand": on_hand}))

    @hookimpl(optionalhook=True)
    def ngo_kit_lot_expiring(self, tx: Context, lot: Any) -> None:
        self.events.append(("ngo_kit_lot_expiring", {"lot": lot}))

    @hookimpl(optionalhook=True)
    def ngo_kit_need_fulfilled(self, tx: Context, need: Any) -> None:
        self.events.append(("ngo_kit_need_fulfilled", {"need": need}))


@dataclass
class Worked:
    """The worked example's operations, by step number."""

    ops: dict[int, Operation]


def run_worked_example(kit: Kit, org: OrgRead) -> Worked:
    """Two donations split across lots, locations and beneficiaries (see test_reports.py)."""
    ops: dict[int, Operation] = {}
    with kit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.inventory
        ops[1] = inv.receive(
            item="milk", quantity=2, unit="box", to="shelf-1", lot="M1",
            expires_on=dt.date(2026, 12, 10), donor="Hope Foundation", donation="D-100",
            unit_value=Decimal(30),
        )  # fmt: skip
        ops[2] = inv.receive(
            item="milk", quantity=12, to="shelf-1", lot="M2", expires_on=dt.date(2027, 1, 31),
            donor="Hope Foundation", donation="D-100", unit_value=Decimal("2.5"),
        )  # fmt: skip
        ops[3] = inv.receive(
            item="kit", quantity=10, to="wh", donor="Hope Foundation", donation="D-100",
            unit_value=Decimal(20),
        )  # fmt: skip
        ops[4] = inv.receive(item="kit", quantity=6, to="wh", donor="City Rotary", donation="D-200")
        ops[5] = inv.receive(
            item="milk", quantity=6, to="shelf-1", lot="M1", donor="City Rotary",
            donation="D-200", unit_value=Decimal(3),
        )  # fmt: skip
        ops[6] = inv.issue(item="milk", quantity=28, from_="shelf-1", recipient="child-A")
        ops[7] = inv.transfer(item="kit", quantity=12, from_="wh", to="shelf-1")
        ops[8] = inv.issue(item="kit", quantity=3, from_="shelf-1", recipient="child-B")
        ops[9] = inv.issue(
            item="kit", quantity=4, from_="shelf-1", recipient="art-therapy",
            recipient_kind="project",
        )  # fmt: skip
        ops[10] = inv.issue(item="milk", quantity=5, from_="shelf-1", lot="M2", recipient="child-A")
        ops[11] = inv.scrap(item="milk", quantity=1, from_="shelf-1", lot="M1", reason="damaged")
        ops[12] = inv.adjust(item="kit", location="wh", counted=3, reason="stocktake")
        ops[13] = inv.reverse(ops[8].moves[0].id, reason="issued to the wrong child")
    return Worked(ops)
