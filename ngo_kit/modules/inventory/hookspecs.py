"""Hook specifications of the inventory module (added when the module is enabled)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ngo_kit.hookspecs import hookspec

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.inventory.schemas import ExpiringLot, ItemRead, MoveRead, NeedRead


@hookspec
def ngo_kit_stock_moved(tx: Context, move: MoveRead) -> None:
    """Event: a stock move was written (receive, issue, transfer, adjust, scrap or reverse).

    Called once per move, inside the transaction that wrote it and after the stock levels were
    updated, with the move (its ``sources`` say which receipts its quantity came from). An
    exception rolls the whole operation back. Returns nothing.
    """


@hookspec
def ngo_kit_stock_low(tx: Context, item: ItemRead, on_hand: Decimal) -> None:
    """Event: an item's stock on hand (all locations) fell to or below its reorder level.

    Called inside the transaction of the move that crossed the level (once per crossing, not on
    every later issue), with the item and the quantity left. Returns nothing.
    """


@hookspec
def ngo_kit_lot_expiring(tx: Context, lot: ExpiringLot) -> None:
    """Event: a lot with stock on hand expires within the warning window.

    Called by ``tx.inventory.warn_expiring()`` (run daily by ``ngo-kit inventory
    warn-expiring``), at most once per lot per day, with the lot, its item, expiry date, days
    left and quantity on hand. Returns nothing.
    """


@hookspec
def ngo_kit_need_fulfilled(tx: Context, need: NeedRead) -> None:
    """Event: issues linked to a need reached its requested quantity; the need is closed.

    Called inside the transaction of the issue that completed it, with the need as it is now
    (``state == "fulfilled"``). Returns nothing.
    """
