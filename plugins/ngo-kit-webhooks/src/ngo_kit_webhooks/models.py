"""The plugin's one table: the endpoints an organisation sends webhooks to."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin


class WebhookEndpoint(IdMixin, OrgMixin, TimestampMixin, Base):
    """Where an organisation's chosen events are POSTed, and the secret that signs them."""

    __tablename__ = "webhooks_endpoint"
    __table_args__ = (sa.UniqueConstraint("org_id", "url"),)

    url: Mapped[str] = mapped_column(sa.String(320))  # the outbox recipient holds 320
    secret: Mapped[str] = mapped_column(sa.String(200))
    events: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
