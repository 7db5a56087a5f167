"""The console channel: prints outbox messages, for development and tests.

It delivers only what no other channel took (``trylast``), and is not production-ready: outside
development the kit refuses to start when a module sends messages and this is the only channel.
In production it prints only messages addressed to the ``console`` channel itself: a message
for a channel that is missing or misspelt stays in the outbox (and is retried, then kept as
dead) instead of being printed, marked sent and lost.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ngo_kit.hookspecs import hookimpl
from ngo_kit.outbox import OutboxMessage

if TYPE_CHECKING:
    from ngo_kit.kit import Kit
from ngo_kit.plugins import Channel, Registrar


@hookimpl
def ngo_kit_register_channels(register: Registrar[Channel]) -> None:
    """Declare the console channel (not production-ready)."""
    register(Channel("console", production_ready=False, description="prints messages to stdout"))


@hookimpl(trylast=True)
def ngo_kit_deliver_message(message: OutboxMessage, kit: Kit) -> str | None:
    """Print the message to standard output and report it delivered."""
    if kit.settings.environment == "production" and message.channel != "console":
        return None
    print(
        f"[ngo-kit {message.channel} -> {message.recipient}] {message.subject}\n{message.body}",
        file=sys.stdout,
        flush=True,
    )
    return "console"
