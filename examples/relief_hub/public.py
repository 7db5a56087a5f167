"""Pages for the public and for volunteers: organisations, registration, sign-in, shifts,
the volunteer's dashboard, rewards and the public transparency report.

Each route is a plain ``def`` (FastAPI runs it in its thread pool, so password hashing never
blocks the event loop), reads its form fields, calls services on ``tx`` and renders.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup

from ngo_kit import SYSTEM, errors
from ngo_kit.db import utcnow
from ngo_kit.modules.registration.errors import SignInFailed, TooManyAttempts
from ngo_kit.web import clear_session_cookie, client_key, set_session_cookie

from .charts import qr_svg, split_bar
from .pages import CSRF, HERE, N_, Field, Page, blank_to_none

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.volunteer.schemas import ProfileRead

router = APIRouter(include_in_schema=False)

#: Each form's inputs and their labels, in the form's order (errors name the label).
REGISTER_LABELS = {
    "display_name": N_("Your name"),
    "email": N_("Email address"),
    "phone": N_("Mobile phone number"),
    "password": N_("Password"),
    "consents": N_("Consent"),
}
VERIFY_LABELS = {"code": N_("6-digit code")}
SIGN_IN_LABELS = {"login": N_("Email address or mobile number"), "password": N_("Password")}
PROFILE_LABELS = {
    "city": N_("City"),
    "emergency_contact_name": N_("Emergency contact"),
    "emergency_contact_phone": N_("Emergency contact's phone"),
}
CLAIM_LABELS = {
    "served_on": N_("Date served"),
    "hours": N_("Hours served"),
    "description": N_("What you did"),
}
FAVICON = (HERE / "static" / "favicon.svg").read_bytes()
STYLES = (HERE / "static" / "relief_hub.css").read_bytes()


@router.get("/favicon.svg")
@router.get("/favicon.ico")
def favicon() -> Response:
    """The app's icon (an SVG; browsers that ask for ``/favicon.ico`` on their own get it too)."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/relief_hub.css")
def styles() -> Response:
    """The pages' styles (a file of their own: the Content-Security-Policy allows no inline style)."""
    return Response(
        STYLES, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/")
def organisations(request: Request) -> Response:
    """Every organisation on this deployment, each a link to its home page."""
    page = Page(request)
    with page.ctx.kit.begin(actor=SYSTEM, locale=page.locale) as tx:
        found = tx.tenancy.list_organisations()
    return page.render("index.html", organisations=found)


@router.get("/o/{org}/")
def home(request: Request, org: str) -> Response:
    """The organisation's home: what a visitor can do here."""
    page = Page(request, org)
    return page.render("home.html")


# --- registration, verification, sign-in ------------------------------------------------


@router.get("/o/{org}/register")
def register_form(request: Request, org: str) -> Response:
    """The registration form, with the organisation's consent documents."""
    page = Page(request, org)
    with page.begin() as tx:
        documents = tx.registration.consent_documents()
    return page.render("register.html", documents=documents)


@router.post("/o/{org}/register", dependencies=CSRF)
def register(
    request: Request,
    org: str,
    display_name: Field = "",
    email: Field = "",
    phone: Field = "",
    password: Field = "",
    consent: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create the account, sign it in, and send the phone code (registration does) or the link.

    A taken email or phone is never named: the registration module answers as for a new
    sign-up and tells the account's holder. Signing in with this form's password then fails,
    and the page sends the person to sign in, as the message they were sent says.
    """
    page = Page(request, org)
    values = {"display_name": display_name, "email": email, "phone": phone}
    try:
        with page.begin() as tx:
            user = tx.registration.register(
                display_name=display_name,
                email=blank_to_none(email),
                phone=blank_to_none(phone),
                password=password,
                consents=consent or [],
                consent_method="relief_hub registration form",
            )
    except (errors.ValidationFailed, errors.Conflict) as refused:
        return page.refuse(page.url("register"), refused, values, REGISTER_LABELS)
    try:
        with page.begin() as tx:
            signed_in = tx.registration.authenticate(
                email=user.email,
                phone=None if user.email else user.phone,
                password=password,
                client=client_key(request),
            )
    except (SignInFailed, TooManyAttempts):
        return page.redirect(
            page.url("sign-in"), N_("Check your email or phone for what to do next, then sign in.")
        )
    if user.phone is not None:
        response = page.redirect(
            page.url("verify"), N_("Welcome! We sent a 6-digit code to your phone.")
        )
    else:
        response = page.redirect(
            page.url("me"), N_("Welcome! Check your email for the link that verifies it.")
        )
    set_session_cookie(response, request, signed_in.token, signed_in.expires_at)
    return response


@router.get("/o/{org}/verify")
def verify_form(request: Request, org: str) -> Response:
    """The form for the 6-digit code sent to the signed-in person's phone."""
    page = Page(request, org)
    page.require_actor()
    return page.render("verify.html")


@router.post("/o/{org}/verify", dependencies=CSRF)
def verify(request: Request, org: str, code: Field = "") -> Response:
    """Verify the phone number with the code (``verify_phone``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.registration.verify_phone(code.strip())
    except (errors.ValidationFailed, errors.TokenInvalid, errors.Conflict) as refused:
        return page.refuse(
            page.url("verify"), refused, labels=VERIFY_LABELS, about="code", status=422
        )
    return page.redirect(page.url("me"), N_("Your phone number is verified."))


@router.post("/o/{org}/verify/resend", dependencies=CSRF)
def resend_code(request: Request, org: str) -> Response:
    """Send a new verification code (``send_phone_code``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.registration.send_phone_code()
    except TooManyAttempts as refused:  # codes are throttled per number, account and client
        return page.refuse(page.url("verify"), refused, labels=VERIFY_LABELS, about="code")
    return page.redirect(page.url("verify"), N_("We sent a new code to your phone."))


@router.get("/o/{org}/verify-email")
def verify_email_form(request: Request, org: str, token: str = "") -> Response:
    """The page an email verification link opens: a button confirms (a GET never verifies,
    so a mail scanner that follows links confirms nothing); without ``token``, a form for it."""
    page = Page(request, org)
    return page.render("verify_email.html", values={"token": token.strip()})


@router.post("/o/{org}/verify-email", dependencies=CSRF)
def verify_email(request: Request, org: str, token: Field = "") -> Response:
    """Mark the email address verified (``verify_email``); no sign-in needed."""
    page = Page(request, org)
    try:
        with page.begin() as tx:
            tx.registration.verify_email(token.strip())
    except (errors.TokenInvalid, errors.NotFound) as refused:
        return page.refuse(
            page.url("verify-email"),
            refused,
            {"token": token.strip()},
            {"token": N_("The code from the email we sent you")},
            about="token",
            status=422,
        )
    target = page.url("me") if page.actor is not None else page.url("sign-in")
    return page.redirect(target, N_("Your email address is verified."))


@router.get("/o/{org}/sign-in")
def sign_in_form(request: Request, org: str, next: str = "") -> Response:
    """Sign in with an email address or phone number and a password."""
    page = Page(request, org)
    return page.render("sign_in.html", next=_safe_next(next, org))


@router.post("/o/{org}/sign-in", dependencies=CSRF)
def sign_in(
    request: Request, org: str, login: Field = "", password: Field = "", next: Field = ""
) -> Response:
    """Sign in (the same session cookie as the API's ``/sign-in``)."""
    page = Page(request, org)
    login = login.strip()
    by_email = "@" in login
    try:
        with page.begin() as tx:
            signed_in = tx.registration.authenticate(
                email=login if by_email else None,
                phone=None if by_email else (login or None),
                password=password,
                client=client_key(request),
            )
    except errors.NgoKitError as refused:
        if isinstance(refused, errors.ConfigurationError):
            raise
        target = _safe_next(next, org)
        form = page.url("sign-in") + (f"?{urlencode({'next': target})}" if target else "")
        return page.refuse(form, refused, {"login": login}, SIGN_IN_LABELS)
    response = page.redirect(_safe_next(next, org) or page.url("me"), N_("You are signed in."))
    set_session_cookie(response, request, signed_in.token, signed_in.expires_at)
    return response


@router.get("/o/{org}/forgot-password")
def forgot_password_form(request: Request, org: str) -> Response:
    """Ask for a link to choose a new password."""
    return Page(request, org).render("forgot_password.html")


@router.post("/o/{org}/forgot-password", dependencies=CSRF)
def forgot_password(request: Request, org: str, login: Field = "") -> Response:
    """Send a reset link (``request_password_reset``); the answer never says whether an
    account has the address or number."""
    page = Page(request, org)
    login = login.strip()
    by_email = "@" in login
    try:
        with page.begin() as tx:
            tx.registration.request_password_reset(
                email=login if by_email else None,
                phone=None if by_email else (login or None),
                client=client_key(request),
            )
    except (errors.ValidationFailed, TooManyAttempts) as refused:
        return page.refuse(
            page.url("forgot-password"),
            refused,
            {"login": login},
            {"login": N_("Email address or mobile number")},
            {"email": "login", "phone": "login"},
            about="login",
        )
    return page.redirect(
        page.url("sign-in"),
        N_("If an account has this address or number, we sent it a link to choose a new password."),
    )


@router.get("/o/{org}/reset-password")
def reset_password_form(request: Request, org: str, token: str = "") -> Response:
    """The page a reset link opens: choose a new password."""
    page = Page(request, org)
    return page.render("reset_password.html", token=token.strip())


@router.post("/o/{org}/reset-password", dependencies=CSRF)
def reset_password(request: Request, org: str, token: Field = "", password: Field = "") -> Response:
    """Set the new password (``reset_password``): every session of the account ends."""
    page = Page(request, org)
    try:
        with page.begin() as tx:
            tx.registration.reset_password(token.strip(), password)
    except (errors.ValidationFailed, errors.TokenInvalid, errors.NotFound) as refused:
        form = page.url("reset-password") + f"?{urlencode({'token': token.strip()})}"
        return page.refuse(
            form, refused, labels={"password": N_("New password")}, about="password", status=422
        )
    return page.redirect(page.url("sign-in"), N_("Your password is changed. Sign in with it."))


def _safe_next(target: str, org: str) -> str:
    """Only paths inside this organisation's pages: never another site."""
    return target if target.startswith(f"/o/{org}/") and "//" not in target[1:] else ""


@router.post("/o/{org}/sign-out", dependencies=CSRF)
def sign_out(request: Request, org: str) -> Response:
    """End this session and clear the cookie."""
    page = Page(request, org)
    if page.ctx.token is not None and page.actor is not None:
        with page.ctx.kit.begin(org=org, actor=page.actor, locale=page.locale) as tx:
            tx.registration.sign_out(page.ctx.token)
    response = page.redirect(page.url(), N_("You are signed out."))
    clear_session_cookie(response)
    return response


# --- shifts and the volunteer profile ----------------------------------------------------


def _shifts_page(page: Page) -> Response:
    with page.begin() as tx:
        upcoming = tx.volunteer.shifts(starts_after=utcnow(), open_only=True)
        activities = {a.id: a for a in tx.volunteer.activities()}
        profile, mine = None, {}
        if page.is_member(tx):
            profile = _own_profile(tx)
            mine = {s.shift_id: s for s in tx.volunteer.my_signups()}
    return page.render(
        "shifts.html",
        shifts=upcoming,
        activities=activities,
        profile=profile,
        mine=mine,
    )


def _own_profile(tx: Context) -> ProfileRead | None:
    """The signed-in member's volunteer profile, or ``None`` before they become a volunteer."""
    try:
        profile: ProfileRead = tx.volunteer.profile()
    except errors.NotFound:
        return None
    return profile


@router.get("/o/{org}/shifts")
def shifts(request: Request, org: str) -> Response:
    """Upcoming open shifts; signed-in volunteers sign up here."""
    return _shifts_page(Page(request, org))


@router.post("/o/{org}/profile", dependencies=CSRF)
def save_profile(
    request: Request,
    org: str,
    city: Field = "",
    emergency_contact_name: Field = "",
    emergency_contact_phone: Field = "",
) -> Response:
    """Become a volunteer: create (or update) the signed-in member's profile (``save_profile``)."""
    page = Page(request, org)
    actor = page.require_actor()
    try:
        with page.begin() as tx:
            tx.volunteer.save_profile(
                user_id=actor,
                city=city.strip(),
                emergency_contact_name=emergency_contact_name.strip(),
                emergency_contact_phone=emergency_contact_phone.strip(),
            )
    except errors.ValidationFailed as refused:
        values = {
            "city": city,
            "emergency_contact_name": emergency_contact_name,
            "emergency_contact_phone": emergency_contact_phone,
        }
        return page.refuse(page.url("shifts"), refused, values, PROFILE_LABELS)
    return page.redirect(
        page.url("shifts"), N_("Thank you! Staff will approve your volunteer profile soon.")
    )


@router.post("/o/{org}/shifts/{shift_id}/sign-up", dependencies=CSRF)
def sign_up(request: Request, org: str, shift_id: uuid.UUID) -> Response:
    """Take a place on the shift, or a waitlist place when it is full (``sign_up``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            signup = tx.volunteer.sign_up(shift_id)
    except (errors.Conflict, errors.ValidationFailed, errors.NotFound) as refused:
        return page.refuse(page.url("shifts"), refused)
    if signup.status == "waitlisted":
        return page.redirect(
            page.url("shifts"),
            N_("The shift is full: you are number {position} on the waitlist."),
            position=signup.position or "",
        )
    return page.redirect(page.url("shifts"), N_("You are signed up. See you there!"))


@router.post("/o/{org}/shifts/{shift_id}/cancel", dependencies=CSRF)
def cancel(request: Request, org: str, shift_id: uuid.UUID) -> Response:
    """Give the place back (``cancel``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.volunteer.cancel(shift_id)
    except (errors.Conflict, errors.NotFound) as refused:
        return page.refuse(page.url("shifts"), refused)
    return page.redirect(page.url("shifts"), N_("Your place is cancelled."))


# --- the volunteer's dashboard -----------------------------------------------------------


def _dashboard(page: Page) -> Response:
    actor = page.require_actor()
    with page.begin() as tx:
        standing = tx.points.standing(actor)
        names = {b.id: b for b in tx.points.badges()}
        badges = [names[a.badge_id] for a in tx.points.member_badges(actor) if a.badge_id in names]
        profile = _own_profile(tx)
        places = []
        for signup in tx.volunteer.my_signups() if profile is not None else []:
            shift = tx.volunteer.shift(signup.shift_id)
            link = qr = None
            if signup.status == "confirmed":
                link, qr = _check_in_pass(page, tx, signup.shift_id)
            places.append({"signup": signup, "shift": shift, "link": link, "qr": qr})
        activities = {a.id: a for a in tx.volunteer.activities()}
        certificates = tx.volunteer.certificates() if profile is not None else []
        hours = tx.volunteer.hours() if profile is not None else []
    return page.render(
        "me.html",
        standing=standing,
        badges=badges,
        profile=profile,
        places=places,
        activities=activities,
        certificates=certificates,
        hours=hours,
    )


def _check_in_pass(page: Page, tx: Context, shift_id: uuid.UUID) -> tuple[str, Markup]:
    """The staff check-in address of my pass for the shift, and its QR code (staff scan it)."""
    token = tx.volunteer.checkin_pass(shift_id)
    base = str(page.request.base_url).rstrip("/")
    link = f"{base}{page.url('staff/check-in')}?{urlencode({'token': token})}"
    return link, qr_svg(link, page._("Check-in pass QR code"))


@router.get("/o/{org}/me/passes/{shift_id}")
def check_in_pass(request: Request, org: str, shift_id: uuid.UUID) -> Response:
    """My check-in pass for a shift, to show at the door: its QR code opens staff's check-in."""
    page = Page(request, org)
    page.require_actor()
    with page.begin() as tx:
        mine = {s.shift_id: s for s in tx.volunteer.my_signups()}
        signup = mine.get(shift_id)
        if signup is None or signup.status != "confirmed":
            raise errors.NotFound("Shift", shift_id)
        shift = tx.volunteer.shift(shift_id)
        activity = tx.volunteer.activity(shift.activity_id)
        link, qr = _check_in_pass(page, tx, shift_id)
    return page.render("pass.html", signup=signup, shift=shift, activity=activity, link=link, qr=qr)


@router.get("/o/{org}/me")
def me(request: Request, org: str) -> Response:
    """My places with their check-in passes, hours, points, badges and certificates."""
    return _dashboard(Page(request, org))


@router.post("/o/{org}/me/claims", dependencies=CSRF)
def claim_hours(
    request: Request, org: str, served_on: Field = "", hours: Field = "", description: Field = ""
) -> Response:
    """Report hours served outside a shift, for staff to approve (``claim_hours``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.volunteer.claim_hours(
                served_on=served_on.strip(), hours=hours.strip(), description=description.strip()
            )
    except (errors.ValidationFailed, errors.NotFound) as refused:
        values = {"served_on": served_on, "hours": hours, "description": description}
        return page.refuse(page.url("me"), refused, values, CLAIM_LABELS)
    return page.redirect(page.url("me"), N_("Your hours are reported; staff will review them."))


@router.post("/o/{org}/me/certificates", dependencies=CSRF)
def request_certificate(request: Request, org: str) -> Response:
    """A certificate of service hours for my approved hours (``issue_certificate``)."""
    page = Page(request, org)
    actor = page.require_actor()
    try:
        with page.begin() as tx:
            tx.volunteer.issue_certificate(actor)
    except (errors.PermissionDenied, errors.NotFound) as refused:
        return page.refuse(page.url("me"), refused)
    return page.redirect(page.url("me"), N_("Your certificate is ready to download."))


@router.get("/o/{org}/me/certificates/{certificate_id}.pdf")
def certificate_pdf(request: Request, org: str, certificate_id: uuid.UUID) -> Response:
    """The certificate as a PDF (``certificate_pdf``)."""
    page = Page(request, org)
    page.require_actor()
    with page.begin() as tx:
        pdf = tx.volunteer.certificate_pdf(certificate_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-{certificate_id}.pdf"'},
    )


# --- rewards -------------------------------------------------------------------------------


def _rewards_page(page: Page) -> Response:
    with page.begin() as tx:
        rewards = tx.points.rewards(available_only=True)
        balance, redemptions = None, []
        if page.actor is not None and page.is_member(tx):
            balance = tx.points.balance(page.actor)
            redemptions = tx.points.redemptions(member_id=page.actor)
        catalogue = {r.id: r for r in tx.points.rewards()}
        left = _left(tx, rewards)
    return page.render(
        "rewards.html",
        rewards=rewards,
        left=left,
        catalogue=catalogue,
        balance=balance,
        redemptions=redemptions,
    )


def _left(tx: Any, rewards: list[Any]) -> dict[uuid.UUID, int | None]:
    """How many of each reward can still be redeemed (``None``: no limit): the catalogue's
    own count, or what the linked stock covers (``rewards_stock.available``), the smaller."""
    left: dict[uuid.UUID, int | None] = {}
    for reward in rewards:
        counts = [n for n in (reward.stock, tx.rewards_stock.available(reward.id)) if n is not None]
        left[reward.id] = min(counts) if counts else None
    return left


@router.get("/o/{org}/rewards")
def rewards(request: Request, org: str) -> Response:
    """The rewards catalogue and my redemptions."""
    return _rewards_page(Page(request, org))


@router.get("/o/{org}/rewards/{reward_id}/redeem")
def confirm_redeem(request: Request, org: str, reward_id: uuid.UUID) -> Response:
    """The step before spending points: the reward, its price and the balance after."""
    page = Page(request, org)
    actor = page.require_actor()
    _ = page._
    with page.begin() as tx:
        reward = tx.points.reward(reward_id)
        balance = tx.points.balance(actor)
    name = page.item_name(reward)
    return page.render(
        "confirm.html",
        title=_("Redeem {reward}?", reward=name),
        action=page.url(f"rewards/{reward_id}/redeem"),
        hidden={"key": uuid.uuid4().hex},
        lines=[
            _("It costs {price} points.", price=reward.price),
            _("Your balance: {balance} points.", balance=balance),
        ],
        warning=None,
        button=_("Redeem"),
        testid="confirm-redeem",
        back=page.url("rewards"),
    )


@router.post("/o/{org}/rewards/{reward_id}/redeem", dependencies=CSRF)
def redeem(request: Request, org: str, reward_id: uuid.UUID, key: Field = "") -> Response:
    """Redeem a reward with my points (``redeem``); the form's key makes a double submit safe."""
    page = Page(request, org)
    actor = page.require_actor()
    try:
        with page.begin() as tx:
            redemption = tx.points.redeem(
                reward_id=reward_id, member_id=actor, key=f"relief_hub:{key}" if key else None
            )
    except (errors.Conflict, errors.ValidationFailed, errors.NotFound) as refused:
        return page.refuse(page.url("rewards"), refused)
    if redemption.status == "fulfilled":
        return page.redirect(page.url("rewards"), N_("Redeemed! Your reward is on its way."))
    return page.redirect(
        page.url("rewards"), N_("Redeemed! Staff will hand your reward over soon.")
    )


# --- public transparency -----------------------------------------------------------------


@router.get("/o/{org}/transparency")
def transparency(request: Request, org: str) -> Response:
    """PUBLIC: where each donation's goods went (donor-facing trace reports), no sign-in."""
    page = Page(request, org)
    _ = page._
    reports = []
    with page.begin() as tx:
        items = {i.code: i for i in _public_items(tx)}
        for donation in tx.inventory.donations():
            report = tx.inventory.trace_donation(donation.donation, donor_facing=True)
            groups: dict[str, Decimal] = {}
            for line in report.lines:
                group = line.recipient_kind or line.destination
                groups[group] = groups.get(group, Decimal(0)) + line.quantity
            parts = [
                (_("Distributed"), report.distributed),
                (_("On hand"), report.on_hand),
                (_("Scrapped"), report.scrapped),
                (_("Returned"), report.returned),
            ]
            chart = split_bar(
                [(label, value) for label, value in parts if value],  # no "Scrapped: 0"
                testid=f"chart-{donation.donation}",
                title=_("Where donation {ref} went", ref=donation.donation),
                colon=page.colon,
            )
            goods = sorted({line.item_code for line in report.lines})
            reports.append(
                {
                    "donation": donation,
                    "report": report,
                    "groups": {g: q for g, q in groups.items() if q},
                    "chart": chart,
                    "goods": [page.item_name(items[c]) for c in goods if c in items],
                }
            )
    return page.render("transparency.html", reports=reports)


def _public_items(tx: Any) -> list[Any]:
    """The catalogue's names for the report, when the reader may see the catalogue."""
    try:
        return list(tx.inventory.items())
    except errors.PermissionDenied:
        return []
