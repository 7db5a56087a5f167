"""HTTP routes of the inventory module (the ``web`` extra): the catalogue and locations, goods
received and issued, stock on hand, movement history and a donation's trace report.

Mounted by ``ngo_kit.web.create_app`` under ``/api/orgs/{org}/inventory``. Routes hold no
business rule: each opens one unit of work and calls one method of ``tx.inventory``, which
checks the permissions (``inventory.view``, ``inventory.receive``, ``inventory.issue``...).
Quantities are exact decimals: send them as JSON strings (``"2.5"``) or integers, never as
JSON floats (refused with the rule ``float_not_allowed``).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from ngo_kit.context import Context
from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.plugins import Registrar
from ngo_kit.web import AwareTime, RequestContext, Routes, request_context

from .schemas import (
    IssueIn,
    ItemIn,
    ItemRead,
    LocationIn,
    LocationRead,
    MoveRead,
    Operation,
    ReceiveIn,
    StockLine,
    TraceReport,
)
from .service import InventoryService

Ctx = Annotated[RequestContext, Depends(request_context)]
Code = Annotated[str | None, Query(min_length=1, max_length=63)]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


def _inventory(tx: Context) -> InventoryService:
    """``tx.inventory``, typed."""
    service: InventoryService = tx.inventory
    return service


def build_router() -> APIRouter:
    """The inventory routes (relative to ``/api/orgs/{org}/inventory``)."""
    router = APIRouter()

    @router.get("/items")
    def items(ctx: Ctx) -> list[ItemRead]:
        """The catalogue, by code (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).items()

    @router.post("/items", status_code=201)
    def create_item(body: ItemIn, ctx: Ctx) -> ItemRead:
        """Add a catalogue item with its pack units (``inventory.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).create_item(body)

    @router.get("/locations")
    def locations(ctx: Ctx) -> list[LocationRead]:
        """Every location, real and virtual, by code (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).locations()

    @router.post("/locations", status_code=201)
    def create_location(body: LocationIn, ctx: Ctx) -> LocationRead:
        """Add a storage location, optionally inside another (``inventory.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).create_location(body)

    @router.post("/receipts", status_code=201)
    def receive(body: ReceiveIn, ctx: Ctx) -> Operation:
        """Goods in (入库) from a donor or supplier (``inventory.receive``).

        A repeated ``key`` returns the first result and writes nothing.
        """
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).receive(body)

    @router.post("/issues", status_code=201)
    def issue(body: IssueIn, ctx: Ctx) -> Operation:
        """Goods out (出库) to a beneficiary, household, project, activity or site
        (``inventory.issue``); ``insufficient_stock`` (409) writes nothing."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).issue(body)

    @router.get("/stock")
    def stock_on_hand(ctx: Ctx, location: Code = None, category: Code = None) -> list[StockLine]:
        """Stock on hand by item, location and lot, with value (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).stock_on_hand(location=location, category=category)

    @router.get("/moves")
    def history(
        ctx: Ctx,
        item: Code = None,
        location: Code = None,
        kind: Code = None,
        donation: Text = None,
        recipient: Text = None,
        since: AwareTime | None = None,
        until: AwareTime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[MoveRead]:
        """Movement history, newest first, filtered (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).history(
                item=item,
                location=location,
                kind=kind,
                donation=donation,
                recipient=recipient,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )

    @router.get("/donations/{donation}/trace")
    def trace_donation(
        donation: Annotated[str, Path(min_length=1, max_length=200)],
        ctx: Ctx,
        donor_facing: bool = True,
    ) -> TraceReport:
        """Where a donation's goods went, exact to the unit (物资流向追溯报告), ``inventory.view``.

        Donor-facing by default: beneficiaries and households appear as "Beneficiary 1"...
        """
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).trace_donation(donation, donor_facing=donor_facing)

    return router


@hookimpl
def ngo_kit_register_routes(register: Registrar[Routes], kit: Kit) -> None:
    """Contribute the inventory routes (collect hook of ``ngo_kit.web``)."""
    register(Routes("inventory", build_router()))


__all__ = ["build_router", "ngo_kit_register_routes"]
