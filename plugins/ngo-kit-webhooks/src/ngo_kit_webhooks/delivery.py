"""Delivering one ``webhook`` outbox message: a signed JSON POST with ``http.client``.

Any answer other than 2xx (redirects included: they are not followed), a refused or timed-out
connection, or a destination refused by the settings raises ``DeliveryFailed``, which the
outbox records on the message before retrying it with backoff.

Unless ``NGO_KIT_WEBHOOKS_ALLOW_LOCAL`` is set, the endpoint's host name is resolved once, every
address it resolves to must be public, and the request goes to the checked address (with the
host name kept for TLS verification and the ``Host`` header), so a name cannot resolve to a
public address for the check and to an internal one for the connection. HTTP proxies from the
environment are not used.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
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
    deactivated after the event); raises ``DeliveryFailed`` on failure.
    """
    endpoint = _endpoint(kit, message)
    if endpoint is None:
        return "skipped: endpoint removed"
    if not endpoint.active:
        return "skipped: endpoint inactive"
    settings = load_settings()
    url = message.recipient
    address = check_destination(url, settings)
    body = body_of(message)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: str(message.data.get("event", "")),
        DELIVERY_HEADER: str(message.id),
        SIGNATURE_HEADER: sign(endpoint.secret, body),
    }
    status, detail = post(url, body, headers, timeout=settings.timeout, address=address)
    if not 200 <= status < 300:
        text = detail.decode("utf-8", "replace").strip()
        raise DeliveryFailed(f"HTTP {status} from {url}: {text}"[:500])
    return f"HTTP {status}"


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    address: str | None = None,
) -> tuple[int, bytes]:
    """POST ``body`` to ``url``; returns the status and the first 200 bytes of the answer.

    With ``address`` the connection goes to that IP address instead of resolving the host
    name again. Raises ``DeliveryFailed`` when no answer comes (refused, timeout, TLS).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if https:
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    if address is not None:
        pinned = address

        def connect_to_checked_address(
            where: tuple[str, int], timeout: float | None = None, source: Any = None
        ) -> socket.socket:
            return socket.create_connection((pinned, where[1]), timeout, source)

        connection._create_connection = connect_to_checked_address  # type: ignore[attr-defined]
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(200)
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(f"{url} could not be reached: {exc!r}"[:500]) from None
    finally:
        connection.close()


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


def check_destination(url: str, settings: WebhooksSettings) -> str | None:
    """Refuse plain HTTP and non-public addresses unless ``allow_local`` is set.

    Returns the checked address to connect to (``None`` with ``allow_local``: connect by
    name). Every address the name resolves to must be public, so a name pointing at an
    internal address is refused as well as an address literal.
    """
    if settings.allow_local:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise DeliveryFailed(
            f"refused {url}: only https:// is allowed (NGO_KIT_WEBHOOKS_ALLOW_LOCAL=1 permits http)"
        )
    port = parts.port or 443
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryFailed(f"{url} could not be reached: {exc!r}") from None
    addresses = [str(info[4][0]).split("%")[0] for info in found]
    for address in addresses:
        if not ipaddress.ip_address(address).is_global:
            raise DeliveryFailed(
                f"refused {url}: {parts.hostname} resolves to {address}, "
                "which is not a public address"
            )
    return addresses[0]
