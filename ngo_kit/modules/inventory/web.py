"""HTTP routes of the inventory module (the ``web`` extra): the catalogue and locations, goods
received and issued, stock on hand, movement history, a donation's trace report, and the CSV
and XLSX files (stock and history downloads, item and opening stock uploads).

Mounted by ``ngo_kit.web.create_app`` under ``/api/orgs/{org}/inventory``. Routes hold no
business rule: each opens one unit of work and calls one method of ``tx.inventory``, which
checks the permissions (``inventory.view``, ``inventory.receive``, ``inventory.issue``...).
Quantities are exact decimals: send them as JSON strings (``"2.5"``) or integers, never as
JSON floats (refused with the rule ``float_not_allowed``).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from ngo_kit.context import Context
from ngo_kit.errors import ValidationFailed
from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.plugins import Registrar
from ngo_kit.web import AwareTime, RequestContext, Routes, request_context

from .schemas import (
    ImportReport,
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
#: ``csv`` or ``xlsx``: the service refuses any other (``unknown_format``).
Format = Annotated[str, Query(min_length=1, max_length=8)]
#: What a download is sent as, by format.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: The body of an upload: the file itself, as its CSV or XLSX bytes (not JSON, not a form).
Upload = Annotated[
    bytes,
    Body(
        media_type="application/octet-stream",
        description="The CSV (UTF-8) or XLSX file itself; ``fmt`` says which.",
    ),
]
#: The content types an upload may be sent as: none that a page of another site can send with
#: the visitor's cookie without the browser asking first (a form, ``text/plain``).
UPLOAD_TYPES = ("application/octet-stream", "text/csv", MEDIA_TYPES["xlsx"])
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media_type.split(";")[0]: {} for media_type in MEDIA_TYPES.values()},
        "description": "The file, as an attachment",
    }
}


def _inventory(tx: Context) -> InventoryService:
    """``tx.inventory``, typed."""
    service: InventoryService = tx.inventory
    return service


def history_filters(
    item: Code = None,
    location: Code = None,
    kind: Code = None,
    donation: Text = None,
    recipient: Text = None,
    since: AwareTime | None = None,
    until: AwareTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """The movement history's filters, from the query string (``history``'s keywords)."""
    return {
        "item": item,
        "location": location,
        "kind": kind,
        "donation": donation,
        "recipient": recipient,
        "since": since,
        "until": until,
        "limit": limit,
        "offset": offset,
    }


HistoryFilters = Annotated[dict[str, Any], Depends(history_filters)]


def uploaded_file(request: Request, data: Upload) -> bytes:
    """The uploaded file's bytes; ``ValidationFailed`` (``body``, ``upload_content_type``) when
    the request is not sent as one of ``UPLOAD_TYPES``."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in UPLOAD_TYPES:
        raise ValidationFailed("body", "upload_content_type")
    return data


File = Annotated[bytes, Depends(uploaded_file)]


def download(data: bytes, name: str, fmt: str) -> Response:
    """``data`` as an attachment named ``name.fmt`` (``fmt`` checked by the service already)."""
    return Response(
        data,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


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
    def history(ctx: Ctx, filters: HistoryFilters) -> list[MoveRead]:
        """Movement history, newest first, filtered (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).history(**filters)

    @router.get("/moves/export", response_class=Response, responses=DOWNLOAD)
    def export_history(ctx: Ctx, filters: HistoryFilters, fmt: Format = "csv") -> Response:
        """Movement history (the filters of ``GET /moves``) as a CSV or XLSX file
        (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            data = _inventory(tx).export_history(fmt, **filters)
        return download(data, "moves", fmt)

    @router.get("/stock/export", response_class=Response, responses=DOWNLOAD)
    def export_stock(
        ctx: Ctx, fmt: Format = "csv", location: Code = None, category: Code = None
    ) -> Response:
        """Stock on hand (the filters of ``GET /stock``) as a CSV or XLSX file
        (``inventory.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            data = _inventory(tx).export_stock(fmt, location=location, category=category)
        return download(data, "stock", fmt)

    @router.post("/items/import")
    def import_items(data: File, ctx: Ctx, fmt: Format = "csv") -> ImportReport:
        """Create catalogue items from the uploaded file, all or none (``inventory.manage``).

        A file with any wrong row writes nothing; the report lists every problem by row.
        """
        ctx.require_actor()
        with ctx.begin() as tx:
            return _inventory(tx).import_items(data, fmt)

    @router.post("/opening-stock/import")
    def import_opening_stock(
        data: File, ctx: Ctx, fmt: Format = "csv", donation: Text = None
    ) -> ImportReport:
        """Receive opening stock from the uploaded file, all or none (``inventory.receive``);
        ``donation`` defaults to ``opening-stock``."""
        ctx.require_actor()
        with ctx.begin() as tx:
            inventory = _inventory(tx)
            if donation is None:
                return inventory.import_opening_stock(data, fmt)
            return inventory.import_opening_stock(data, fmt, donation=donation)

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
