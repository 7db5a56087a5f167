"""A stand-in for the registration module's event: declares ``ngo_kit_user_registered``.

Registered as a tiny module so its hookspec is added the way a module's are; the points tests
fire the event with ``tx.emit`` and so do not depend on the registration module.
"""

from __future__ import annotations

import sys
from typing import Any

from ngo_kit import Module, hookimpl, hookspec
from ngo_kit.context import Context
from ngo_kit.plugins import Registrar


@hookspec
def ngo_kit_user_registered(tx: Context, user: Any) -> None:
    """Event: an account was registered (``user.id`` is the account id)."""


STAND_IN = Module(name="reg_stand_in", hookspecs=sys.modules[__name__])


class RegistrationStandIn:
    """The plugin providing the stand-in module."""

    ngo_kit_plugin_name = "test.registration_stand_in"

    @hookimpl
    def ngo_kit_register_modules(self, register: Registrar[Module]) -> None:
        register(STAND_IN)
