"""ngo-kit: standard app modules for non-profits, composed through plugins."""

from __future__ import annotations

from ngo_kit.context import Context
from ngo_kit.errors import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    InsufficientPoints,
    InsufficientStock,
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
from ngo_kit.plugins import Channel, Module, Permission
from ngo_kit.settings import KitSettings
from ngo_kit.tenancy import SYSTEM

__version__ = "0.1.0"

__all__ = [
    "SYSTEM",
    "AlreadyExists",
    "Channel",
    "ConfigurationError",
    "Conflict",
    "Context",
    "DatabaseUnavailable",
    "InsufficientPoints",
    "InsufficientStock",
    "KeyReused",
    "Kit",
    "KitSettings",
    "Module",
    "NgoKitError",
    "NotFound",
    "Permission",
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
    "hookimpl",
    "hookspec",
]
