"""Helpers shared by the registration tests (imported as ``registration_helpers``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ngo_kit.testing import MessageCatcher

PASSWORD = "correct horse battery"

Register = Callable[..., uuid.UUID]


def last_data(catcher: MessageCatcher, recipient: str, key: str) -> str:
    """The ``data[key]`` of the newest message delivered to ``recipient``."""
    found = [m for m in catcher.to(recipient) if key in m.data]
    assert found, f"no message with {key!r} was delivered to {recipient}"
    return str(found[-1].data[key])
