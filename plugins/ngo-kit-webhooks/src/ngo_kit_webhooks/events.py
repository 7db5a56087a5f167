"""Event hook implementations: each publishes its event to the subscribed endpoints.

Hooks of modules that may not be enabled are ``optionalhook``: pluggy calls them only when
the module that specifies them is enabled. ``org_created`` is core's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ngo_kit.hookspecs import hookimpl

if TYPE_CHECKING:
    from ngo_kit.context import Context


def _publish(tx: Context, event: str, **arguments: Any) -> None:
    if "webhooks" in tx.kit.modules:
        with tx.elevated():  # the event's own service checked who may cause it
            tx.service("webhooks").publish(event, **arguments)


@hookimpl
def ngo_kit_org_created(tx: Context, org: Any) -> None:
    """``org_created``: an organisation was created (endpoints seeded in the same transaction)."""
    _publish(tx, "org_created", org=org)


@hookimpl(optionalhook=True)
def ngo_kit_user_registered(tx: Context, user: Any) -> None:
    """``user_registered`` (registration): an account was created."""
    _publish(tx, "user_registered", user=user)


@hookimpl(optionalhook=True)
def ngo_kit_points_awarded(tx: Context, award: Any) -> None:
    """``points_awarded`` (points): points were awarded to a member."""
    _publish(tx, "points_awarded", award=award)


@hookimpl(optionalhook=True)
def ngo_kit_reward_redeemed(tx: Context, redemption: Any) -> None:
    """``reward_redeemed`` (points): a member redeemed a reward."""
    _publish(tx, "reward_redeemed", redemption=redemption)


@hookimpl(optionalhook=True)
def ngo_kit_stock_moved(tx: Context, move: Any) -> None:
    """``stock_moved`` (inventory): goods were received, issued, transferred or scrapped."""
    _publish(tx, "stock_moved", move=move)


@hookimpl(optionalhook=True)
def ngo_kit_shift_completed(tx: Context, shift: Any, attendance: Any) -> None:
    """``shift_completed`` (volunteer): a volunteer completed a shift."""
    _publish(tx, "shift_completed", shift=shift, attendance=attendance)


@hookimpl(optionalhook=True)
def ngo_kit_hours_approved(tx: Context, hours: Any) -> None:
    """``hours_approved`` (volunteer): service hours were approved."""
    _publish(tx, "hours_approved", hours=hours)
