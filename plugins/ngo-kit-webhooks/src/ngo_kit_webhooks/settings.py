"""The plugin's settings, from ``NGO_KIT_WEBHOOKS_*`` environment variables."""

from __future__ import annotations

import pydantic
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ngo_kit.errors import ConfigurationError

ENV_PREFIX = "NGO_KIT_WEBHOOKS_"


class WebhooksSettings(BaseSettings):
    """How deliveries are made.

    ``allow_local`` (``NGO_KIT_WEBHOOKS_ALLOW_LOCAL=1``) permits ``http://`` URLs and endpoints
    on loopback, private and link-local addresses: for development, tests and receivers on
    the organisation's own network. Off (the default), endpoints must be ``https://`` and
    resolve to public addresses, so an organisation's administrator cannot make the server
    call its own internal services.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    timeout: float = Field(default=10.0, gt=0, le=120)
    allow_local: bool = False


def load_settings() -> WebhooksSettings:
    """Read the settings; a bad value is ``ConfigurationError`` ``webhooks.E001`` naming it."""
    try:
        return WebhooksSettings()
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigurationError(
            "webhooks.E001",
            "{setting}: {problem}",
            setting=f"{ENV_PREFIX}{field.upper()}",
            problem=first["msg"],
        ) from None
