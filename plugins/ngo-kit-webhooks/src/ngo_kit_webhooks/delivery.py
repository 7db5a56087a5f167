"""Delivering one ``webhook`` outbox message: a signed JSON POST with ``urllib``.

Any answer other than 2xx (redirects included: they are not followed), a refused or timed-out
connection, or a destination refused by the settings raises ``DeliveryFailed``, which the
outbox records on the message before retrying it with backoff.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import sqlalchemy as sa

from ngo_kit.outbox import OutboxMessage
from ngo_kit_webhooks.models import WebhookEndpoint
from ngo_kit_webhooks.settings import WebhooksSettings, load_settings
from ngo_kit_webhooks.signing import SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

EVENT_HEADER = "X-NGO-Kit-Event"
DELIVERY_HEADER = "X-NGO-Kit-Delivery"
USER_AGENT = "ngo-kit-webhooks/0.1"
_TABLE = cast("sa.Table", WebhookEndpoint.__table__)


class DeliveryFailed(Exception):
    """The receiver did not accept the webhook; the outbox retries it."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx becomes an HTTPError: a receiver must answer at its own URL


_OPENER = urllib.request.build_opener(_NoRedirects)


def body_of(message: OutboxMessage) -> bytes:
    """The JSON body: the same bytes on every attempt of one message."""
    data = message.data
    document = {
        "id": str(message.id),
        "event": data.get("event"),
        "occurred_at": data.get("occurred_at"),
        "organisation": data.get("organisation"),
        "data": data.get("payload", {}),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def deliver(kit: Kit, message: OutboxMessage) -> str:
    """POST the message to its endpoint, signed with the endpoint's current secret.

    Returns a receipt (``HTTP 204``, or ``skipped: ...`` when the endpoint was removed or
    deactivated after the event); raises ``DeliveryFailed`` or ``OSError`` on failure.
    """
    endpoint = _endpoint(kit, message)
    if endpoint is None:
        return "skipped: endpoint removed"
    if not endpoint.active:
        return "skipped: endpoint inactive"
    settings = load_settings()
    url = message.recipient
    check_destination(url, settings)
    body = body_of(message)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: str(message.data.get("event", "")),
            DELIVERY_HEADER: str(message.id),
            SIGNATURE_HEADER: sign(endpoint.secret, body),
        },
    )
    try:
        with _OPENER.open(request, timeout=settings.timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(200).decode("utf-8", "replace").strip()
        raise DeliveryFailed(f"HTTP {exc.code} from {url}: {detail}"[:500]) from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(f"{url} could not be reached: {exc.reason}") from None
    return f"HTTP {status}"


def _endpoint(kit: Kit, message: OutboxMessage) -> Any:
    try:
        endpoint_id = uuid.UUID(str(message.data.get("endpoint_id")))
    except ValueError:
        return None
    # DEFERRED: a plain read beside the outbox pass's own write transaction (SQLite)
    with kit.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return conn.execute(
            sa.select(_TABLE.c.secret, _TABLE.c.active).where(
                _TABLE.c.id == endpoint_id, _TABLE.c.org_id == message.org_id
            )
        ).first()


def check_destination(url: str, settings: WebhooksSettings) -> None:
    """Refuse plain HTTP and non-public addresses unless ``allow_local`` is set.

    The host name is resolved here, so a name pointing at an internal address is refused as
    well as an address literal.
    """
    if settings.allow_local:
        return
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise DeliveryFailed(
            f"refused {url}: only https:// is allowed (NGO_KIT_WEBHOOKS_ALLOW_LOCAL=1 permits http)"
        )
    port = parts.port or 443
    for *_, address in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM):
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not ip.is_global:
            raise DeliveryFailed(
                f"refused {url}: {parts.hostname} resolves to {ip}, which is not a public address"
            )
