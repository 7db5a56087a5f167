"""The optional web layer (extra ``web``): a FastAPI app that mounts every enabled module's routes.

``create_app(kit)`` builds the app. Modules contribute routers through the collect hook
``ngo_kit_register_routes(register, kit)``; organisation-scoped routers are mounted under
``/api/orgs/{org}/<name>``, others under ``/api/<name>``. Routes hold no business rule: they
open a unit of work with ``ctx.begin()`` and call services. Errors become RFC 9457 problem
details (``application/problem+json``) with the error's stable code and a message in the
``Accept-Language`` locale. Route functions are plain ``def`` so FastAPI runs them in its
thread pool: slow work such as password hashing never blocks the event loop.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from babel.core import negotiate_locale
from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ngo_kit import errors, i18n
from ngo_kit.api_keys import ApiKeyInvalid, ApiKeyThrottled, authenticate, is_api_key
from ngo_kit.context import Context
from ngo_kit.db import utcnow
from ngo_kit.errors import NgoKitError
from ngo_kit.kit import Kit
from ngo_kit.plugins import Registrar, collect
from ngo_kit.schemas import Instant, ReadModel
from ngo_kit.tenancy import Actor, KeyActor, OrgRead

log = logging.getLogger("ngo_kit.web")

ORG_HEADER = "X-NGO-Kit-Org"
SESSION_COOKIE = "ngo_kit_session"
PROBLEM_JSON = "application/problem+json"

#: HTTP status for each error class (the most specific class wins).
STATUS: dict[type[NgoKitError], int] = {
    errors.ValidationFailed: 422,
    errors.NotFound: 404,
    errors.PermissionDenied: 403,
    errors.Conflict: 409,
    errors.TokenInvalid: 400,
    errors.DatabaseUnavailable: 503,
    errors.ConfigurationError: 500,
}


class AuthenticationRequired(NgoKitError):
    """The route needs a signed-in account and the request carries no valid session."""

    code = "authentication_required"
    template = "Please sign in first."


STATUS[AuthenticationRequired] = 401
STATUS[ApiKeyInvalid] = 401
STATUS[ApiKeyThrottled] = 429


#: A time taken from a query string: it must name its time zone, and is converted to UTC (a naive
#: time, or one outside the kit's range of instants, is a 422 naming the parameter).
AwareTime = Instant


@dataclass(frozen=True)
class Routes:
    """A module's router, as registered through ``ngo_kit_register_routes``.

    ``org_scoped`` routers are mounted under ``/api/orgs/{org}/<name>`` (the organisation comes
    from the path); the others under ``/api/<name>`` (the organisation, if any, from the
    ``X-NGO-Kit-Org`` header).
    """

    name: str
    router: APIRouter
    org_scoped: bool = True


class Problem(BaseModel):
    """RFC 9457 problem details, with ngo-kit's stable ``code`` and bilingual-ready message."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    rule: str | None = None
    errors: list[dict[str, Any]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}}
    for status in (400, 401, 403, 404, 409, 422, 429)
}


def request_locale(request: Request) -> str:
    """The best supported locale for the request's ``Accept-Language`` (default ``en``)."""
    header = request.headers.get("accept-language", "")
    wanted: list[tuple[float, str]] = []
    for part in header.split(","):
        tag, _, q = part.strip().partition(";q=")
        if not tag:
            continue
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        wanted.append((weight, tag.strip().replace("-", "_")))
    preferred = [tag for _, tag in sorted(wanted, key=lambda item: -item[0])]
    preferred = [("zh_CN" if t.lower().startswith("zh") else t) for t in preferred]
    found = negotiate_locale(preferred, list(i18n.SUPPORTED_LOCALES), sep="_")
    return i18n.normalise_locale(found)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if the request has one."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def session_token(request: Request) -> str | None:
    """The session token from ``Authorization: Bearer ...`` or, without one, the session cookie."""
    return bearer_token(request) or request.cookies.get(SESSION_COOKIE) or None


class RequestContext:
    """What a route needs from the request: the kit, organisation, actor and locale.

    ``ctx.begin()`` opens the unit of work; ``ctx.actor`` is the signed-in account id, the
    ``KeyActor`` of an API key (``Authorization: Bearer ngk_...``) or ``None``;
    ``ctx.require_actor()`` raises 401 when nobody is signed in.
    """

    def __init__(
        self, kit: Kit, org: str | None, actor: Actor, locale: str, token: str | None
    ) -> None:
        self.kit = kit
        self.org = org
        self.actor = actor
        self.locale = locale
        self.token = token
        self.members_only = False

    def require_actor(self) -> uuid.UUID:
        """The signed-in account id; 401 when there is none.

        A route that requires an actor also requires, in ``begin()``, that the actor is a member
        of the path's organisation: accounts are shared across organisations, so a session
        alone must not open another organisation's data. For an API key it returns the key's
        id; the key is bound to its own organisation instead.
        """
        if isinstance(self.actor, KeyActor):
            return self.actor.id
        if not isinstance(self.actor, uuid.UUID):
            raise AuthenticationRequired()
        self.members_only = True
        return self.actor

    @contextmanager
    def begin(self, *, org: str | Literal[False] | None = None) -> Iterator[Context]:
        """One transaction for this request (``org=False`` for none).

        After ``require_actor()``, a signed-in account that is not a member of the organisation
        gets ``NotFound`` for it, exactly as if it did not exist.
        """
        chosen = None if org is False else (org or self.org)
        with self.kit.begin(org=chosen, actor=self.actor, locale=self.locale) as tx:
            if isinstance(self.actor, KeyActor) and (
                tx.org is None or tx.org.id != self.actor.org_id
            ):
                raise ApiKeyInvalid()
            if self.members_only and tx.org is not None and isinstance(self.actor, uuid.UUID):
                try:
                    tx.tenancy.member(self.actor)
                except errors.NotFound:
                    raise errors.NotFound("Organisation", tx.org.slug) from None
            yield tx


def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the request's organisation, actor and locale."""
    kit: Kit = request.app.state.kit
    locale = request_locale(request)
    org = request.path_params.get("org") or request.headers.get(ORG_HEADER) or None
    bearer = bearer_token(request)
    if bearer is not None and is_api_key(bearer):  # a machine client: no session, no cookie
        key = authenticate(kit, org, bearer, client_key(request))
        return RequestContext(kit, org, key, locale, None)
    token = session_token(request)
    actor: Actor = None
    if token:
        token_locale = i18n.set_locale(locale)
        try:
            actor = kit.hook.ngo_kit_session_actor(kit=kit, token=token)
        finally:
            i18n.reset_locale(token_locale)
    return RequestContext(kit, org, actor, locale, token)


def status_of(error: NgoKitError) -> int:
    """The HTTP status for ``error``: its most specific class in ``STATUS``, else 400."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def withheld(error: NgoKitError) -> bool:
    """True when ``error``'s text is for operators, not for the client that caused it.

    Server errors (a ``ConfigurationError``, a lost database) and errors translated from the
    database driver's carry SQL, table and constraint names, the driver's message and sometimes
    the values it refused (personal data). Clients get the code and a generic message instead.
    """
    return error.from_database or status_of(error) >= 500


def public_message(error: NgoKitError, locale: str) -> str:
    """The message a client may see for ``error`` in ``locale`` (generic when ``withheld``)."""
    if not withheld(error):
        return error.message_in(locale)
    if isinstance(error, errors.Conflict):
        return i18n.gettext(errors.Conflict.template, locale)
    return i18n.gettext(NgoKitError.template, locale)


def problem(error: NgoKitError, locale: str, instance: str | None = None) -> JSONResponse:
    """The problem-details response for ``error`` in ``locale``.

    A ``withheld`` error answers with its code and a generic message, and none of its parameters.
    An error with a whole-number ``retry_after`` (a throttle's) sends it as ``Retry-After``.
    """
    status = status_of(error)
    if withheld(error):
        return _problem_response(
            status, error.code, public_message(error, locale), instance, {"code": error.code}
        )
    body = error.to_dict(locale)
    payload: dict[str, Any] = {
        "type": f"https://ngo-kit.org/problems/{error.code}",
        "title": error.code.replace("_", " "),
        "status": status,
        "detail": body.pop("message"),
        "code": body.pop("code"),
    }
    if instance:
        payload["instance"] = instance
    payload.update({k: v for k, v in body.items() if k not in payload})
    response = JSONResponse(payload, status_code=status, media_type=PROBLEM_JSON)
    retry_after = error.params.get("retry_after")
    if isinstance(retry_after, int) and not isinstance(retry_after, bool):
        response.headers["Retry-After"] = str(retry_after)  # a throttle says when to come back
    return response


def _problem_response(
    status: int, code: str, detail: str, instance: str | None, extra: dict[str, Any]
) -> JSONResponse:
    payload: dict[str, Any] = {
        "type": f"https://ngo-kit.org/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        **extra,
    }
    if instance:
        payload["instance"] = instance
    return JSONResponse(payload, status_code=status, media_type=PROBLEM_JSON)


#: The Content-Security-Policy of every answer that does not choose its own: scripts, styles,
#: images and fonts from the app's own origin only (no inline script or style, no ``eval``),
#: forms post back to the app, and no other site may frame a page (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

#: Headers every answer carries unless its route set them itself.
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware: the :data:`SECURITY_HEADERS` on every response, pages, API answers and
    errors alike, each unless the route chose its own.

    ``nosniff``; ``Cache-Control: no-store`` (answers carry sessions and personal data, which no
    shared cache may keep); the :data:`CONTENT_SECURITY_POLICY` (no inline script, no framing);
    ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``; and
    ``Referrer-Policy: no-referrer``, since links carry tokens (email verification,
    certificates) that must not travel to another site in a ``Referer``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: Where FastAPI's interactive API docs load Swagger UI and ReDoc from.
_DOCS_CDN = "https://cdn.jsdelivr.net"


def _api_docs_page(page: HTMLResponse) -> HTMLResponse:
    """An interactive docs page with a policy of its own: the page's inline scripts are allowed
    by their hashes (no other inline script runs), its bundles come from the CDN FastAPI uses."""
    html = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in _INLINE_SCRIPT.findall(html)
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {hashes} {_DOCS_CDN}; "
        f"style-src 'unsafe-inline' {_DOCS_CDN} https://fonts.googleapis.com; "
        "font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; "
        "worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _api_docs_routes(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` as FastAPI serves them, under :func:`_api_docs_page`."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _api_docs_page(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url="/docs/oauth2-redirect",
            )
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return _api_docs_page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _api_docs_page(get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc"))


def create_app(kit: Kit, *, title: str = "ngo-kit", secure_cookies: bool | None = None) -> FastAPI:
    """A FastAPI app with the routes of every enabled module and problem-details errors.

    Each module's hand-written routes (``ngo_kit_register_routes``) are mounted with the routes
    generated from its service's operation declarations (``ngo_kit.web.operations``); a
    declaration that disagrees with the hand-written routes stops the app at start-up
    (``core.E052``, ``core.E053``). ``secure_cookies`` (default: on outside development) marks
    the session cookie ``Secure``.
    """
    from ngo_kit.web.operations import note_problem, prepare

    app = FastAPI(
        title=title, version="0.1.0", responses=PROBLEM_RESPONSES, docs_url=None, redoc_url=None
    )
    app.state.kit = kit
    app.state.secure_cookies = (
        kit.settings.environment != "development" if secure_cookies is None else secure_cookies
    )

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(NgoKitError)
    def _ngo_kit_error(request: Request, exc: NgoKitError) -> JSONResponse:
        note_problem(request, exc)
        if withheld(exc):
            _log_withheld(request, exc)
        return problem(exc, request_locale(request), str(request.url.path))

    @app.exception_handler(Exception)
    def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises the exception after this answer, so the server logs it as usual.
        # It answers from outside every middleware, SecurityHeaders too: the headers go here.
        response = _problem_response(
            500,
            NgoKitError.code,
            i18n.gettext(NgoKitError.template, request_locale(request)),
            str(request.url.path),
            {"code": NgoKitError.code},
        )
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = _translate_request_errors(exc)
        note_problem(request, error)
        return problem(error, request_locale(request), str(request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers a body it cannot decode (bytes that are not UTF-8) with a bare 400.
        if exc.status_code == 400:
            return problem(
                errors.ValidationFailed("body", "invalid"),
                request_locale(request),
                str(request.url.path),
            )
        return await http_exception_handler(request, exc)

    _api_docs_routes(app)
    app.include_router(_core_router())
    from ngo_kit.web.machine import build_router as machine_router

    app.include_router(
        machine_router(), prefix="/api/orgs/{org}", tags=["core"], dependencies=[Depends(_org_path)]
    )
    registrar: Registrar[Routes] = Registrar("routes", Routes, lambda r: r.name)
    registered = collect(kit.pm, "ngo_kit_register_routes", registrar, kit=kit).values()
    app.state.operations = {}
    generated = prepare(app, kit, {r.name: r.router for r in registered if r.org_scoped})
    for routes in registered:
        if routes.org_scoped:  # declare {org}, so the OpenAPI document names the parameter
            prefix, deps = f"/api/orgs/{{org}}/{routes.name}", [Depends(_org_path)]
        else:
            prefix, deps = f"/api/{routes.name}", []
        app.include_router(routes.router, prefix=prefix, tags=[routes.name], dependencies=deps)
    for name, router in generated.items():
        app.include_router(
            router,
            prefix=f"/api/orgs/{{org}}/{name}",
            tags=[name],
            dependencies=[Depends(_org_path)],
        )
    return app


def _log_withheld(request: Request, error: NgoKitError) -> None:
    """Log what the client was not told: a server error's message; for an error the database
    raised, only the driver's error class (its text may quote the values refused)."""
    if status_of(error) >= 500 and not error.from_database:
        what = error.message_in("en")
    else:
        what = f"{error.code} from {type(error.__cause__).__name__}"
    log.error("%s %s failed: %s", request.method, request.url.path, what)


def _org_path(org: Annotated[str, Path(description="The organisation's slug")]) -> str:
    return org


def _translate_request_errors(exc: RequestValidationError) -> errors.ValidationFailed:
    problems: list[errors.ValidationFailed] = []
    for item in exc.errors():
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "header")]
        ctx: dict[str, Any] = {
            k: str(v) for k, v in (item.get("ctx") or {}).items() if k not in ("field", "rule")
        }
        problems.append(
            errors.ValidationFailed(
                ".".join(loc) or "body", str(item.get("type", "invalid")), **ctx
            )
        )
    if not problems:
        return errors.ValidationFailed("body", "invalid")
    first = problems[0]
    extra = {k: v for k, v in first.params.items() if k not in ("field", "rule", "reason")}
    return errors.ValidationFailed(first.field, first.rule, errors=problems, **extra)


class OrgSummary(ReadModel):
    """An organisation as the API lists it."""

    slug: str
    name: str
    timezone: str
    locale: str


def _core_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["core"])

    @router.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the app is up (does not touch the database)."""
        return {"status": "ok"}

    @router.get("/orgs")
    def list_orgs(ctx: RequestContext = Depends(request_context)) -> list[OrgSummary]:
        """Organisations the signed-in account is a member of."""
        ctx.require_actor()
        with ctx.begin(org=False) as tx:
            return [
                OrgSummary.model_validate(o, from_attributes=True)
                for o in tx.tenancy.list_organisations()
            ]

    @router.get("/orgs/{org}")
    def get_org(org: str, ctx: RequestContext = Depends(request_context)) -> OrgSummary:
        """One organisation (public facts only)."""
        with ctx.begin() as tx:
            found: OrgRead = tx.tenancy.organisation()
        return OrgSummary.model_validate(found, from_attributes=True)

    return router


def set_session_cookie(
    response: Response, request: Request, token: str, expires_at: dt.datetime
) -> None:
    """Put the session token in an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure`` outside
    dev) that the browser keeps until the session ``expires_at``."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, int((expires_at - utcnow()).total_seconds())),
        httponly=True,
        samesite="lax",
        secure=bool(request.app.state.secure_cookies),
        path="/",
    )


def client_key(request: Request) -> str | None:
    """The key a request's client is counted under for throttling (its address), if known."""
    return f"ip:{request.client.host}" if request.client else None


def clear_session_cookie(response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/")


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "ORG_HEADER",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "AuthenticationRequired",
    "AwareTime",
    "Problem",
    "RequestContext",
    "Routes",
    "SecurityHeaders",
    "bearer_token",
    "client_key",
    "create_app",
    "problem",
    "public_message",
    "request_context",
    "set_session_cookie",
    "status_of",
    "withheld",
]
