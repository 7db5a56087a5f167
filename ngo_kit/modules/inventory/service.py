"""``tx.inventory``: the inventory module's rules.

Every change of stock is a move between two locations, written to the hash-chained ledger
together with the stock level rows, the per-source layers and the allocation rows that make
the donor trace exact. Quantities are ``Decimal`` in the item's base unit.

The service is composed of one part per thing it manages, each in its own file:
``catalogue.py`` (items, categories, locations, lots), ``moves.py`` (receipts, issues,
transfers, scrap, stocktake adjustments, reversals), ``needs.py``, ``documents.py``
(multi-line receipts and dispatches), ``reports.py`` (stock, valuation, history, traces,
expiry, exports) and ``imports.py``; what they share is in ``base.py``.
"""

from __future__ import annotations

from ngo_kit.modules.inventory.base import (
    CHAIN,
    SECOND_APPROVAL_SETTING,
    VIRTUAL_LOCATIONS,
    InventoryBase,
)
from ngo_kit.modules.inventory.catalogue import Catalogue
from ngo_kit.modules.inventory.documents import Documents
from ngo_kit.modules.inventory.imports import Imports
from ngo_kit.modules.inventory.moves import Moves
from ngo_kit.modules.inventory.needs import Needs
from ngo_kit.modules.inventory.reports import PUBLIC_TRACE_SETTING, Reports


class InventoryService(Catalogue, Moves, Needs, Documents, Reports, Imports):
    """Catalogue, locations, moves, stock levels, traceability, needs, documents and reports."""


__all__ = [
    "CHAIN",
    "PUBLIC_TRACE_SETTING",
    "SECOND_APPROVAL_SETTING",
    "VIRTUAL_LOCATIONS",
    "InventoryBase",
    "InventoryService",
]
