"""The points module: a double-entry points ledger, earning rules, rewards, expiry and recognition.

Enable it with ``Kit(..., modules=["points", ...])``; its service is ``tx.points``. It needs no
other module: members are account ids (core membership ``actor_id``s), and a member's points
account is opened on the first award.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ngo_kit.audit import ChainCheck, Problem
from ngo_kit.cli import pass_kit
from ngo_kit.errors import NotFound
from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.modules.points import hookspecs
from ngo_kit.modules.points.checks import EARNED_CHECK, OPERATION_CHECK
from ngo_kit.modules.points.models import (
    ENTRY_FIELDS,
    MEMBER,
    PointsAccount,
    PointsEntry,
    PointsLot,
)
from ngo_kit.modules.points.service import (
    BUILTIN_RULE_TYPES,
    CHAIN,
    LimitReached,
    NotReversible,
    PointsService,
    RewardUnavailable,
    RuleType,
    TransfersDisabled,
    WrongStatus,
    seed_organisation,
)
from ngo_kit.plugins import Module, Permission, PersonalData, Registrar

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.tenancy import OrgRead

HERE = Path(__file__).parent


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the points module."""
    register(MODULE)


def _export(tx: Context, member_id: uuid.UUID) -> dict[str, Any] | None:
    data: dict[str, Any] | None = PointsService(tx).personal_data(member_id)
    return data


def _erase(tx: Context, member_id: uuid.UUID) -> None:
    PointsService(tx)._erase_personal_data(member_id)


#: The member's account (and, through it, ledger entries and lots), the operations, period
#: totals, redemptions and badges naming the member.
PERSONAL_DATA = PersonalData(
    "points",
    (
        "points_account",
        "points_txn",
        "points_tally",
        "points_redemption",
        "points_badge_award",
    ),
    export=_export,
    erase=_erase,
)


@hookimpl(optionalhook=True)
def ngo_kit_register_personal_data(register: Registrar[PersonalData]) -> None:
    """Registration exports or erases a person: the points module's part (when registration
    is enabled; without it the hook is never called)."""
    register(PERSONAL_DATA)


@hookimpl
def ngo_kit_register_points_rules(register: Registrar[RuleType]) -> None:
    """The built-in rule types: welcome bonus, daily check-in, manual award."""
    for rule_type in BUILTIN_RULE_TYPES:
        register(rule_type)


class BalanceCheck:
    """``ngo-kit verify``: every account's balance equals the sum of its entries, every
    operation's entries sum to zero, no member is negative, and a member's open lots add up to
    the balance."""

    name = "points.balances"

    def run(self, session: Session) -> list[Problem]:
        """Return one problem per account or operation that is off."""
        problems: list[Problem] = []
        sums = (
            sa.select(PointsEntry.account_id, sa.func.sum(PointsEntry.amount).label("total"))
            .group_by(PointsEntry.account_id)
            .subquery()
        )
        lots = (
            sa.select(PointsLot.account_id, sa.func.sum(PointsLot.remaining).label("open"))
            .group_by(PointsLot.account_id)
            .subquery()
        )
        rows = session.execute(
            sa.select(
                PointsAccount.org_id,
                PointsAccount.id,
                PointsAccount.kind,
                PointsAccount.balance,
                sa.func.coalesce(sums.c.total, 0),
                sa.func.coalesce(lots.c.open, 0),
            )
            .outerjoin(sums, sums.c.account_id == PointsAccount.id)
            .outerjoin(lots, lots.c.account_id == PointsAccount.id)
        )
        for org_id, account_id, kind, balance, total, open_lots in rows:
            if int(balance) != int(total):
                problems.append(
                    Problem(
                        self.name,
                        org_id,
                        f"account {account_id} ({kind}) has balance {balance} "
                        f"but its entries sum to {total}",
                        str(account_id),
                    )
                )
            if kind == MEMBER and int(balance) < 0:
                problems.append(
                    Problem(self.name, org_id, f"account {account_id} is negative", str(account_id))
                )
            if kind == MEMBER and int(open_lots) != int(balance):
                problems.append(
                    Problem(
                        self.name,
                        org_id,
                        f"account {account_id} has balance {balance} but open lots of {open_lots}",
                        str(account_id),
                    )
                )
        unbalanced = session.execute(
            sa.select(PointsEntry.org_id, PointsEntry.txn_id, sa.func.sum(PointsEntry.amount))
            .group_by(PointsEntry.org_id, PointsEntry.txn_id)
            .having(sa.func.sum(PointsEntry.amount) != 0)
        )
        for org_id, txn_id, total in unbalanced:
            problems.append(
                Problem(
                    self.name,
                    org_id,
                    f"operation {txn_id} is unbalanced: its entries sum to {total}",
                    str(txn_id),
                )
            )
        return problems


POINTS_CHAIN_CHECK = ChainCheck("points.ledger", CHAIN, PointsEntry.__table__, ENTRY_FIELDS)  # type: ignore[arg-type]
BALANCE_CHECK = BalanceCheck()

PERMISSIONS = (
    Permission("points.award", "award points and grant badges by hand", ("staff",)),
    Permission("points.adjust", "deduct points, reverse operations and run expiry"),
    Permission("points.view", "see any member's balance, statement and badges", ("staff",)),
    Permission("points.configure", "set expiry and transfers, earning rules, levels and badges"),
    Permission("rewards.manage", "add and change rewards in the catalogue"),
    Permission("rewards.fulfil", "redeem for members, fulfil and cancel redemptions", ("staff",)),
)

MODULE = Module(
    name="points",
    version="0.1.0",
    description="points ledger, earning rules, rewards, expiry, levels, badges, leaderboards",
    requires=(),
    permissions=PERMISSIONS,
    checks=(POINTS_CHAIN_CHECK, BALANCE_CHECK, OPERATION_CHECK, EARNED_CHECK),
    service=PointsService,
    models="ngo_kit.modules.points.models",
    hookspecs=hookspecs,
    migrations=HERE / "migrations" / "versions",
    locale_dir=HERE / "i18n",
    sends_messages=False,
)


@hookimpl
def ngo_kit_org_created(tx: Context, org: OrgRead) -> None:
    """Open the new organisation's system accounts (issuance, redemption, expiry, adjustment)."""
    if "points" in tx.kit.modules:
        seed_organisation(tx)


@hookimpl(optionalhook=True)
def ngo_kit_user_registered(tx: Context, user: Any) -> None:
    """Welcome bonus: fire the organisation's ``user_registered`` rules for the new account."""
    if tx.org is None or "points" not in tx.kit.modules:
        return
    user_id = user.id if isinstance(user.id, uuid.UUID) else uuid.UUID(str(user.id))
    if "registration" in tx.kit.modules:  # points go to members only (none while a request
        try:  # to join waits for approval)
            tx.tenancy.member(user_id)
        except NotFound:
            return
    with tx.elevated():  # registration decided who may register
        tx.points.apply_rules("user_registered", user_id, key=f"user_registered:{user_id}")


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """``ngo-kit points expire``."""
    cli.add_command(points_group)


@click.group("points")
def points_group() -> None:
    """The points ledger."""


@points_group.command("expire")
@click.option("--org", "org_slug", default=None, help="Only this organisation (default: all).")
@click.option(
    "--as-of",
    default=None,
    help="Expire what is due at this UTC time (ISO 8601; default: now).",
)
@pass_kit
def expire_command(kit: Kit, org_slug: str | None, as_of: str | None) -> None:
    """Expire points whose date has passed (idempotent; run it daily from cron)."""
    when = None
    if as_of:
        when = dt.datetime.fromisoformat(as_of)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    for slug, points in expire_all(kit, org_slug, when):
        click.echo(f"{slug}: {points} points expired")


def expire_all(
    kit: Kit, org_slug: str | None = None, now: dt.datetime | None = None
) -> list[tuple[str, int]]:
    """Run expiry for one organisation or all, each in its own transaction."""
    from ngo_kit.tenancy import SYSTEM

    with kit.begin(actor=SYSTEM) as tx:
        slugs = [o.slug for o in tx.tenancy.list_organisations()]
    if org_slug is not None:
        slugs = [org_slug]
    done: list[tuple[str, int]] = []
    for slug in slugs:
        with kit.begin(org=slug, actor=SYSTEM) as tx:
            done.append((slug, tx.points.expire(now)))
    return done


__all__ = [
    "BALANCE_CHECK",
    "MODULE",
    "PERMISSIONS",
    "POINTS_CHAIN_CHECK",
    "LimitReached",
    "NotReversible",
    "PointsService",
    "RewardUnavailable",
    "RuleType",
    "TransfersDisabled",
    "WrongStatus",
    "expire_all",
]


if importlib.util.find_spec("fastapi") is not None:  # the web extra is installed
    from ngo_kit.modules.points.web import ngo_kit_register_routes  # noqa: F401
