"""What every page route shares: the request's language, kit context, templates and messages.

A route makes a ``Page`` from its request, opens units of work with ``page.begin()`` (the
signed-in account, the path's organisation and the page's language) and returns
``page.render(...)`` or ``page.redirect(...)``. Business rules stay in the services: a page
only turns form fields into service arguments and service answers into HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from ngo_kit import errors
from ngo_kit.context import Context
from ngo_kit.errors import LocalisedText, NgoKitError
from ngo_kit.tokens import tokens_for
from ngo_kit.web import (
    STATUS,
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
#: A refused form's errors and entered values, kept (signed) for the one page that shows them.
FORM_COOKIE = "relief_hub_form"
FORM_PURPOSE = "relief_hub.refused_form"
FORM_MAX_AGE = 120

TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")

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


#: How pages name the recipient groups the inventory records (``recipient_kind``).
RECIPIENT_GROUPS = {
    "beneficiary": N_("Beneficiaries"),
    "household": N_("Households"),
    "project": N_("Projects"),
    "activity": N_("Activities"),
    "site": N_("Sites"),
}


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
        #: An error page shows an address's unknown organisation as no organisation at all.
        self.unknown_org_ok = False
        self._found: dict[str, Any] | None = None

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

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """The template rendered in the page's language, with the layout's shared values.

        When the last POST to this path was refused (``refuse``), this one render shows its
        errors and the values entered, and answers with the refusal's status.
        """
        kept = self._kept_form()
        if kept is not None:
            status = int(kept["status"])
            values = {
                **values,
                "error": kept["error"],
                "errors": kept["errors"],
                "problems": kept["problems"],
                "values": {**values.get("values", {}), **kept["values"]},
            }
        values.setdefault("values", {})
        values.setdefault("errors", {})
        flash = self.request.cookies.get(FLASH_COOKIE)
        layout = self._layout()
        zone = layout["organisation"].zone if layout["organisation"] else dt.UTC
        body = TEMPLATES.get_template(template).render(
            _=self._,
            locale=self.locale,
            lang="zh" if self.locale == "zh_CN" else "en",
            other_lang="en" if self.locale == "zh_CN" else "zh",
            lang_url=self.language_url("en" if self.locale == "zh_CN" else "zh"),
            colon=self.colon,
            request=self.request,
            path=self.request.url.path,
            org_slug=self.org,
            csrf=lambda: csrf_field(self.request),
            flash=_read_flash(flash, self._),
            when=lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            number=lambda value: f"{value.normalize():f}" if isinstance(value, Decimal) else value,
            reward_name=lambda r: (r.name_zh or r.name) if self.locale == "zh_CN" else r.name,
            item_name=self.item_name,
            group_name=lambda kind: self._(RECIPIENT_GROUPS.get(kind, kind)),
            lang_of=self.lang_of,
            sentence=self.sentence,
            amount=self.amount,
            **layout,
            **values,
        )
        response = HTMLResponse(body, status_code=status)
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        if kept is not None:
            response.delete_cookie(FORM_COOKIE, path="/")
        self._remember_language(response)
        return response

    def when(self, moment: dt.datetime) -> str:
        """A moment in the organisation's time zone, as pages show it (reads the organisation
        once per request, in a transaction of its own: call it outside ``begin()``)."""
        layout = self._layout()
        zone = layout["organisation"].zone if layout["organisation"] else dt.UTC
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def lang_of(self, text: str | None) -> Markup:
        """A ``lang`` attribute for a name written in the page's other language (a Chinese
        name on an English page, an English one on a Chinese page), else nothing."""
        if not text:
            return Markup("")
        if self.locale != "zh_CN" and CJK.search(text):
            return Markup(' lang="zh-CN"')
        if self.locale == "zh_CN" and not CJK.search(text) and LATIN.search(text):
            return Markup(' lang="en"')
        return Markup("")

    def sentence(self, message: str, **parts: Markup | str) -> Markup:
        """A whole translated sentence with links (Markup) or words put into its
        ``{placeholders}``: the translator sees the sentence, not fragments of it."""
        return Markup(escape(self._(message))).format(**parts)

    def item_name(self, item: Any) -> str:
        """A catalogue item's (or reward's) name in the page's language."""
        chinese = getattr(item, "name_zh", None)
        return str(chinese) if self.locale == "zh_CN" and chinese else str(item.name)

    def amount(self, quantity: Decimal | str | int, unit: str = "piece") -> str:
        """A quantity without trailing zeros, followed by its unit unless it counts pieces
        ("95", "2.5 kg")."""
        number = Decimal(str(quantity)).normalize()
        text = f"{number:f}"
        return text if unit == "piece" else f"{text} {self._(unit)}"

    def language_url(self, lang: str) -> str:
        """This page in ``lang`` (``en`` or ``zh``): the same path and query, ``lang`` replaced."""
        query = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        return f"{self.request.url.path}?{urlencode([*query, ('lang', lang)])}"

    def refuse(
        self,
        url: str,
        refused: NgoKitError,
        values: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        inputs: dict[str, str] | None = None,
        about: str | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> RedirectResponse:
        """Post/Redirect/Get for a refused form: 303 to the form's page ``url``, which shows,
        once, the errors and the ``values`` entered (never a password).

        ``labels`` gives each input's label (an English catalogue id) by the input's name;
        ``inputs`` names the input of a service field that the form calls otherwise
        (``{"to": "location"}``). Each field's error reads "<label>: <rule>" in the page's
        language, beside its input and, linked to it, in the summary at the top. A refusal
        that names no field (a wrong code) goes beside the input ``about``, if given.
        ``status`` and ``message`` replace the refusal's own for the page that shows it.
        """
        field_errors, problems = self.field_errors(refused, labels or {}, inputs or {})
        if about is not None and not problems:
            field_errors = {about: self.message(refused)}
            problems = [(about, field_errors[about])]
        kept = {
            "path": urlsplit(url).path,
            "status": status or status_of(refused),
            "error": None if problems else message or self.message(refused),
            "errors": field_errors,
            "problems": problems,
            "values": values or {},
        }
        response = self.redirect(url)
        response.set_cookie(
            FORM_COOKIE,
            tokens_for(self.ctx.kit).sign(FORM_PURPOSE, kept),
            max_age=FORM_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=bool(self.request.app.state.secure_cookies),
            path="/",
        )
        return response

    def _kept_form(self) -> dict[str, Any] | None:
        """What ``refuse`` kept for this path, if anything (a forged or stale cookie is none)."""
        raw = self.request.cookies.get(FORM_COOKIE)
        if not raw:
            return None
        try:
            kept: Any = tokens_for(self.ctx.kit).load(FORM_PURPOSE, raw, max_age=FORM_MAX_AGE)
        except errors.TokenInvalid:
            return None
        if not isinstance(kept, dict) or kept.get("path") != self.request.url.path:
            return None
        return kept

    def _layout(self) -> dict[str, Any]:
        """The organisation, signed-in person and staff flag the header shows (no organisation
        when the path names none that exists)."""
        if self._found is not None:
            return self._found
        found: dict[str, Any] = {"organisation": None, "me": None, "is_staff": False}
        if self.org is None:
            return found
        try:
            with self.ctx.kit.begin(org=self.org, actor=self.ctx.actor, locale=self.locale) as tx:
                found["organisation"] = tx.tenancy.organisation()
                if self.actor is not None and self.is_member(tx):
                    found["me"] = tx.registration.get_user(self.actor)
                    found["is_staff"] = tx.can("volunteer.view")
        except errors.NotFound:
            if not self.unknown_org_ok:
                raise
            return {"organisation": None, "me": None, "is_staff": False}
        self._found = found
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
        driver's text stays in the server log, as in the API's problem documents); a missing
        permission is said in words, not by its code."""
        if type(error) is errors.PermissionDenied:
            return self._("You are not allowed to do this here.")
        return public_message(error, self.locale)

    def field_errors(
        self, error: NgoKitError, labels: dict[str, str], inputs: dict[str, str]
    ) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Every invalid field's message, "<label>: <rule>", by input name, and the same as
        (input, message) pairs in the order of the form (none unless ``error`` is a
        ``ValidationFailed``). A field the form has no label for keeps the kit's message."""
        found: dict[str, str] = {}
        if not isinstance(error, errors.ValidationFailed):
            return found, []
        for item in error.errors:
            top = item.field.split(".")[0]
            name = inputs.get(top, top)
            if name in found:
                continue
            reason = item.params.get("reason")
            if name in labels and isinstance(reason, LocalisedText):
                found[name] = self._(labels[name]) + self.colon + reason.in_locale(self.locale)
            else:
                found[name] = item.message_in(self.locale)
        order = list(labels)
        ranked = sorted(found, key=lambda n: order.index(n) if n in order else len(order))
        return found, [(name, found[name]) for name in ranked]

    @property
    def colon(self) -> str:
        """What follows a label: "余额：" in Chinese, "Balance: " in English."""
        return "：" if self.locale == "zh_CN" else ": "


def blank_to_none(value: str) -> str | None:
    """A form field with its spaces trimmed, ``None`` when nothing is left (optional fields)."""
    value = value.strip()
    return value or None


def _read_flash(raw: str | None, _: Any) -> str | None:
    if not raw:
        return None
    try:
        data = json.loads(unquote(raw))
        return str(_(str(data["m"]), **dict(data.get("p") or {})))
    except (ValueError, KeyError, TypeError):
        return None


def error_page(request: Request, error: NgoKitError) -> Response:
    """An error as an HTML page in the site's frame (the organisation's header, who is signed
    in) and the page's language; sign-in needed becomes a redirect to the sign-in page."""
    org = request.path_params.get("org") or _org_in(request.url.path)
    if isinstance(error, AuthenticationRequired) and org:
        target = f"/o/{org}/sign-in?next={quote(request.url.path)}"
        return RedirectResponse(target, status_code=303)
    page = Page(request, org)
    page.unknown_org_ok = True
    _ = page._
    status = status_of(error)
    detail = page.message(error)
    layout = page._layout()
    if isinstance(error, CsrfRefused):
        title = _("The form was refused")
    elif isinstance(error, errors.PermissionDenied):
        title = _("You are not allowed to see this page")
        detail = _("This page is for the organisation's staff.")
    elif isinstance(error, PageNotFound):
        title = _("Not found")
    elif isinstance(error, errors.NotFound) and layout["organisation"] and not layout["me"]:
        # The organisation is public (the start page lists it); saying that this person is
        # not one of its members tells nothing its home page does not.
        title = _("Not found")
        detail = _("This page is for members of {name}.", name=layout["organisation"].name)
        if page.actor is None:
            detail = _("Sign in to see this page.")
    elif isinstance(error, errors.NotFound):
        title = _("Not found")
    else:
        title = _("Something went wrong")
    return page.render(
        "error.html",
        status=status,
        title=title,
        error=detail,
        code=error.code,
        home=f"/o/{org}/" if layout["organisation"] else "/",
    )


def _org_in(path: str) -> str | None:
    """The organisation an address no route took names (``/o/<org>/...``), if any."""
    parts = path.split("/")
    return parts[2] if len(parts) > 3 and parts[1] == "o" and parts[2] else None


class PageNotFound(errors.NotFound):
    """No page at this address (an HTML 404 in the site's frame, not the API's JSON)."""

    code = "page_not_found"
    template = "There is no page at this address."


class PageMethodRefused(NgoKitError):
    """A page was asked for with a method it does not take (a form's address opened again)."""

    code = "method_not_allowed"
    template = "This address does not take that request. Open the page again from its link."


STATUS[PageMethodRefused] = 405
