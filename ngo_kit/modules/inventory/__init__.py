"""The inventory module: donated goods in and out with full traceability.

Double-entry moves between real and virtual locations, lots and expiry, stock levels kept in
rows, donor trace reports, needs, documents, reports and CSV/XLSX files. Reached as
``tx.inventory`` (see :class:`~ngo_kit.modules.inventory.service.InventoryService`).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ngo_kit.audit import ChainCheck
from ngo_kit.hookspecs import hookimpl
from ngo_kit.modules.inventory import hookspecs
from ngo_kit.modules.inventory.checks import LayerCheck, StockCheck
from ngo_kit.modules.inventory.models import MOVE_FIELDS, Move
from ngo_kit.modules.inventory.service import CHAIN, InventoryService
from ngo_kit.plugins import Module, Permission, Registrar

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.kit import Kit
    from ngo_kit.tenancy import OrgRead

HERE = Path(__file__).parent

PERMISSIONS = (
    Permission("inventory.view", "see the catalogue, stock, moves and reports", ("staff",)),
    Permission("inventory.receive", "receive goods from donors and suppliers", ("staff",)),
    Permission("inventory.issue", "issue goods, transfer stock and record needs", ("staff",)),
    Permission("inventory.approve", "approve dispatches (first or second approver)"),
    Permission("inventory.adjust", "post stocktakes, scrap goods and reverse moves"),
    Permission("inventory.manage", "manage the catalogue and locations"),
)

MOVE_CHECK = ChainCheck("inventory_move", CHAIN, Move.__table__, MOVE_FIELDS)  # type: ignore[arg-type]

MODULE = Module(
    name="inventory",
    version="0.1.0",
    description="Donated goods in and out with full traceability, lots, expiry and needs.",
    requires=(),
    permissions=PERMISSIONS,
    checks=(MOVE_CHECK, StockCheck(), LayerCheck()),
    service=InventoryService,
    models="ngo_kit.modules.inventory.models",
    hookspecs=hookspecs,
    migrations=HERE / "migrations" / "versions",
    locale_dir=HERE / "i18n",
    sends_messages=False,
    imports=("openpyxl",),
    install="ngo-kit[inventory]",
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the inventory module."""
    register(MODULE)


@hookimpl
def ngo_kit_org_created(tx: Context, org: OrgRead) -> None:
    """Seed the new organisation's virtual locations (donors, beneficiaries, scrap...)."""
    if "inventory" in tx.kit.modules:
        tx.inventory.seed_locations()


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """``ngo-kit inventory warn-expiring``: the daily expiry warning, for cron."""
    from ngo_kit.cli import pass_kit

    @cli.group("inventory")
    def inventory_group() -> None:
        """The inventory module."""

    @inventory_group.command("warn-expiring")
    @click.option("--days", default=30, show_default=True, help="Warning window in days.")
    @click.option("--org", "orgs", multiple=True, help="Only these organisations (slugs).")
    @click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="Pretend today is this day.")
    @pass_kit
    def warn_expiring(
        kit: Kit, days: int, orgs: tuple[str, ...], today: dt.datetime | None
    ) -> None:
        """Fire ngo_kit_lot_expiring for lots expiring within DAYS (once per lot per day)."""
        from ngo_kit.tenancy import SYSTEM

        with kit.begin(actor=SYSTEM) as tx:
            slugs = list(orgs) or [o.slug for o in tx.tenancy.list_organisations()]
        day = today.date() if today else None
        total = 0
        for slug in slugs:
            with kit.begin(org=slug, actor=SYSTEM) as tx:
                for lot in tx.inventory.warn_expiring(within_days=days, today=day):
                    total += 1
                    click.echo(
                        f"{slug}\t{lot.item_code}\t{lot.lot_code}\t{lot.expires_on}"
                        f"\t{lot.days_left}\t{lot.quantity}"
                    )
        click.echo(f"warned about {total} lots", err=True)


if importlib.util.find_spec("fastapi") is not None:  # the web extra is installed
    from ngo_kit.modules.inventory.web import ngo_kit_register_routes  # noqa: F401
