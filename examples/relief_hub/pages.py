"""What every page route shares: the request's language, kit context, templates and messages.

A route makes a ``Page`` from its request, opens units of work with ``page.begin()`` (the
signed-in account, the path's organisation and the page's language) and returns
``page.render(...)`` or ``page.redirect(...)``. Business rules stay in the services: a page
only turns form fields into service arguments and service answers into HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ngo_kit import errors
from ngo_kit.context import Context
from ngo_kit.errors import NgoKitError
from ngo_kit.web import (
    AuthenticationRequired,
    RequestContext,
    public_message,
    request_context,
    status_of,
)
from ngo_kit.web.csrf import CsrfRefused, csrf_field, require_csrf

from .language import LANG_COOKIE, chosen_language, page_locale, translator

HERE = Path(__file__).parent
FLASH_COOKIE = "relief_hub_flash"

TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

#: The dependencies of every form a page posts: the CSRF token must match.
CSRF = [Depends(require_csrf)]
#: A text field of a posted form.
Field = Annotated[str, Form()]


def N_(message: str) -> str:
    """Mark ``message`` as a catalogue id translated later (flash messages, titles)."""
    return message


#: Words the services return as data (statuses, recipient groups) that pages translate.
DATA_WORDS = (
    N_("applicant"),
    N_("approved"),
    N_("inactive"),
    N_("open"),
    N_("completed"),
    N_("confirmed"),
    N_("waitlisted"),
    N_("attended"),
    N_("no_show"),
    N_("requested"),
    N_("fulfilled"),
    N_("cancelled"),
    N_("beneficiary"),
    N_("household"),
    N_("project"),
    N_("activity"),
    N_("site"),
    N_("scrap"),
    N_("donor"),
    N_("adjustment"),
)


class Page:
    """One page request: language, organisation, signed-in account and rendering."""

    def __init__(self, request: Request, org: str | None = None) -> None:
        self.request = request
        self.org = org
        self.locale = page_locale(request)
        self._ = translator(self.locale)
        self.ctx: RequestContext = request_context(request)
        self.ctx.locale = self.locale
        self.ctx.org = org

    @property
    def actor(self) -> uuid.UUID | None:
        """The signed-in account, or ``None``."""
        return self.ctx.actor if isinstance(self.ctx.actor, uuid.UUID) else None

    def require_actor(self) -> uuid.UUID:
        """The signed-in member of the organisation; sends anyone else to the sign-in page."""
        return self.ctx.require_actor()

    @contextmanager
    def begin(self, require: str | None = None) -> Iterator[Context]:
        """One unit of work as the signed-in account, in the page's organisation and language.

        With ``require`` (a permission), only for a signed-in member holding it: anyone not
        signed in goes to the sign-in page, a non-member gets a 404 and a member without the
        permission a 403, before the page reads anything.
        """
        if require is not None:
            self.require_actor()
        with self.ctx.begin() as tx:
            if require is not None:
                tx.require(require)
            yield tx

    def is_member(self, tx: Context) -> bool:
        """True when someone is signed in and is a member of the page's organisation."""
        if self.actor is None:
            return False
        try:
            tx.tenancy.member(self.actor)
        except errors.NotFound:
            return False
        return True

    def url(self, path: str = "") -> str:
        """A path inside the organisation: ``page.url("shifts")`` is ``/o/<org>/shifts``."""
        return f"/o/{self.org}/{path}"

    def render(
        self,
        template: str,
        status: int = 200,
        refused: NgoKitError | None = None,
        **values: Any,
    ) -> HTMLResponse:
        """The template rendered in the page's language, with the layout's shared values.

        With ``refused`` (the error a form was refused with), the page answers with that
        error's status, shows its message as ``error`` and each invalid field's as ``errors``.
        """
        if refused is not None:
            status = status_of(refused)
            values = {
                "error": self.message(refused),
                "errors": self.field_errors(refused),
                **values,
            }
        flash = self.request.cookies.get(FLASH_COOKIE)
        layout = self._layout()
        zone = layout["organisation"].zone if layout["organisation"] else dt.UTC
        body = TEMPLATES.get_template(template).render(
            _=self._,
            locale=self.locale,
            lang="zh" if self.locale == "zh_CN" else "en",
            other_lang="en" if self.locale == "zh_CN" else "zh",
            colon="：" if self.locale == "zh_CN" else ": ",  # after a label: "余额：" / "Balance: "
            request=self.request,
            path=self.request.url.path,
            org_slug=self.org,
            csrf=lambda: csrf_field(self.request),
            flash=_read_flash(flash, self._),
            when=lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            number=lambda value: f"{value.normalize():f}" if isinstance(value, Decimal) else value,
            reward_name=lambda r: (r.name_zh or r.name) if self.locale == "zh_CN" else r.name,
            **layout,
            **values,
        )
        response = HTMLResponse(body, status_code=status)
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        self._remember_language(response)
        return response

    def _layout(self) -> dict[str, Any]:
        """The organisation, signed-in person and staff flag the header shows."""
        found: dict[str, Any] = {"organisation": None, "me": None, "is_staff": False}
        if self.org is None:
            return found
        with self.ctx.kit.begin(org=self.org, actor=self.ctx.actor, locale=self.locale) as tx:
            found["organisation"] = tx.tenancy.organisation()
            if self.actor is not None and self.is_member(tx):
                found["me"] = tx.registration.get_user(self.actor)
                found["is_staff"] = tx.can("volunteer.view")
        return found

    def redirect(self, url: str, flash: str | None = None, **params: Any) -> RedirectResponse:
        """303 to ``url``, with a message (an English catalogue id) for the next page."""
        response = RedirectResponse(url, status_code=303)
        if flash is not None:
            value = json.dumps({"m": flash, "p": {k: str(v) for k, v in params.items()}})
            response.set_cookie(
                FLASH_COOKIE,
                quote(value),
                max_age=60,
                httponly=True,
                samesite="lax",
                secure=bool(self.request.app.state.secure_cookies),
                path="/",
            )
        self._remember_language(response)
        return response

    def _remember_language(self, response: Response) -> None:
        chosen = chosen_language(self.request)
        if chosen is not None:
            response.set_cookie(
                LANG_COOKIE,
                "zh" if chosen == "zh_CN" else "en",
                max_age=365 * 24 * 3600,
                httponly=True,
                samesite="lax",
                secure=bool(self.request.app.state.secure_cookies),
                path="/",
            )

    def message(self, error: NgoKitError) -> str:
        """The kit's error in the page's language, as a client may see it (a database
        driver's text stays in the server log, as in the API's problem documents)."""
        return public_message(error, self.locale)

    def field_errors(self, error: NgoKitError) -> dict[str, str]:
        """Each invalid field's message in the page's language, by the field's top-level name
        (none unless ``error`` is a ``ValidationFailed``)."""
        found: dict[str, str] = {}
        if not isinstance(error, errors.ValidationFailed):
            return found
        for item in error.errors:
            name = item.field.split(".")[0]
            found.setdefault(name, item.message_in(self.locale))
        return found


def blank_to_none(value: str) -> str | None:
    """A form field with its spaces trimmed, ``None`` when nothing is left (optional fields)."""
    value = value.strip()
    return value or None


def _read_flash(raw: str | None, _: Any) -> str | None:
    if not raw:
        return None
    from urllib.parse import unquote

    try:
        data = json.loads(unquote(raw))
        return str(_(str(data["m"]), **dict(data.get("p") or {})))
    except (ValueError, KeyError, TypeError):
        return None


def error_page(request: Request, error: NgoKitError) -> Response:
    """An error as an HTML page in the page's language; sign-in needed becomes a redirect."""
    org = request.path_params.get("org")
    if isinstance(error, AuthenticationRequired) and org:
        target = f"/o/{org}/sign-in?next={quote(request.url.path)}"
        return RedirectResponse(target, status_code=303)
    page = Page(request, None)
    _ = page._
    status = status_of(error)
    if isinstance(error, CsrfRefused):
        title = _("The form was refused")
    elif isinstance(error, errors.PermissionDenied):
        title = _("You are not allowed to see this page")
    elif isinstance(error, errors.NotFound):
        title = _("Not found")
    else:
        title = _("Something went wrong")
    return page.render(
        "error.html",
        status=status,
        title=title,
        detail=page.message(error),
        code=error.code,
        home=f"/o/{org}/" if org else "/",
    )
