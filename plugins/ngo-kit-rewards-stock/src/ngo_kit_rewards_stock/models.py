"""The plugin's one table: which inventory item backs which reward."""

from __future__ import annotations

import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin


class RewardStockLink(IdMixin, OrgMixin, TimestampMixin, Base):
    """A reward backed by an inventory item: each unit redeemed issues ``quantity`` of
    ``item_id`` from ``location_id`` to the member.

    ``fulfil`` is ``on_redemption`` (the goods leave as the member redeems) or ``by_staff``
    (the goods leave when staff hand them over, ``tx.rewards_stock.fulfil``).
    """

    __tablename__ = "rewards_stock_link"
    __table_args__ = (sa.UniqueConstraint("org_id", "reward_id"),)

    reward_id: Mapped[uuid.UUID]
    item_id: Mapped[uuid.UUID]
    location_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal]
    fulfil: Mapped[str] = mapped_column(sa.String(20))
