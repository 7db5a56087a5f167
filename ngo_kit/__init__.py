"""ngo-kit: standard app modules for non-profits, composed through plugins.

The public names below are imported when first used (``from ngo_kit import Kit`` works as
always), so importing a light part of ngo-kit, such as its pytest plugin, does not import the
whole kit and SQLAlchemy with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.errors import (
        AlreadyExists,
        CheckpointRefused,
        ConfigurationError,
        Conflict,
        DatabaseUnavailable,
        InsufficientPoints,
        InsufficientStock,
        IntegrityFailed,
        KeyReused,
        NgoKitError,
        NotFound,
        PermissionDenied,
        PluginError,
        SelfActionRefused,
        ShiftFull,
        TokenExpired,
        TokenInvalid,
        TokenTampered,
        TokenUsed,
        TokenWrongPurpose,
        TransactionConflict,
        ValidationFailed,
    )
    from ngo_kit.hookspecs import hookimpl, hookspec
    from ngo_kit.kit import Kit
    from ngo_kit.plugins import Channel, Module, Permission, PersonalData
    from ngo_kit.settings import KitSettings
    from ngo_kit.tenancy import SYSTEM

__version__ = "0.1.0"

_ERRORS = (
    "AlreadyExists",
    "CheckpointRefused",
    "ConfigurationError",
    "Conflict",
    "DatabaseUnavailable",
    "InsufficientPoints",
    "InsufficientStock",
    "IntegrityFailed",
    "KeyReused",
    "NgoKitError",
    "NotFound",
    "PermissionDenied",
    "PluginError",
    "SelfActionRefused",
    "ShiftFull",
    "TokenExpired",
    "TokenInvalid",
    "TokenTampered",
    "TokenUsed",
    "TokenWrongPurpose",
    "TransactionConflict",
    "ValidationFailed",
)
#: public name -> the module that defines it
_WHERE = {
    **dict.fromkeys(_ERRORS, "ngo_kit.errors"),
    "Context": "ngo_kit.context",
    "hookimpl": "ngo_kit.hookspecs",
    "hookspec": "ngo_kit.hookspecs",
    "Kit": "ngo_kit.kit",
    "Channel": "ngo_kit.plugins",
    "Module": "ngo_kit.plugins",
    "Permission": "ngo_kit.plugins",
    "PersonalData": "ngo_kit.plugins",
    "KitSettings": "ngo_kit.settings",
    "SYSTEM": "ngo_kit.tenancy",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'ngo_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "SYSTEM",
    "AlreadyExists",
    "Channel",
    "CheckpointRefused",
    "ConfigurationError",
    "Conflict",
    "Context",
    "DatabaseUnavailable",
    "InsufficientPoints",
    "InsufficientStock",
    "IntegrityFailed",
    "KeyReused",
    "Kit",
    "KitSettings",
    "Module",
    "NgoKitError",
    "NotFound",
    "Permission",
    "PermissionDenied",
    "PersonalData",
    "PluginError",
    "SelfActionRefused",
    "ShiftFull",
    "TokenExpired",
    "TokenInvalid",
    "TokenTampered",
    "TokenUsed",
    "TokenWrongPurpose",
    "TransactionConflict",
    "ValidationFailed",
    "hookimpl",
    "hookspec",
]
