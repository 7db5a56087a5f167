"""The relief_hub app: every ngo-kit module and both bridge plugins behind one FastAPI app.

``build_kit(database_url)`` composes registration, points, inventory and volunteer with the
first-party plugins ``hours_points`` (approved hours earn points) and ``rewards_stock``
(rewards backed by donated stock). ``create_relief_hub(kit)`` starts from
``ngo_kit.web.create_app(kit)``, so the JSON API and its OpenAPI document stay under ``/api``,
and adds server-rendered pages (left out of the OpenAPI document), CSRF protection for their
forms, and an outbox worker thread that delivers messages while the app runs (the console
channel prints verification codes to standard output in development).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import ngo_kit_rewards_stock
import ngo_kit_volunteer_points
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ngo_kit import Kit, KitSettings
from ngo_kit.errors import NgoKitError
from ngo_kit.web import create_app, problem, request_locale
from ngo_kit.web.csrf import install_csrf

from . import certificates, public, staff
from .pages import PageMethodRefused, PageNotFound, error_page

log = logging.getLogger("relief_hub")

MODULES = ("registration", "points", "inventory", "volunteer", "hours_points", "rewards_stock")
PLUGINS = (ngo_kit_volunteer_points, ngo_kit_rewards_stock)


def build_kit(database_url: str, *, plugins: Sequence[object] = (), **settings: Any) -> Kit:
    """The relief_hub kit on ``database_url``; ``settings`` override ``KitSettings`` fields.

    Installed third-party plugins are not autoloaded: the app names exactly what it composes.
    ``plugins`` adds more, such as a production message channel (``ngo-kit-smtp``'s
    ``SmtpChannel()``), without which a production kit refuses to start (``core.E007``).
    """
    values: dict[str, Any] = {"database_url": database_url, **settings}
    return Kit(
        settings=KitSettings.model_validate(values),
        modules=MODULES,
        plugins=(*PLUGINS, *plugins),
        autoload=False,
    )


def create_relief_hub(
    kit: Kit,
    *,
    deliver_messages: bool = True,
    outbox_interval: float = 0.5,
    secure_cookies: bool | None = None,
) -> FastAPI:
    """The app: ``/api`` from ``ngo_kit.web`` plus the pages.

    With ``deliver_messages`` the app's lifespan runs a thread that delivers due outbox
    messages every ``outbox_interval`` seconds until the app stops.
    """
    app = create_app(kit, title="relief_hub", secure_cookies=secure_cookies)
    install_csrf(app)

    async def _error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NgoKitError)
        if request.url.path.startswith("/api/"):
            response: JSONResponse = problem(exc, request_locale(request), str(request.url.path))
            return response
        return error_page(request, exc)

    api_http_error = app.exception_handlers[StarletteHTTPException]
    api_request_error = app.exception_handlers[RequestValidationError]

    async def _http_error(request: Request, exc: Exception) -> Response:
        # Pages answer an unknown address or a form's address opened again with a page in the
        # site's frame; the API keeps its problem documents.
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/api/") or exc.status_code not in (404, 405):
            answer: Response = await _call(api_http_error, request, exc)
            return answer
        if exc.status_code == 405:
            return error_page(request, PageMethodRefused())
        return error_page(request, PageNotFound("Page", request.url.path))

    async def _request_error(request: Request, exc: Exception) -> Response:
        # A page address with a malformed id (``/o/x/shifts/nonsense/...``) names no page.
        if request.url.path.startswith("/api/"):
            answer: Response = await _call(api_request_error, request, exc)
            return answer
        return error_page(request, PageNotFound("Page", request.url.path))

    app.add_exception_handler(NgoKitError, _error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_error)
    app.include_router(public.router)
    app.include_router(staff.router)
    app.include_router(certificates.router)
    if deliver_messages:
        app.router.lifespan_context = _outbox_lifespan(kit, outbox_interval)
    return app


async def _call(handler: Any, request: Request, exc: Exception) -> Any:
    """Run an exception handler, which Starlette allows to be plain or async."""
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def _outbox_lifespan(kit: Kit, interval: float) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = threading.Thread(
            target=deliver_until, args=(kit, stop, interval), name="relief-hub-outbox", daemon=True
        )
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=10)

    return lifespan


def deliver_until(kit: Kit, stop: threading.Event, interval: float) -> None:
    """Deliver due outbox messages every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            kit.outbox.work(once=True)
        except Exception:  # a database hiccup must not end the worker; the next pass retries
            log.exception("outbox pass failed")
        stop.wait(interval)


__all__ = ["MODULES", "PLUGINS", "build_kit", "create_relief_hub", "deliver_until"]
