"""The registration module: accounts, verification, sign-in, organisation membership, custom
registration fields, consent and personal-data rights (PIPL / GDPR).

``tx.registration`` is :class:`~ngo_kit.modules.registration.service.RegistrationService`.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ngo_kit.hookspecs import hookimpl
from ngo_kit.plugins import Module, Permission, PersonalData, Registrar
from ngo_kit.tenancy import SYSTEM

from . import hookspecs
from .checks import ERASURE_CHECK
from .errors import JoinNeedsThePerson
from .models import Account
from .passwords import for_kit
from .service import CODE_REQUEST, REGISTRATION_DATA, RegistrationService

if TYPE_CHECKING:
    import click

    from ngo_kit.context import Context
    from ngo_kit.errors import NgoKitError
    from ngo_kit.kit import Kit
    from ngo_kit.outbox import OutboxMessage

HERE = Path(__file__).parent

# ``members.view`` is core's (ngo_kit.core); these are the registration module's own.
PERMISSIONS = (
    Permission("members.invite", "invite people to join, list and revoke invitations", ("staff",)),
    Permission("members.approve", "approve or reject requests to join", ("staff",)),
    Permission("members.manage_roles", "change members' roles; invite or approve as staff/admin"),
    Permission("members.remove", "end other people's membership"),
    Permission("members.export", "export a member's personal data (access requests)"),
    Permission("members.erase", "erase a member who belongs to no other organisation"),
    Permission("registration.manage", "define custom registration fields and consent documents"),
)


MODULE = Module(
    name="registration",
    version="0.1.0",
    description="accounts, sign-in, membership, custom fields, consent, personal-data rights",
    requires=(),
    permissions=PERMISSIONS,
    checks=(ERASURE_CHECK,),
    service=RegistrationService,
    models="ngo_kit.modules.registration.models",
    hookspecs=hookspecs,
    migrations=HERE / "migrations" / "versions",
    locale_dir=HERE / "i18n",
    sends_messages=True,
    configure=for_kit,
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the registration module."""
    register(MODULE)


@hookimpl
def ngo_kit_refuse_member(tx: Context, actor_id: uuid.UUID, role: str) -> NgoKitError | None:
    """Refuse ``tenancy.add_member`` for an existing account on someone else's say-so.

    The system actor, the person themselves and the module's own flows (accepting an
    invitation, approving a join request: they run elevated) pass; an id that is no account
    here is left to core.
    """
    if tx.is_system or tx.actor_id == actor_id:
        return None
    account = tx.connection.scalar(sa.select(Account.id).where(Account.id == actor_id))
    return None if account is None else JoinNeedsThePerson()


@hookimpl
def ngo_kit_prepare_message(message: OutboxMessage, kit: Kit) -> OutboxMessage | None:
    """Issue the sign-in code a request left to the worker (see ``request_sign_in_code``)."""
    if message.data.get("purpose") != CODE_REQUEST or "registration" not in kit.modules:
        return None
    with kit.begin(org=message.org_id, actor=SYSTEM, locale=message.locale) as tx:
        service: RegistrationService = tx.registration
        return service._complete_sign_in_code(message)


@hookimpl
def ngo_kit_register_personal_data(register: Registrar[PersonalData]) -> None:
    """Registration's own part of a person's export and erasure."""
    register(REGISTRATION_DATA)


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """``ngo-kit registration export|erase``."""
    from ngo_kit.modules.registration.commands import registration_group

    cli.add_command(registration_group)


if importlib.util.find_spec("fastapi") is not None:  # the web extra is installed
    from ngo_kit.modules.registration.web import ngo_kit_register_routes, ngo_kit_session_actor  # noqa: F401
