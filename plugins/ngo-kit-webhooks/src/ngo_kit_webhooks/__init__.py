"""ngo-kit-webhooks: signed webhooks for chosen events, delivered through the outbox.

The plugin provides the ``webhooks`` module: a table of endpoints per organisation (URL,
secret, events subscribed, active), managed through ``tx.webhooks`` with the
``webhooks.manage`` permission. When a subscribed event happens, the transaction that caused
it queues one outbox message per endpoint on the ``webhook`` channel; after the commit the
message is POSTed as JSON, signed with HMAC-SHA256 over the timestamp and body
(``X-NGO-Kit-Signature: t=...,v1=...``), and retried with the outbox's backoff until the
receiver answers 2xx. Receivers check requests with :func:`verify_signature`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.outbox import OutboxMessage
from ngo_kit.plugins import Channel, Module, Permission, Registrar
from ngo_kit_webhooks import delivery
from ngo_kit_webhooks.delivery import DELIVERY_HEADER, EVENT_HEADER, DeliveryFailed
from ngo_kit_webhooks.events import (
    ngo_kit_hours_approved,
    ngo_kit_org_created,
    ngo_kit_points_awarded,
    ngo_kit_reward_redeemed,
    ngo_kit_shift_completed,
    ngo_kit_stock_moved,
    ngo_kit_user_registered,
)
from ngo_kit_webhooks.schemas import EVENTS, EndpointCreated, EndpointRead
from ngo_kit_webhooks.service import CHANNEL, MANAGE, WebhooksService
from ngo_kit_webhooks.signing import SIGNATURE_HEADER, sign, verify_signature

__version__ = "0.1.0"
HERE = Path(__file__).parent

MODULE = Module(
    name="webhooks",
    version=__version__,
    description="signed webhooks for chosen events, delivered through the outbox",
    service=WebhooksService,
    models="ngo_kit_webhooks.models",
    migrations=HERE / "migrations" / "versions",
    locale_dir=HERE / "i18n",
    sends_messages=True,
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the ``webhooks`` module (its endpoints table and ``tx.webhooks``)."""
    register(MODULE)


@hookimpl
def ngo_kit_register_permissions(register: Registrar[Permission]) -> None:
    """``webhooks.manage``: owners and admins only, by default."""
    register(Permission(MANAGE, "add, change and remove webhook endpoints and see their secrets"))


@hookimpl
def ngo_kit_register_channels(register: Registrar[Channel]) -> None:
    """The ``webhook`` channel (production-ready; at least once: receivers drop a repeated
    ``X-NGO-Kit-Delivery`` id)."""
    register(
        Channel(CHANNEL, production_ready=True, description="signed HTTPS POST", at_least_once=True)
    )


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """``ngo-kit webhooks list|add|rotate-secret|remove``."""
    from ngo_kit_webhooks.commands import webhooks_group

    cli.add_command(webhooks_group)


@hookimpl
def ngo_kit_deliver_message(message: OutboxMessage, kit: Kit) -> str | None:
    """POST a ``webhook`` message to its endpoint; ``None`` for other channels."""
    if message.channel != CHANNEL:
        return None
    return delivery.deliver(kit, message)


__all__ = [
    "CHANNEL",
    "DELIVERY_HEADER",
    "EVENTS",
    "EVENT_HEADER",
    "MODULE",
    "SIGNATURE_HEADER",
    "DeliveryFailed",
    "EndpointCreated",
    "EndpointRead",
    "WebhooksService",
    "ngo_kit_hours_approved",
    "ngo_kit_org_created",
    "ngo_kit_points_awarded",
    "ngo_kit_reward_redeemed",
    "ngo_kit_shift_completed",
    "ngo_kit_stock_moved",
    "ngo_kit_user_registered",
    "sign",
    "verify_signature",
]
