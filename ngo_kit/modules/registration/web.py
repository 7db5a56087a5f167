"""HTTP routes of the registration module (the ``web`` extra): register, sign in (a password,
or a code texted on request) and out, the signed-in account, verification and password reset.
A throttled call answers 429 with ``Retry-After`` (core's ``problem``).

Mounted by ``ngo_kit.web.create_app`` under ``/api/orgs/{org}/registration``. Routes hold no
business rule: each opens one unit of work and calls one method of ``tx.registration``.
Route functions are plain ``def`` so password hashing runs in FastAPI's thread pool.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from ngo_kit.context import Context
from ngo_kit.errors import TokenInvalid
from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.plugins import Registrar
from ngo_kit.schemas import InputModel, Text
from ngo_kit.web import (
    PROBLEM_JSON,
    STATUS,
    Problem,
    RequestContext,
    Routes,
    clear_session_cookie,
    client_key,
    request_context,
    set_session_cookie,
)

from .errors import SignInFailed, TooManyAttempts, WrongPassword
from .schemas import RegisterIn, SignIn, SignInIn, UserRead
from .service import RegistrationService

# The module's own errors and the HTTP status each means (core maps the shared hierarchy).
STATUS.setdefault(SignInFailed, 401)
STATUS.setdefault(WrongPassword, 403)
STATUS.setdefault(TooManyAttempts, 429)

Ctx = Annotated[RequestContext, Depends(request_context)]
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "Too many attempts or requests; the Retry-After header says how many "
        "seconds to wait",
        "headers": {
            "Retry-After": {"description": "Seconds until the lock or window ends"},
        },
    }
}


class TokenIn(InputModel):
    """A token from a link (email verification)."""

    token: Text = Field(min_length=1, max_length=2000)


class CodeIn(InputModel):
    """A 6-digit code sent by SMS."""

    code: Text = Field(min_length=1, max_length=6)


class PhoneIn(InputModel):
    """A mobile phone number (national numbers use the organisation's region)."""

    phone: Text = Field(min_length=1, max_length=40)


class ResetRequestIn(InputModel):
    """Ask for a password-reset link by email or phone."""

    email: Text | None = Field(default=None, max_length=320)
    phone: Text | None = Field(default=None, max_length=40)


class ResetIn(InputModel):
    """A new password with the reset link's token."""

    token: Text = Field(min_length=1, max_length=2000)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChangeIn(InputModel):
    """The current password and a new one."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


def _registration(tx: Context) -> RegistrationService:
    """``tx.registration``, typed."""
    service: RegistrationService = tx.registration
    return service


def build_router() -> APIRouter:
    """The registration routes (relative to ``/api/orgs/{org}/registration``)."""
    router = APIRouter()

    @router.post("/register", status_code=201)
    def register(body: RegisterIn, ctx: Ctx) -> UserRead:
        """Register in this organisation (email or phone, password, consents, custom fields).

        The organisation's joining rule decides whether the person becomes a member at once.
        Verification messages are sent through the outbox, by its worker. An email or phone an
        account has already gets the same 201 (an id that names no account) and its holder a
        notice; staff get ``already_exists`` (409).
        """
        with ctx.begin() as tx:
            return _registration(tx).register(body)

    @router.post("/sign-in", responses=THROTTLED)
    def sign_in(body: SignInIn, ctx: Ctx, request: Request, response: Response) -> SignIn:
        """Sign in with a password (or a phone code): the session token in the JSON body for API
        clients, and the same token in the ``HttpOnly`` session cookie for pages.

        Wrong credentials, and an email and a phone that do not belong to one account, give the
        same ``sign_in_failed`` (401) whoever the account is; too many
        failures per account or per client give ``too_many_attempts`` (429, with
        ``Retry-After``).
        """
        with ctx.begin() as tx:
            signed_in = _registration(tx).authenticate(
                body.model_copy(update={"client": client_key(request)})
            )
        set_session_cookie(response, request, signed_in.token, signed_in.expires_at)
        return signed_in

    @router.post("/sign-in/code", status_code=202, response_class=Response, responses=THROTTLED)
    def request_sign_in_code(body: PhoneIn, ctx: Ctx, request: Request) -> Response:
        """Text a sign-in code to this number if an account has it (the answer never says).

        Too many requests per number or per client give ``too_many_requests`` (429, with
        ``Retry-After``), for unknown numbers too.
        """
        with ctx.begin() as tx:
            _registration(tx).request_sign_in_code(body.phone, client=client_key(request))
        return Response(status_code=202)

    @router.post("/sign-out", status_code=204)
    def sign_out(ctx: Ctx) -> Response:
        """End this session (the bearer token or the cookie) and clear the cookie."""
        ctx.require_actor()
        assert ctx.token is not None  # there is an actor only when a token was given
        with ctx.begin() as tx:
            _registration(tx).sign_out(ctx.token)
        response = Response(status_code=204)
        clear_session_cookie(response)
        return response

    @router.get("/me")
    def me(ctx: Ctx) -> UserRead:
        """The signed-in account, as a member of this organisation."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _registration(tx).get_user(actor)

    @router.get("/members")
    def members(
        ctx: Ctx,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[UserRead]:
        """The organisation's members, oldest membership first (``members.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _registration(tx).members(limit=limit, offset=offset)

    @router.post(
        "/me/email-verification", status_code=202, response_class=Response, responses=THROTTLED
    )
    def send_email_verification(ctx: Ctx, request: Request) -> Response:
        """Send (again) the link that verifies the signed-in account's email address."""
        ctx.require_actor()
        with ctx.begin() as tx:
            _registration(tx).send_email_verification(client=client_key(request))
        return Response(status_code=202)

    @router.post("/verify-email")
    def verify_email(body: TokenIn, ctx: Ctx) -> UserRead:
        """Verify an email address with the link's token (no session needed)."""
        with ctx.begin() as tx:
            return _registration(tx).verify_email(body.token)

    @router.post("/me/phone-code", status_code=202, response_class=Response, responses=THROTTLED)
    def send_phone_code(ctx: Ctx, request: Request) -> Response:
        """Text a 6-digit code that verifies the signed-in account's phone number."""
        ctx.require_actor()
        with ctx.begin() as tx:
            _registration(tx).send_phone_code(client=client_key(request))
        return Response(status_code=202)

    @router.post("/me/verify-phone", responses=THROTTLED)
    def verify_phone(body: CodeIn, ctx: Ctx) -> UserRead:
        """Verify the signed-in account's phone number with the code it received."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _registration(tx).verify_phone(body.code)

    @router.post("/me/password", status_code=204, responses=THROTTLED)
    def change_password(body: PasswordChangeIn, ctx: Ctx) -> Response:
        """Change the signed-in account's password (the current one is needed).

        The account's other sessions are signed out; the one making the change stays.
        """
        ctx.require_actor()
        with ctx.begin() as tx:
            _registration(tx).change_password(
                body.current_password, body.new_password, keep_session=ctx.token
            )
        return Response(status_code=204)

    @router.post(
        "/password-reset/request", status_code=202, response_class=Response, responses=THROTTLED
    )
    def request_password_reset(body: ResetRequestIn, ctx: Ctx, request: Request) -> Response:
        """Send a reset link if an account has this email or phone (the answer never says).

        Too many requests per address or number, or per client, give ``too_many_requests``
        (429, with ``Retry-After``), for unknown addresses too.
        """
        with ctx.begin() as tx:
            _registration(tx).request_password_reset(
                email=body.email, phone=body.phone, client=client_key(request)
            )
        return Response(status_code=202)

    @router.post("/password-reset")
    def reset_password(body: ResetIn, ctx: Ctx) -> UserRead:
        """Choose a new password with the reset link's token; signs out everywhere."""
        with ctx.begin() as tx:
            return _registration(tx).reset_password(body.token, body.password)

    return router


@hookimpl
def ngo_kit_register_routes(register: Registrar[Routes], kit: Kit) -> None:
    """Contribute the registration routes (collect hook of ``ngo_kit.web``)."""
    register(Routes("registration", build_router()))


@hookimpl
def ngo_kit_session_actor(kit: Kit, token: str) -> uuid.UUID | None:
    """The account a session token issued by ``/sign-in`` belongs to, or ``None``."""
    try:
        with kit.begin() as tx:
            return _registration(tx).session_user(token).id
    except TokenInvalid:
        return None


__all__ = ["build_router", "ngo_kit_register_routes", "ngo_kit_session_actor"]
