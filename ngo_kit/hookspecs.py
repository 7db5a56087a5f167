"""Core hook specifications.

Three kinds, each named its own way (see docs/plugins.md):

* **collect** hooks (``ngo_kit_register_*``) receive a ``register`` callable; the kit checks
  what is registered (types, duplicates) and tags it with the plugin that registered it;
* **event** hooks (past tense) receive the ``tx`` and run inside its transaction: what they
  write commits or rolls back with the operation that fired them;
* **decision** hooks (``firstresult=True``) return an answer, or ``None`` to let the next
  plugin decide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import uuid

    import click

    from ngo_kit.context import Context
    from ngo_kit.errors import NgoKitError
    from ngo_kit.kit import Kit
    from ngo_kit.outbox import OutboxMessage
    from ngo_kit.plugins import Registrar
    from ngo_kit.tenancy import OrgRead

PROJECT = "ngo_kit"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a hook implementation. ``@hookimpl(optionalhook=True)`` for hooks of modules that may
#: not be enabled; ``tryfirst``/``trylast`` to order decision hooks.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ngo_kit_register_modules(register: Registrar[Any]) -> None:
    """Collect: register the modules a plugin provides.

    Called once while a ``Kit`` is built, before any module is enabled. Call
    ``register(Module(...))`` for each module. Two modules with one name stop the kit with
    ``ConfigurationError`` ``core.E002`` naming both plugins.
    """


@hookspec
def ngo_kit_register_permissions(register: Registrar[Any]) -> None:
    """Collect: declare permissions, ``register(Permission("inventory.issue", ...))``.

    Called once while a ``Kit`` is built. A permission declares the default roles that are
    granted it when an organisation is created (``owner`` and ``admin`` get every permission).
    A service may only ``tx.require`` a declared permission.
    """


@hookspec
def ngo_kit_register_checks(register: Registrar[Any]) -> None:
    """Collect: integrity checks that ``ngo-kit verify`` and ``kit.verify()`` run.

    Register a ``ChainCheck`` for a hash-chained table (which needs a ``key_id`` column,
    ``ngo_kit.chain_keys.key_id_column()``, or the kit refuses to start with ``core.E021``),
    or any object with ``name`` and ``run(session) -> list[Problem]`` (a balance that must
    equal the sum of its entries, say). ``kit.anchor()`` checkpoints every ``ChainCheck``'s
    chain.
    """


@hookspec
def ngo_kit_register_channels(register: Registrar[Any]) -> None:
    """Collect: message channels this plugin delivers, ``register(Channel("email", ...))``.

    Outside development the kit refuses to start when an enabled module sends messages and no
    registered channel is ``production_ready`` (check ``core.E007``).
    """


@hookspec
def ngo_kit_register_commands(cli: click.Group) -> None:
    """Collect: add ``click`` commands or groups to the ``ngo-kit`` command line.

    Called when the CLI starts, with the root group; ``cli.add_command(...)``. A name that is
    taken already is refused with the name of the plugin that took it.
    """


@hookspec
def ngo_kit_org_created(tx: Context, org: OrgRead) -> None:
    """Event: an organisation was created, inside the creating transaction.

    ``tx`` is bound to the new organisation. Modules use it to seed their per-organisation
    data (system accounts, virtual locations...). Returns nothing.
    """


@hookspec(firstresult=True)
def ngo_kit_refuse_member(tx: Context, actor_id: uuid.UUID, role: str) -> NgoKitError | None:
    """Decision: may ``tx.tenancy.add_member`` make ``actor_id`` a member with ``role``?

    Called inside the transaction, after the ``roles.manage`` check, before anything is written.
    Return an error to refuse (``add_member`` raises it), or ``None`` to let the next plugin,
    and finally core, decide. The registration module refuses to add an existing account on
    someone else's say-so: a person joins by themselves or by accepting an invitation.
    """


@hookspec(firstresult=True)
def ngo_kit_prepare_message(message: OutboxMessage, kit: Kit) -> OutboxMessage | None:
    """Decision: complete a message just before the worker delivers it.

    A module whose message must not be written in the request that asks for it (its content
    depends on whether an account exists, and working that out would make the request slower
    for one answer than the other) sends a stand-in with ``tx.send(..., deferred=True)`` and
    completes it here, in the worker, out of the requester's sight: registration issues a
    sign-in code, or writes the "no account has this number" notice. Return the message to
    deliver (the outbox row keeps the stand-in, so nothing secret is stored), or ``None`` when
    the message is not this plugin's. Raise to report a failed attempt (retried with backoff).
    """


@hookspec(firstresult=True)
def ngo_kit_deliver_message(message: OutboxMessage, kit: Kit) -> str | None:
    """Decision: deliver one outbox message, after the transaction that sent it committed.

    ``kit`` is the delivering kit, for channels that read their own tables or settings (a
    webhook endpoint's secret); implementations that need only the message omit it.
    Return a short receipt (a provider id, the channel name) when this plugin delivered the
    message; return ``None`` when the message is not for this plugin's channel. Raise to
    report a failed attempt: the outbox records the error and retries with backoff. The
    message's ``id`` is stable across retries, so a channel can drop duplicates.
    """


@hookspec
def ngo_kit_register_routes(register: Registrar[Any], kit: Any) -> None:
    """Collect: web routes, ``register(Routes("points", router))``, for ``ngo_kit.web.create_app``.

    Called once per ``create_app(kit)`` with the kit whose services the routes will use.
    ``Routes.org_scoped`` routers are mounted under ``/api/orgs/{org}/<name>``, the others under
    ``/api/<name>``. Route functions open a unit of work with ``ctx.begin()`` and call services.
    """


@hookspec(firstresult=True)
def ngo_kit_session_actor(kit: Any, token: str) -> Any:
    """Decision: the account id (``uuid.UUID``) a session token signs in, or ``None``.

    Called by the web layer for each request that carries a bearer token or session cookie.
    The plugin that issues sessions (the registration module) answers; an unknown, expired or
    revoked token answers ``None`` and the request is anonymous.
    """
