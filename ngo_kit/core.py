"""Core's own plugin: its permissions and the audit chain check, registered like any plugin's."""

from __future__ import annotations

from ngo_kit.audit import AUDIT_CHECK
from ngo_kit.hookspecs import hookimpl
from ngo_kit.plugins import Permission, Registrar

PERMISSIONS = (
    Permission("org.manage", "change the organisation's name, time zone, locale and settings"),
    Permission(
        "roles.manage", "create roles, grant permissions, add members and change their roles"
    ),
    Permission("members.view", "see who the members are and their roles", ("staff",)),
    Permission("audit.view", "read the audit log and its events feed", ("staff",)),
    Permission(
        "api_keys.manage",
        "create, list and revoke the organisation's API keys (owners and administrators)",
    ),
)


@hookimpl
def ngo_kit_register_permissions(register: Registrar[Permission]) -> None:
    """Core's permissions."""
    for permission in PERMISSIONS:
        register(permission)


@hookimpl
def ngo_kit_register_checks(register: Registrar[object]) -> None:
    """The audit chain of every organisation."""
    register(AUDIT_CHECK)
