"""Core's routes for machine clients, under ``/api/orgs/{org}``: API keys and the events feed.

``POST /api-keys`` (201), ``GET /api-keys`` and ``POST /api-keys/{key_id}/revoke`` manage the
organisation's keys (``api_keys.manage``); ``GET /events`` pages its audit events
(``audit.view``). Each route opens one unit of work and calls one operation of ``tx.api_keys``
or ``tx.events`` (their ``@operation`` declarations say ``custom=True``: these are the routes).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ngo_kit.api_keys import ApiKeyCreated, ApiKeyIn, ApiKeyRead
from ngo_kit.events import DEFAULT_LIMIT, MAX_LIMIT, EventPage
from ngo_kit.web import AwareTime, RequestContext, request_context

Ctx = Annotated[RequestContext, Depends(request_context)]


def build_router() -> APIRouter:
    """The routes, relative to ``/api/orgs/{org}``."""
    router = APIRouter()

    @router.post("/api-keys", status_code=201)
    def create_api_key(body: ApiKeyIn, ctx: Ctx) -> ApiKeyCreated:
        """Create an API key (``api_keys.manage``); ``key`` in the answer is shown only once."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return tx.api_keys.create(body)

    @router.get("/api-keys")
    def list_api_keys(ctx: Ctx, include_revoked: bool = False) -> list[ApiKeyRead]:
        """The organisation's API keys, without their secrets (``api_keys.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return tx.api_keys.list_keys(include_revoked=include_revoked)

    @router.post("/api-keys/{key_id}/revoke")
    def revoke_api_key(key_id: uuid.UUID, ctx: Ctx) -> ApiKeyRead:
        """Revoke an API key; its next request is refused (``api_keys.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return tx.api_keys.revoke(key_id)

    @router.get("/events")
    def events(
        ctx: Ctx,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        kind: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        since: AwareTime | None = None,
    ) -> EventPage:
        """The organisation's audit events after ``after`` (a ``seq``), oldest first
        (``audit.view``); filter by ``kind`` (``points`` or ``points.awarded``) and ``since``."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return tx.events.feed(after=after, limit=limit, kind=kind, since=since)

    return router
