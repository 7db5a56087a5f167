"""ngo-kit-volunteer-points: approved volunteer hours earn points, in the same transaction.

A bridge between the volunteer and points modules; neither knows the other. The plugin
provides the ``hours_points`` module (it requires ``points`` and ``volunteer``) which

* registers the points rule type ``volunteer_hours`` (event ``hours_approved``, field
  ``hours``), so each organisation configures, as data, how many points an hour earns:
  ``tx.points.add_rule(name="per-hour", rule_type="volunteer_hours", points=10,
  per_unit="hours", cap_week=200)``;
* implements the volunteer module's ``ngo_kit_hours_approved``: the organisation's active
  ``volunteer_hours`` rules fire for the volunteer through ``tx.points.apply_rules``, keyed
  ``volunteer_hours:<hours entry id>``, so an entry earns once however often the event is
  delivered; the award commits or rolls back with the hours;
* implements ``ngo_kit_hours_reversed``: the awards an hours entry earned are reversed
  (``tx.points.reverse``) in the transaction that reverses the hours. When the volunteer has
  spent those points already, ``InsufficientPoints`` refuses the hours reversal as a whole:
  settle the points first (cancel a redemption, or deduct by hand), then reverse the hours.

Enabled with the modules it bridges: ``Kit(modules=[..., "points", "volunteer",
"hours_points"])`` (``modules=None`` enables it with every installed module). With either
module missing the plugin is left out and the kit starts as if it were not installed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import insert_ignore, new_id, utcnow
from ngo_kit.hookspecs import hookimpl
from ngo_kit.modules.points import NotReversible, RuleType
from ngo_kit.operations import operation
from ngo_kit.plugins import Module, PersonalData, Registrar
from ngo_kit.schemas import ReadModel
from ngo_kit_volunteer_points.models import HoursPointsAward

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.points.schemas import TransactionRead
    from ngo_kit.modules.volunteer.schemas import HoursRead

__version__ = "0.1.0"
HERE = Path(__file__).parent

#: The points event this plugin fires, and the rule type organisations configure for it.
EVENT = "hours_approved"
RULE_TYPE = RuleType(
    "volunteer_hours", EVENT, "points per approved hour of volunteer service", ("hours",)
)


class HoursAwardRead(ReadModel):
    """A points operation the bridge made for an hours entry (negative: a reversal)."""

    id: uuid.UUID
    hours_id: uuid.UUID
    member_id: uuid.UUID
    txn_id: uuid.UUID
    points: int
    rule: str | None
    reverses_txn_id: uuid.UUID | None
    created_at: dt.datetime


class HoursPointsService:
    """``tx.hours_points``: what approved hours earned (the points ledger has the details)."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @operation("GET /awards", permission="points.view", own=True, cli="awards")
    def awards(
        self, *, hours_id: uuid.UUID | None = None, member_id: uuid.UUID | None = None
    ) -> list[HoursAwardRead]:
        """Points operations made for hours entries, oldest first, filtered by entry or member.

        A member sees their own (``member_id`` = the actor); anything else needs
        ``points.view``.
        """
        if member_id is None or self.tx.actor_id != member_id:
            self.tx.require("points.view")
        stmt = sa.select(HoursPointsAward).where(HoursPointsAward.org_id == self.tx.org_id)
        if hours_id is not None:
            stmt = stmt.where(HoursPointsAward.hours_id == hours_id)
        if member_id is not None:
            stmt = stmt.where(HoursPointsAward.member_id == member_id)
        rows = self.tx.session.scalars(
            stmt.order_by(HoursPointsAward.created_at, HoursPointsAward.id)
        )
        return [HoursAwardRead.model_validate(r, from_attributes=True) for r in rows]


MODULE = Module(
    name="hours_points",
    version=__version__,
    description="approved volunteer hours earn points by the organisation's rules",
    requires=("points", "volunteer"),
    service=HoursPointsService,
    models="ngo_kit_volunteer_points.models",
    migrations=HERE / "migrations" / "versions",
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the ``hours_points`` module (its link table and ``tx.hours_points``)."""
    register(MODULE)


@hookimpl(optionalhook=True)
def ngo_kit_register_points_rules(register: Registrar[RuleType]) -> None:
    """The ``volunteer_hours`` rule type: points per approved hour (field ``hours``)."""
    register(RULE_TYPE)


def _link(
    tx: Context,
    hours_id: uuid.UUID,
    member_id: uuid.UUID,
    txn: TransactionRead,
    points: int,
    rule: str | None,
    reverses: uuid.UUID | None = None,
) -> None:
    # INSERT-or-nothing: a redelivered event returns the first operations, already linked.
    tx.connection.execute(
        insert_ignore(
            tx.connection,
            HoursPointsAward,
            id=new_id(),
            org_id=tx.org_id,
            hours_id=hours_id,
            member_id=member_id,
            txn_id=txn.id,
            points=points,
            rule=rule,
            reverses_txn_id=reverses,
            created_at=utcnow(),
        )
    )


@hookimpl(optionalhook=True)
def ngo_kit_hours_approved(tx: Context, hours: HoursRead) -> None:
    """Fire the organisation's ``volunteer_hours`` rules for the hours that entered the ledger."""
    if hours.hours <= 0:
        return
    with tx.elevated():  # the volunteer module checked who may approve hours
        made = tx.points.apply_rules(
            EVENT, hours.user_id, {"hours": hours.hours}, key=f"{RULE_TYPE.name}:{hours.id}"
        )
    for award in made:
        _link(tx, hours.id, hours.user_id, award, award.points, award.rule)


@hookimpl(optionalhook=True)
def ngo_kit_hours_reversed(tx: Context, hours: HoursRead, original: HoursRead) -> None:
    """Reverse the points the original entry earned, in the transaction reversing the hours.

    Raises ``InsufficientPoints`` (and so refuses the hours reversal) when the volunteer has
    spent them; an award someone reversed by hand already is skipped.
    """
    earned = tx.session.execute(
        sa.select(HoursPointsAward.txn_id, HoursPointsAward.points, HoursPointsAward.rule)
        .where(
            HoursPointsAward.org_id == tx.org_id,
            HoursPointsAward.hours_id == original.id,
            HoursPointsAward.points > 0,
        )
        .order_by(HoursPointsAward.txn_id)
    ).all()
    # The coordinator reversing hours need not hold points.adjust: the hours service checked
    # hours.approve, and this only undoes what the bridge itself awarded.
    with tx.elevated():
        for txn_id, points, rule in earned:
            try:
                reversal = tx.points.reverse(
                    txn_id,
                    reason=f"volunteer hours {original.id} reversed",
                    key=f"{RULE_TYPE.name}:reversed:{txn_id}",
                )
            except NotReversible:
                continue  # reversed by hand already: nothing left to take back
            _link(tx, hours.id, hours.user_id, reversal, -points, rule, reverses=txn_id)


def export_awards(tx: Context, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The points a person's hours earned here, for a data-subject access request."""
    rows = tx.session.scalars(
        sa.select(HoursPointsAward)
        .where(HoursPointsAward.org_id == tx.org_id, HoursPointsAward.member_id == user_id)
        .order_by(HoursPointsAward.created_at, HoursPointsAward.id)
    ).all()
    if not rows:
        return None
    awards = [
        HoursAwardRead.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows
    ]
    return {"awards": awards}


def erase_awards(tx: Context, user_id: uuid.UUID) -> None:
    """Nothing to remove: the table holds ids, amounts and rule names only, and the links stay,
    like the ledgers they join, so the person's pseudonymous history stays whole."""


#: The links between a person's approved hours and the points they earned.
PERSONAL_DATA = PersonalData("hours_points", ("hours_points_award",), export_awards, erase_awards)


@hookimpl(optionalhook=True)
def ngo_kit_register_personal_data(register: Registrar[PersonalData]) -> None:
    """Registration exports or erases a person: the bridge's part."""
    register(PERSONAL_DATA)


__all__ = [
    "EVENT",
    "MODULE",
    "PERSONAL_DATA",
    "RULE_TYPE",
    "HoursAwardRead",
    "HoursPointsAward",
    "HoursPointsService",
    "ngo_kit_hours_approved",
    "ngo_kit_hours_reversed",
    "ngo_kit_register_modules",
    "ngo_kit_register_personal_data",
    "ngo_kit_register_points_rules",
]
