"""``tx.webhooks``: an organisation's endpoints, and publishing events to them."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, NotFound
from ngo_kit.operations import operation
from ngo_kit.schemas import coerce
from ngo_kit_webhooks.models import WebhookEndpoint
from ngo_kit_webhooks.schemas import (
    EVENTS,
    EndpointChange,
    EndpointCreated,
    EndpointIn,
    EndpointRead,
    jsonable,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context

CHANNEL = "webhook"
MANAGE = "webhooks.manage"
KIND = "Webhook endpoint"
_TABLE = cast("sa.Table", WebhookEndpoint.__table__)
_READ_COLUMNS = [
    _TABLE.c.id,
    _TABLE.c.url,
    _TABLE.c.events,
    _TABLE.c.active,
    _TABLE.c.description,
    _TABLE.c.created_at,
]


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe text, prefixed ``whsec_``."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhooksService:
    """The organisation's webhook endpoints (``webhooks.manage``) and event publishing."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    # --- endpoints ---------------------------------------------------------------------------

    @operation("POST /endpoints", permission=MANAGE, status=201, errors=(AlreadyExists,), cli="add")
    def add_endpoint(
        self, data: EndpointIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> EndpointCreated:
        """Add an endpoint (``webhooks.manage``); returns it with its secret, shown only here.

        Raises ``ValidationFailed`` (bad URL, unknown event), ``AlreadyExists`` for a URL the
        organisation has already, ``PermissionDenied``.
        """
        tx = self.tx
        spec = coerce(EndpointIn, data, kwargs)
        tx.require(MANAGE)
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "url": spec.url,
            "secret": spec.secret or new_secret(),
            "events": list(spec.events),
            "active": spec.active,
            "description": spec.description,
            "created_at": utcnow(),
        }
        with tx.translate_integrity(AlreadyExists(KIND, spec.url)):
            tx.session.execute(sa.insert(_TABLE).values(**values))
        tx.audit(
            "webhooks.endpoint_added",
            "webhooks_endpoint",
            values["id"],
            f"webhook endpoint {spec.url} for {', '.join(spec.events)}",
            {"url": spec.url, "events": list(spec.events), "active": spec.active},
        )
        return EndpointCreated.model_validate(values)

    @operation("PATCH /endpoints/{endpoint_id}", permission=MANAGE, errors=(AlreadyExists,))
    def update_endpoint(
        self,
        endpoint_id: uuid.UUID | str,
        data: EndpointChange | dict[str, Any] | None = None,
        /,
        **kwargs: Any,
    ) -> EndpointRead:
        """Change an endpoint's URL, events, active flag or description (``webhooks.manage``)."""
        tx = self.tx
        spec = coerce(EndpointChange, data, kwargs)
        tx.require(MANAGE)
        row = self._load(endpoint_id)
        changes = {name: getattr(spec, name) for name in spec.model_fields_set}
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes:
            with tx.translate_integrity(AlreadyExists(KIND, changes.get("url", row.url))):
                tx.session.execute(
                    sa.update(_TABLE)
                    .where(_TABLE.c.id == row.id, _TABLE.c.org_id == tx.org_id)
                    .values(**changes)
                )
            tx.audit(
                "webhooks.endpoint_changed",
                "webhooks_endpoint",
                row.id,
                f"webhook endpoint {changes.get('url', row.url)} changed: {', '.join(sorted(changes))}",
                changes,
            )
        return self.get_endpoint(row.id)

    @operation(
        "POST /endpoints/{endpoint_id}/rotate-secret", permission=MANAGE, cli="rotate-secret"
    )
    def rotate_secret(self, endpoint_id: uuid.UUID | str) -> EndpointCreated:
        """Give the endpoint a new random secret (``webhooks.manage``); returns it once.

        Messages already queued are signed with the new secret when they are delivered.
        """
        tx = self.tx
        tx.require(MANAGE)
        row = self._load(endpoint_id)
        secret = new_secret()
        tx.session.execute(
            sa.update(_TABLE)
            .where(_TABLE.c.id == row.id, _TABLE.c.org_id == tx.org_id)
            .values(secret=secret)
        )
        tx.audit("webhooks.secret_rotated", "webhooks_endpoint", row.id, f"secret of {row.url}")
        return EndpointCreated(**self.get_endpoint(row.id).model_dump(), secret=secret)

    @operation("DELETE /endpoints/{endpoint_id}", permission=MANAGE, cli="remove")
    def remove_endpoint(self, endpoint_id: uuid.UUID | str) -> None:
        """Delete an endpoint (``webhooks.manage``); its queued deliveries are skipped."""
        tx = self.tx
        tx.require(MANAGE)
        row = self._load(endpoint_id)
        tx.session.execute(
            sa.delete(_TABLE).where(_TABLE.c.id == row.id, _TABLE.c.org_id == tx.org_id)
        )
        tx.audit("webhooks.endpoint_removed", "webhooks_endpoint", row.id, f"{row.url}")

    @operation("GET /endpoints/{endpoint_id}", permission=MANAGE)
    def get_endpoint(self, endpoint_id: uuid.UUID | str) -> EndpointRead:
        """One endpoint of this organisation (``webhooks.manage``); ``NotFound`` otherwise."""
        self.tx.require(MANAGE)
        return EndpointRead.model_validate(self._load(endpoint_id)._mapping)

    def _load(self, endpoint_id: uuid.UUID | str) -> sa.Row[Any]:
        """This organisation's endpoint (Core: never a stale ORM copy); ``NotFound`` otherwise."""
        try:
            key = endpoint_id if isinstance(endpoint_id, uuid.UUID) else uuid.UUID(endpoint_id)
        except ValueError:
            raise NotFound(KIND, endpoint_id) from None
        row = self.tx.connection.execute(
            sa.select(*_READ_COLUMNS).where(_TABLE.c.id == key, _TABLE.c.org_id == self.tx.org_id)
        ).first()
        if row is None:
            raise NotFound(KIND, endpoint_id)
        return row

    @operation("GET /endpoints", permission=MANAGE, cli="list")
    def list_endpoints(self) -> list[EndpointRead]:
        """The organisation's endpoints, oldest first (``webhooks.manage``)."""
        tx = self.tx
        tx.require(MANAGE)
        rows = tx.session.execute(
            sa.select(*_READ_COLUMNS)
            .where(_TABLE.c.org_id == tx.org_id)
            .order_by(_TABLE.c.created_at, _TABLE.c.id)
        )
        return [EndpointRead.model_validate(r._mapping) for r in rows]

    # --- events ------------------------------------------------------------------------------

    @operation(
        not_http="called by the plugin's event hooks, inside the transaction of the event",
        changes=True,
        permission=MANAGE,
    )
    def publish(self, event: str, **arguments: Any) -> list[uuid.UUID]:
        """Queue ``event`` for every active endpoint of this organisation subscribed to it.

        Called by the plugin's event hooks inside the transaction that fired the event, so a
        rolled-back operation sends nothing. ``arguments`` are the hook's arguments other than
        ``tx``, serialised to JSON. Returns the outbox message ids (one per endpoint), which
        are also the deliveries' ids. Without an organisation, nothing is sent. Needs
        ``webhooks.manage`` (receivers trust what is signed): the event hooks call it with
        elevated rights, since the event's own service checked who may cause it.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}; known: {', '.join(EVENTS)}")
        tx = self.tx
        if tx.org is None:
            return []
        tx.require(MANAGE)
        endpoints = tx.connection.execute(
            sa.select(_TABLE.c.id, _TABLE.c.url, _TABLE.c.events).where(
                _TABLE.c.org_id == tx.org.id, _TABLE.c.active.is_(True)
            )
        ).all()
        subscribed = [e for e in endpoints if event in (e.events or ())]
        if not subscribed:
            return []
        payload = {name: jsonable(value) for name, value in arguments.items()}
        occurred_at = utcnow().isoformat()
        organisation = {"id": str(tx.org.id), "slug": tx.org.slug}
        return [
            tx.send(
                CHANNEL,
                endpoint.url,
                subject=event,
                data={
                    "event": event,
                    "endpoint_id": str(endpoint.id),
                    "occurred_at": occurred_at,
                    "organisation": organisation,
                    "payload": payload,
                },
            )
            for endpoint in subscribed
        ]
