"""ngo-kit-rewards-stock: rewards backed by inventory items; fulfilling a redemption issues them.

A bridge between the points and inventory modules; neither knows the other. The plugin
provides the ``rewards_stock`` module (it requires ``points`` and ``inventory``): a table that
links a reward to an inventory item, a location and a quantity per reward unit, kept as data
per organisation and managed through ``tx.rewards_stock``:

* ``link(reward_id=, item=, location=, quantity=1, fulfil="on_redemption")``
  (``rewards.manage``);
* with ``fulfil="on_redemption"`` the plugin answers the points module's decision hook
  ``ngo_kit_fulfil_redemption``: the redeeming transaction issues ``quantity`` x units of the
  item to the member (``tx.inventory.issue``, recipient = the member's account id, keyed
  ``rewards_stock:<redemption id>``) and the redemption is marked ``fulfilled`` with the
  stock operation's id as its note. Not enough stock raises ``InsufficientStock`` and the
  whole redemption rolls back: no points, no reward stock, no goods move;
* with ``fulfil="by_staff"`` the redemption stays ``requested``; when staff hand the goods
  over with ``tx.points.fulfil(redemption_id)`` (or ``tx.rewards_stock.fulfil``, which also
  insists the reward is stock-backed), the plugin answers ``ngo_kit_hand_over_redemption``
  and the stock is issued in the same transaction. Cancelling before that
  (``tx.points.cancel_redemption``) touches no stock.

The goods' donors stay traceable: the issue appears in ``tx.inventory.trace_donation`` like
any other, with the member as the beneficiary.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import Field

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, InsufficientStock, NotFound
from ngo_kit.hookspecs import hookimpl
from ngo_kit.modules.points import WrongStatus
from ngo_kit.operations import operation
from ngo_kit.plugins import Module, Registrar
from ngo_kit.schemas import Amount, InputModel, ReadModel, Text, coerce
from ngo_kit_rewards_stock.models import RewardStockLink

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.inventory.schemas import Operation
    from ngo_kit.modules.points.schemas import RedemptionRead

__version__ = "0.1.0"
HERE = Path(__file__).parent

Fulfil = Literal["on_redemption", "by_staff"]


class LinkIn(InputModel):
    """Back a reward by an inventory item: ``quantity`` of ``item`` per unit redeemed."""

    reward_id: uuid.UUID
    item: Text = Field(min_length=1, max_length=63)
    location: Text = Field(min_length=1, max_length=63)
    quantity: Amount = Field(default=Decimal(1), gt=0, max_digits=18, decimal_places=4)
    fulfil: Fulfil = "on_redemption"


class LinkRead(ReadModel):
    """A reward's link to the inventory item that backs it."""

    id: uuid.UUID
    reward_id: uuid.UUID
    item_id: uuid.UUID
    location_id: uuid.UUID
    quantity: Decimal
    fulfil: str
    created_at: dt.datetime


class RewardsStockService:
    """``tx.rewards_stock``: which rewards are backed by stock, and staff hand-over."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @operation("POST /links", permission="rewards.manage", status=201, errors=(AlreadyExists,))
    def link(self, data: LinkIn | dict[str, Any] | None = None, /, **kwargs: Any) -> LinkRead:
        """Back a reward by an inventory item (``rewards.manage``).

        ``item`` and ``location`` are codes or ids of this organisation's item and stock
        location. Raises ``NotFound`` (reward, item, location of another organisation or
        none), ``AlreadyExists`` when the reward is linked already (``unlink`` it first).
        """
        spec = coerce(LinkIn, data, kwargs)
        tx = self.tx
        tx.require("rewards.manage")
        reward = tx.points.reward(spec.reward_id)
        with tx.elevated():  # looking the catalogue up is part of managing rewards
            item = tx.inventory.item(spec.item)
            location = next(
                (
                    loc
                    for loc in tx.inventory.locations()
                    if spec.location in (loc.code, str(loc.id))
                ),
                None,
            )
        if location is None:
            raise NotFound("Location", spec.location)
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "reward_id": reward.id,
            "item_id": item.id,
            "location_id": location.id,
            "quantity": spec.quantity,
            "fulfil": spec.fulfil,
            "created_at": utcnow(),
        }
        with tx.translate_integrity(AlreadyExists("Reward stock link", reward.code)):
            tx.connection.execute(sa.insert(RewardStockLink).values(values))
        tx.audit(
            "rewards_stock.linked",
            "reward",
            reward.id,
            f"reward {reward.code} backed by {spec.quantity} x {item.code} from {location.code}",
            {"item": item.id, "location": location.id, "quantity": str(spec.quantity)},
        )
        return LinkRead.model_validate(values)

    @operation("DELETE /links/{reward_id}", permission="rewards.manage")
    def unlink(self, reward_id: uuid.UUID) -> None:
        """Stop backing a reward by stock (``rewards.manage``); ``NotFound`` if it is not linked."""
        tx = self.tx
        tx.require("rewards.manage")
        found = self._link(reward_id)
        if found is None:
            raise NotFound("Reward stock link", reward_id)
        tx.connection.execute(sa.delete(RewardStockLink).where(RewardStockLink.id == found.id))
        tx.audit("rewards_stock.unlinked", "reward", reward_id, "reward no longer backed by stock")

    @operation("GET /links", permission="rewards.fulfil")
    def links(self) -> list[LinkRead]:
        """This organisation's links, oldest first (``rewards.fulfil``)."""
        self.tx.require("rewards.fulfil")
        rows = self.tx.connection.execute(
            sa.select(*RewardStockLink.__table__.c)
            .where(RewardStockLink.org_id == self.tx.org_id)
            .order_by(RewardStockLink.created_at, RewardStockLink.id)
        )
        return [LinkRead.model_validate(dict(r._mapping)) for r in rows]

    @operation("GET /rewards/{reward_id}/available")
    def available(self, reward_id: uuid.UUID) -> int | None:
        """How many whole units of a stock-backed reward its location holds (``None``: the
        reward is not backed by stock).

        Anyone may ask, as anyone may see the catalogue: the answer tells how many are left,
        not the stock list (read with elevated rights, for this count only).
        """
        link = self._link(reward_id)
        if link is None:
            return None
        with self.tx.elevated():
            lines = self.tx.inventory.stock_on_hand(location=str(link.location_id))
        # the location itself, not those inside it: a redemption issues from the location only
        on_hand = sum(
            (
                x.quantity
                for x in lines
                if x.item_id == link.item_id and x.location_id == link.location_id
            ),
            Decimal(0),
        )
        return max(0, int(on_hand // link.quantity))

    @operation("GET /rewards/{reward_id}/link")
    def link_for(self, reward_id: uuid.UUID) -> LinkRead | None:
        """The link of one reward, or ``None`` when the reward is not backed by stock."""
        return self._link(reward_id)

    def _link(self, reward_id: uuid.UUID) -> LinkRead | None:
        row = self.tx.connection.execute(
            sa.select(*RewardStockLink.__table__.c).where(
                RewardStockLink.org_id == self.tx.org_id,
                RewardStockLink.reward_id == reward_id,
            )
        ).first()
        return None if row is None else LinkRead.model_validate(dict(row._mapping))

    @operation(
        "POST /redemptions/{redemption_id}/fulfil",
        permission="rewards.fulfil",
        errors=(WrongStatus, InsufficientStock),
    )
    def fulfil(self, redemption_id: uuid.UUID) -> RedemptionRead:
        """Hand a requested stock-backed redemption over (``rewards.fulfil``).

        The same as ``tx.points.fulfil``, which issues the stock through this plugin's
        ``ngo_kit_hand_over_redemption``; this one also insists that the reward is backed by
        stock. Raises ``NotFound`` when it is not, ``WrongStatus`` (points module) when the
        redemption is not ``requested``, ``InsufficientStock`` when the location holds too
        little: in every case nothing is written.
        """
        tx = self.tx
        tx.require("rewards.fulfil")
        redemption = tx.points.redemption(redemption_id)
        if self._link(redemption.reward_id) is None:
            raise NotFound("Reward stock link", redemption.reward_id)
        return tx.points.fulfil(redemption.id)  # type: ignore[no-any-return]


def issue_for(tx: Context, link: LinkRead, redemption: RedemptionRead) -> Operation:
    """Issue the goods of ``redemption`` to its member, keyed by the redemption (idempotent)."""
    # The member redeeming for themselves holds no inventory.issue: the points module checked
    # their right to redeem, and the goods leave for that redemption only.
    with tx.elevated():
        operation: Operation = tx.inventory.issue(
            item=str(link.item_id),
            quantity=link.quantity * redemption.quantity,
            from_=str(link.location_id),
            recipient=str(redemption.member_id),
            recipient_kind="beneficiary",
            notes=f"reward redemption {redemption.id}",
            key=f"rewards_stock:{redemption.id}",
        )
    return operation


def _note(operation: Operation) -> str:
    return f"stock issued: {operation.quantity.normalize():f} (operation {operation.group_id})"


MODULE = Module(
    name="rewards_stock",
    version=__version__,
    description="rewards backed by inventory items; fulfilling a redemption issues the stock",
    requires=("points", "inventory"),
    service=RewardsStockService,
    models="ngo_kit_rewards_stock.models",
    migrations=HERE / "migrations" / "versions",
    locale_dir=HERE / "i18n",
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the ``rewards_stock`` module (its link table and ``tx.rewards_stock``)."""
    register(MODULE)


@hookimpl(optionalhook=True)
def ngo_kit_fulfil_redemption(tx: Context, redemption: RedemptionRead) -> str | None:
    """Issue the stock of a reward linked ``on_redemption``; ``None`` for any other reward.

    Raises ``InsufficientStock`` when the location holds too little, which rolls the whole
    redemption back.
    """
    link = tx.rewards_stock.link_for(redemption.reward_id)
    if link is None or link.fulfil != "on_redemption":
        return None
    return _note(issue_for(tx, link, redemption))


@hookimpl(optionalhook=True)
def ngo_kit_hand_over_redemption(tx: Context, redemption: RedemptionRead) -> str | None:
    """Issue the stock of a stock-backed reward when staff fulfils its redemption.

    Whoever fulfils (``tx.points.fulfil`` or ``tx.rewards_stock.fulfil``), the goods leave
    inventory in the same transaction; ``None`` for a reward not backed by stock. Raises
    ``InsufficientStock`` when the location holds too little, which rolls the fulfilment back.
    """
    link = tx.rewards_stock.link_for(redemption.reward_id)
    if link is None:
        return None
    return _note(issue_for(tx, link, redemption))


__all__ = [
    "MODULE",
    "LinkIn",
    "LinkRead",
    "RewardStockLink",
    "RewardsStockService",
    "issue_for",
    "ngo_kit_fulfil_redemption",
    "ngo_kit_hand_over_redemption",
    "ngo_kit_register_modules",
]
