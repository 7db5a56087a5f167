"""The boundary: what an organisation sends to configure an endpoint, and what it reads back."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from ngo_kit.errors import register_rule_messages
from ngo_kit.schemas import InputModel, ReadModel, Text, no_control_characters
from ngo_kit_webhooks.settings import load_settings

#: The events an endpoint can subscribe to: each is the hook ``ngo_kit_<event>``.
EVENTS = (
    "org_created",
    "user_registered",
    "points_awarded",
    "reward_redeemed",
    "stock_moved",
    "shift_completed",
    "hours_approved",
)

register_rule_messages(
    {
        "https_required": "must be an https:// URL",
        "url_invalid": "must be an http:// or https:// URL with a host name",
        "url_credentials": "must not carry a user name or password",
        "local_address": "must not point at a loopback, private or link-local address",
        "unknown_event": "must be one of {events}",
    }
)


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url_invalid", "must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise PydanticCustomError("url_credentials", "must not carry a user name or password")
    if load_settings().allow_local:
        return value
    if parts.scheme != "https":
        raise PydanticCustomError("https_required", "must be an https:// URL")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return value  # a name: its addresses are checked when delivering
    if not address.is_global:
        raise PydanticCustomError("local_address", "must not point at a local address")
    return value


def _events(value: list[str]) -> list[str]:
    unknown = [e for e in value if e not in EVENTS]
    if unknown:
        raise PydanticCustomError(
            "unknown_event", "must be one of {events}", {"events": ", ".join(EVENTS)}
        )
    return sorted(set(value))


Url = Annotated[
    str,
    Field(min_length=8, max_length=320),
    AfterValidator(no_control_characters),
    AfterValidator(_url),
]
Events = Annotated[list[str], Field(min_length=1, max_length=len(EVENTS)), AfterValidator(_events)]
Description = Annotated[str, Field(max_length=200), AfterValidator(no_control_characters)]


class EndpointIn(InputModel):
    """A new endpoint: where to POST, which events, and (optionally) the signing secret.

    Without ``secret`` a random one is made; it is returned once, by ``add_endpoint``.
    """

    url: Url
    events: Events
    secret: Text | None = Field(default=None, min_length=16, max_length=200)
    active: bool = True
    description: Description = ""

    @field_validator("secret")
    @classmethod
    def _no_blanks(cls, value: str | None) -> str | None:
        if value is not None and any(ch.isspace() for ch in value):
            raise PydanticCustomError("control_characters", "must not contain spaces")
        return value


class EndpointChange(InputModel):
    """A change to an endpoint: only the fields given change."""

    url: Url | None = None
    events: Events | None = None
    active: bool | None = None
    description: Description | None = None


class EndpointRead(ReadModel):
    """An endpoint as the service returns it (without its secret)."""

    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    description: str
    created_at: dt.datetime


class EndpointCreated(EndpointRead):
    """An endpoint just created (or whose secret was rotated), with the secret to share."""

    secret: str


def jsonable(value: Any) -> Any:
    """An event argument as JSON: pydantic models through ``model_dump(mode="json")``."""
    from pydantic import BaseModel
    from pydantic_core import to_jsonable_python

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return to_jsonable_python(value)
