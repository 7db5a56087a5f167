"""CSRF protection for server-rendered forms on an ``ngo_kit.web`` app.

Every form that changes something carries a hidden ``csrf_token`` field: a token signed with the
kit's token helper (``ngo_kit.tokens``, purpose ``web.csrf``) and bound to the browser it was
made for, through a digest of the session token when someone is signed in, else of a random
pre-session cookie (``ngo_kit_csrf``). A forged token, a token made for another browser or
session, an expired one or none at all is refused with ``CsrfRefused`` (403, in the request's
language) before the route runs.

Use it in three steps::

    app = create_app(kit)
    install_csrf(app)                        # sets the pre-session cookie when one was minted

    @app.get("/form", response_class=HTMLResponse)
    def form(request: Request) -> str:
        return f"<form method=post>{csrf_field(request)}...</form>"

    @app.post("/form", dependencies=[Depends(require_csrf)])
    def submit(...): ...

The pre-session cookie is ``HttpOnly``, ``SameSite=Lax`` and, like the session cookie,
``Secure`` unless the app turned ``secure_cookies`` off (development). Requests with an
``Authorization: Bearer`` header are API calls, not forms: browsers never add that header on
their own, so the JSON API needs no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape
from starlette.requests import Request

from ngo_kit.errors import NgoKitError, TokenInvalid
from ngo_kit.tokens import tokens_for
from ngo_kit.web import SESSION_COOKIE, STATUS

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ngo_kit.kit import Kit

CSRF_COOKIE = "ngo_kit_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PURPOSE = "web.csrf"
#: How long a rendered form stays valid.
MAX_AGE_SECONDS = 12 * 3600
_STATE_KEY = "ngo_kit_csrf_cookie"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CsrfRefused(NgoKitError):
    """A form arrived without a valid CSRF token (forged, expired, or made for another browser)."""

    code = "csrf_refused"
    template = (
        "This form has expired or did not come from this site. Reload the page and try again."
    )


STATUS[CsrfRefused] = 403


def _binding(request: Request) -> str | None:
    """What the token is bound to: the session cookie, else the (new) pre-session cookie."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return "s:" + session
    minted = request.scope.get("state", {}).get(_STATE_KEY)
    pre = request.cookies.get(CSRF_COOKIE) or minted
    return "p:" + pre if pre else None


def _digest(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()[:32]


def _kit(request: Request) -> Kit:
    kit: Kit = request.app.state.kit
    return kit


def csrf_token(request: Request) -> str:
    """A token for a form rendered for this request's browser.

    With no session and no pre-session cookie yet, mints the pre-session cookie value; the
    middleware installed by ``install_csrf`` sets the cookie on the response.
    """
    binding = _binding(request)
    if binding is None:
        value = secrets.token_urlsafe(24)
        request.scope.setdefault("state", {})[_STATE_KEY] = value
        binding = "p:" + value
    return tokens_for(_kit(request)).sign(PURPOSE, {"b": _digest(binding)})


def csrf_field(request: Request) -> Markup:
    """The hidden form field carrying a fresh token (safe to put in a template as it is)."""
    token = escape(csrf_token(request))
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">')


def check_csrf(request: Request, token: str | None) -> None:
    """Raise ``CsrfRefused`` unless ``token`` was made for this request's browser and session."""
    binding = _binding(request)
    if not token or binding is None:
        raise CsrfRefused()
    try:
        data: Any = tokens_for(_kit(request)).load(PURPOSE, token, max_age=MAX_AGE_SECONDS)
    except TokenInvalid:
        raise CsrfRefused() from None
    bound = data.get("b") if isinstance(data, dict) else None
    if not isinstance(bound, str) or not hmac.compare_digest(bound, _digest(binding)):
        raise CsrfRefused()


async def require_csrf(request: Request) -> None:
    """FastAPI dependency: refuse an unsafe request whose form (or header) lacks a valid token.

    Safe methods and bearer-token API calls pass; everything else needs the ``csrf_token``
    form field or the ``X-CSRF-Token`` header.
    """
    if request.method in _SAFE_METHODS:
        return
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    check_csrf(request, token)


class CsrfCookieMiddleware:
    """Sets the pre-session cookie on responses whose page minted one (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            value = scope.get("state", {}).get(_STATE_KEY)
            if message["type"] == "http.response.start" and value:
                cookie = f"{CSRF_COOKIE}={value}; HttpOnly; Path=/; SameSite=Lax"
                if self.secure:
                    cookie += "; Secure"
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def install_csrf(app: FastAPI) -> None:
    """Add the middleware that sets the pre-session cookie (call once, after ``create_app``)."""
    app.add_middleware(CsrfCookieMiddleware, secure=bool(app.state.secure_cookies))


__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "CsrfCookieMiddleware",
    "CsrfRefused",
    "check_csrf",
    "csrf_field",
    "csrf_token",
    "install_csrf",
    "require_csrf",
]
