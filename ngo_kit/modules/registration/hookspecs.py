"""Hooks of the registration module (added to the kit when the module is enabled).

Event hooks run inside the transaction of the call that fired them: what an implementation
writes through ``tx`` commits or rolls back with it, and an exception rolls everything back.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ngo_kit.hookspecs import hookspec

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.plugins import PersonalData, Registrar

    from .schemas import UserRead


@hookspec
def ngo_kit_user_registered(tx: Context, user: UserRead) -> None:
    """Event: ``register()`` succeeded in ``tx``'s organisation.

    Fired for a new account, and for an existing account registering into one more
    organisation. ``user`` is the account as ``UserRead``. Returns nothing.
    """


@hookspec
def ngo_kit_user_verified(tx: Context, user: UserRead, channel: str) -> None:
    """Event: the person proved an identifier; ``channel`` is ``"email"`` or ``"phone"``.

    Called by ``verify_email`` and ``verify_phone`` (and the email / phone change
    confirmations). Returns nothing.
    """


@hookspec
def ngo_kit_member_joined(tx: Context, user_id: uuid.UUID, role: str) -> None:
    """Event: ``user_id`` became a member of ``tx``'s organisation with ``role``.

    Fired by registration, open joining, an accepted invitation and an approved join request.
    Returns nothing.
    """


@hookspec
def ngo_kit_member_left(tx: Context, user_id: uuid.UUID) -> None:
    """Event: ``user_id``'s membership of ``tx``'s organisation ended (left or removed).

    Returns nothing.
    """


@hookspec
def ngo_kit_user_erased(tx: Context, user_id: uuid.UUID) -> None:
    """Event: the person's personal data was erased (pseudonymised).

    Called once for each organisation the person is a member of, with ``tx`` bound to that
    organisation, after every registered ``PersonalData.erase`` ran there (data a module
    holds about a person is erased by its ``PersonalData``; see
    ``ngo_kit_register_personal_data``). Returns nothing.
    """


@hookspec
def ngo_kit_register_personal_data(register: Registrar[PersonalData]) -> None:
    """Collect: what each module and plugin holds about a person, ``register(PersonalData(...))``.

    Called once per kit, the first time a person's data is exported or erased. Register one
    ``PersonalData(name, tables, export, erase)`` (``ngo_kit.plugins``) naming every table
    whose rows are about a person. ``export_personal_data`` calls each ``export(tx, user_id)``
    and ``erase`` each ``erase(tx, user_id)``, once per organisation of the person with ``tx``
    bound to it. A name registered twice stops with ``ConfigurationError`` naming both plugins.
    """


@hookspec
def ngo_kit_register_fields(register: Registrar[Any]) -> None:
    """Collect: custom fields every organisation's forms get, ``register(FieldRead(...))``.

    Called once per kit, the first time a form is validated. ``FieldRead(form=...,
    name=..., kind=...)``; a form and name registered twice stops with ``ConfigurationError``
    naming both plugins. Organisations add their own fields as data (``define_field``).
    """
