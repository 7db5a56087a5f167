"""Hook specifications of the points module (added when the module is enabled)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ngo_kit.hookspecs import hookspec

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.points.schemas import (
        BadgeAwardRead,
        LevelRead,
        RedemptionRead,
        TransactionRead,
    )
    from ngo_kit.plugins import Registrar


@hookspec
def ngo_kit_register_points_rules(register: Registrar[Any]) -> None:
    """Collect: rule types organisations can configure, ``register(RuleType(...))``.

    Called the first time a kit's points service needs its rule types. A ``RuleType`` names
    the event it listens to (``user_registered``, ``check_in``, ``hours_approved``...) and the
    event fields a rule may use for "per unit" amounts or formulas. The plugin that fires the
    event calls ``tx.points.apply_rules(event, member_id, fields, key=...)`` inside its
    transaction. Two rule types with one name stop the kit with ``ConfigurationError``.
    """


@hookspec
def ngo_kit_points_awarded(tx: Context, award: TransactionRead) -> None:
    """Event: points were awarded to a member (manually, by a rule or in a batch).

    Called inside the awarding transaction after the entries are written, with the operation
    as a ``TransactionRead`` (``member_id``, ``points``, ``balance_after``, ``rule``). Writes
    made here commit or roll back with the award. Returns nothing.
    """


@hookspec
def ngo_kit_points_spent(tx: Context, spending: TransactionRead) -> None:
    """Event: points left a member's account (deduction, transfer out or redemption).

    Called inside the transaction after the entries are written. Returns nothing.
    """


@hookspec
def ngo_kit_reward_redeemed(tx: Context, redemption: RedemptionRead) -> None:
    """Event: a member redeemed a reward (points and stock were taken in this transaction).

    Called after the fulfilment decision, so ``redemption.status`` is ``requested`` or, when a
    plugin fulfilled it, ``fulfilled``. Returns nothing.
    """


@hookspec(firstresult=True)
def ngo_kit_fulfil_redemption(tx: Context, redemption: RedemptionRead) -> str | None:
    """Decision: fulfil a new redemption now (issue the goods from inventory, say).

    Called inside the redeeming transaction. Return a short note (e.g. the stock move id) when
    this plugin fulfilled the redemption, which is then marked ``fulfilled``; return ``None``
    to leave it ``requested`` for staff. Raising rolls the whole redemption back.
    """


@hookspec(firstresult=True)
def ngo_kit_hand_over_redemption(tx: Context, redemption: RedemptionRead) -> str | None:
    """Decision: staff is handing a requested redemption over (``points.fulfil``).

    Called inside the fulfilling transaction, after the redemption is marked ``fulfilled``.
    A plugin that hands the goods over (issues a stock-backed reward from inventory, say)
    does so and returns a short note, which is added to the redemption's note; return
    ``None`` when the reward is none of this plugin's business. Raising rolls the whole
    fulfilment back.
    """


@hookspec
def ngo_kit_badge_awarded(tx: Context, badge: BadgeAwardRead) -> None:
    """Event: a member was awarded a badge (by criteria or by hand), inside the transaction.

    Returns nothing.
    """


@hookspec
def ngo_kit_level_reached(tx: Context, member_id: uuid.UUID, level: LevelRead) -> None:
    """Event: a member's lifetime earned points crossed a level's threshold.

    Called once per level crossed, lowest first, inside the awarding transaction. Returns
    nothing.
    """
