"""Staff pages: dashboard with charts, check-in, receiving and issuing goods, hours, shifts,
volunteers and redemptions.

Every page needs the organisation's staff permissions. The services check them; each page
also asks for the permission of the work it shows before reading anything, so a volunteer
gets a clear 403 page in the page's language rather than half a page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ngo_kit import errors
from ngo_kit.context import Context
from ngo_kit.db import utcnow
from ngo_kit.web import status_of

from .charts import bar_chart
from .pages import CSRF, N_, Field, Page, blank_to_none

router = APIRouter(prefix="/o/{org}/staff", include_in_schema=False)

#: Each form's inputs and their labels, in the form's order (errors name the label).
GOODS_LABELS = {
    "item": N_("Item"),
    "quantity": N_("Quantity"),
    "location": N_("Location"),
    "donor": N_("Donor"),
    "donation": N_("Donation reference"),
    "lot": N_("Lot (for items tracked by lot)"),
    "expires_on": N_("Expiry date (optional)"),
    "recipient": N_("Recipient"),
    "recipient_kind": N_("Recipient group"),
}
#: The goods services' names for the location input.
GOODS_INPUTS = {"to": "location", "from_": "location", "from": "location"}
SHIFT_LABELS = {
    "activity_id": N_("Activity"),
    "starts_at": N_("Starts"),
    "ends_at": N_("Ends"),
    "capacity": N_("Places"),
    "place": N_("Where"),
}
ACTIVITY_LABELS = {"title": N_("Title"), "activity_place": N_("Where")}


# --- dashboard -----------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, org: str) -> Response:
    """Stock on hand by item, hours by month and by activity, points awarded vs redeemed."""
    page = Page(request, org)
    _ = page._
    with page.begin(require="inventory.view") as tx:
        stock: dict[str, Decimal] = {}
        for line in tx.inventory.stock_on_hand():
            stock[line.item_code] = stock.get(line.item_code, Decimal(0)) + line.quantity
        names = {
            i.code: i.name_zh or i.name if page.locale == "zh_CN" else i.name
            for i in tx.inventory.items()
        }
        by_month = tx.volunteer.hours_report(by="month")
        by_activity = tx.volunteer.hours_report(by="activity")
        titles = {str(a.id): a.title for a in tx.volunteer.activities()}
        # Points earned by members in all (the leaderboard's all-time totals) against points
        # spent on redemptions that were not cancelled.
        awarded = sum(row.points for row in tx.points.leaderboard("all", limit=500))
        redeemed = sum(
            r.points for r in tx.points.redemptions(limit=500) if r.status != "cancelled"
        )
    charts = {
        "stock": bar_chart(
            [(names.get(code, code), qty) for code, qty in sorted(stock.items())],
            testid="chart-stock",
            title=_("Stock on hand by item"),
            colon=page.colon,
        ),
        "hours_month": bar_chart(
            [(str(r["month"]), r["hours"]) for r in by_month],
            testid="chart-hours",
            title=_("Approved hours by month"),
            colon=page.colon,
        ),
        "hours_activity": bar_chart(
            [(titles.get(str(r["activity"]), _("Other")), r["hours"]) for r in by_activity],
            testid="chart-hours-activity",
            title=_("Approved hours by activity"),
            colon=page.colon,
        ),
        "points": bar_chart(
            [(_("Awarded"), awarded), (_("Redeemed"), redeemed)],
            testid="chart-points",
            title=_("Points awarded and redeemed"),
            colon=page.colon,
        ),
    }
    return page.render("staff/dashboard.html", charts=charts)


# --- check-in ----------------------------------------------------------------------------


def _check_in_page(page: Page, token: str) -> Response:
    found: dict[str, Any] = {}
    refused: errors.NgoKitError | None = None
    today = page.when(utcnow())[:10]
    with page.begin(require="attendance.record") as tx:
        roster = _todays_rosters(page, tx, today)
        if token:
            try:
                signup = tx.volunteer.read_pass(token)
            except (errors.TokenInvalid, errors.NotFound) as unreadable:
                refused = unreadable
            else:
                shift = tx.volunteer.shift(signup.shift_id)
                found = {
                    "signup": signup,
                    "shift": shift,
                    "activity": tx.volunteer.activity(shift.activity_id),
                    "person": tx.registration.get_user(signup.user_id),
                }
    if refused is not None:
        return page.render(
            "staff/check_in.html",
            status=status_of(refused),
            error=page.message(refused),
            roster=roster,
        )
    if found:
        found["today"] = page.when(found["shift"].starts_at)[:10] == today
    return page.render("staff/check_in.html", token=token, roster=roster, **found)


def _todays_rosters(page: Page, tx: Context, today: str) -> list[dict[str, Any]]:
    """Today's open shifts (``today`` in the organisation's time zone), each with its confirmed
    people, for checking in by name someone who has no pass at hand (for those who may see
    rosters: ``volunteer.view``)."""
    if not tx.can("volunteer.view"):
        return []
    shifts = [
        s for s in tx.volunteer.shifts(open_only=True) if page.when(s.starts_at)[:10] == today
    ]
    rosters = []
    for shift in shifts:
        signups = tx.volunteer.signups(shift.id, status="confirmed")
        people = tx.registration.users([s.user_id for s in signups])
        rosters.append(
            {
                "shift": shift,
                "activity": tx.volunteer.activity(shift.activity_id),
                "people": [(s, people.get(s.user_id)) for s in signups],
            }
        )
    return rosters


@router.post("/shifts/{shift_id}/check-in/{user_id}", dependencies=CSRF)
def check_in_by_name(
    request: Request, org: str, shift_id: uuid.UUID, user_id: uuid.UUID
) -> Response:
    """Check in someone on today's roster by name (``check_in``), without their pass."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            signup = tx.volunteer.check_in(shift_id, user_id)
            person = tx.registration.get_user(signup.user_id)
    except (errors.NotFound, errors.Conflict, errors.ValidationFailed) as refused:
        return page.refuse(page.url("staff/check-in"), refused)
    return page.redirect(
        page.url("staff/check-in"), N_("{name} is checked in."), name=person.display_name
    )


@router.get("/check-in")
def check_in_form(request: Request, org: str, token: str = "") -> Response:
    """The page a volunteer's QR code opens: who, which shift, and a confirm button."""
    return _check_in_page(Page(request, org), token.strip())


@router.post("/check-in", dependencies=CSRF)
def check_in(request: Request, org: str, token: Field = "") -> Response:
    """Check the pass holder in (``check_in_with_pass``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            signup = tx.volunteer.check_in_with_pass(token.strip())
            person = tx.registration.get_user(signup.user_id)
    except (errors.TokenInvalid, errors.NotFound, errors.Conflict) as refused:
        return page.refuse(page.url("staff/check-in"), refused)
    return page.redirect(
        page.url("staff/check-in"), N_("{name} is checked in."), name=person.display_name
    )


# --- goods in and out --------------------------------------------------------------------


def _goods_page(page: Page, template: str) -> Response:
    with page.begin(require="inventory.view") as tx:
        items = tx.inventory.items()
        every_location = tx.inventory.locations()
        locations = [loc for loc in every_location if loc.kind == "internal"]
        stock = tx.inventory.stock_on_hand()
    return page.render(
        template,
        items=items,
        locations=locations,
        stock=stock,
        catalogue={i.code: i for i in items},
        places={loc.code: loc.name for loc in every_location},
    )


def _move_goods(
    page: Page, path: str, values: dict[str, str], move: Callable[[Context], object], done: str
) -> Response:
    """A stock movement from the staff form at ``path``: refused input shows the form again
    with what was typed and the errors by field; success goes back to it saying ``done``."""
    page.require_actor()
    try:
        with page.begin() as tx:
            move(tx)
            item = _item(tx, values["item"])
    except (errors.ValidationFailed, errors.NotFound, errors.Conflict) as refused:
        message = None
        if isinstance(refused, errors.InsufficientStock):
            with page.begin() as tx:
                item = _item(tx, values["item"])
            message = page._(
                "Not enough {item} in stock: {requested} asked for, {available} on hand.",
                item=page.item_name(item) if item else values["item"],
                requested=page.amount(refused.params["requested"], item.unit if item else ""),
                available=page.amount(refused.params["available"], item.unit if item else ""),
            )
        return page.refuse(
            page.url(path), refused, values, GOODS_LABELS, GOODS_INPUTS, message=message
        )
    return page.redirect(
        page.url(path),
        done,
        quantity=page.amount(values["quantity"].strip(), item.unit if item else "piece"),
        item=page.item_name(item) if item else values["item"],
    )


def _item(tx: Context, code: str) -> Any:
    """The catalogue item with ``code``, or ``None``."""
    return next((i for i in tx.inventory.items() if i.code == code.strip()), None)


@router.get("/donations")
def receive_form(request: Request, org: str) -> Response:
    """The form for goods that arrive from a donor."""
    return _goods_page(Page(request, org), "staff/donations.html")


@router.post("/donations", dependencies=CSRF)
def receive(
    request: Request,
    org: str,
    item: Field = "",
    quantity: Field = "",
    location: Field = "",
    donor: Field = "",
    donation: Field = "",
    lot: Field = "",
    expires_on: Field = "",
) -> Response:
    """Receive goods (``receive``): stock goes up, the donation can be traced."""
    values = {
        "item": item,
        "quantity": quantity,
        "location": location,
        "donor": donor,
        "donation": donation,
        "lot": lot,
        "expires_on": expires_on,
    }
    return _move_goods(
        Page(request, org),
        "staff/donations",
        values,
        lambda tx: tx.inventory.receive(
            item=item.strip(),
            quantity=quantity.strip(),
            to=location.strip(),
            donor=blank_to_none(donor),
            donation=blank_to_none(donation),
            lot=blank_to_none(lot),
            expires_on=blank_to_none(expires_on),
        ),
        N_("Received {quantity} × {item}."),
    )


@router.get("/issue")
def issue_form(request: Request, org: str) -> Response:
    """The form for goods given out."""
    return _goods_page(Page(request, org), "staff/issue.html")


@router.post("/issue", dependencies=CSRF)
def issue(
    request: Request,
    org: str,
    item: Field = "",
    quantity: Field = "",
    location: Field = "",
    recipient: Field = "",
    recipient_kind: Field = "beneficiary",
) -> Response:
    """Issue goods (``issue``): too little stock is refused and nothing moves."""
    values = {
        "item": item,
        "quantity": quantity,
        "location": location,
        "recipient": recipient,
        "recipient_kind": recipient_kind,
    }
    return _move_goods(
        Page(request, org),
        "staff/issue",
        values,
        lambda tx: tx.inventory.issue(
            item=item.strip(),
            quantity=quantity.strip(),
            from_=location.strip(),
            recipient=recipient.strip(),
            recipient_kind=recipient_kind.strip() or "beneficiary",
        ),
        N_("Issued {quantity} × {item}."),
    )


# --- hours ---------------------------------------------------------------------------------


def _hours_page(page: Page) -> Response:
    with page.begin(require="hours.approve") as tx:
        shifts = tx.volunteer.shifts(open_only=True)
        activities = {a.id: a for a in tx.volunteer.activities()}
        claims = tx.volunteer.claims()
        people = tx.registration.users([c.user_id for c in claims])
    return page.render(
        "staff/hours.html",
        shifts=shifts,
        activities=activities,
        claims=claims,
        people=people,
    )


@router.get("/hours")
def hours(request: Request, org: str) -> Response:
    """Shifts to close and hours claims waiting for approval."""
    return _hours_page(Page(request, org))


@router.get("/shifts/{shift_id}/complete")
def confirm_complete_shift(request: Request, org: str, shift_id: uuid.UUID) -> Response:
    """The step before closing a shift: what completing does, and a warning when the shift
    has not ended yet (everyone not checked in would be marked as not having come)."""
    page = Page(request, org)
    _ = page._
    with page.begin(require="hours.approve") as tx:
        shift = tx.volunteer.shift(shift_id)
        activity = tx.volunteer.activity(shift.activity_id)
        checked_in = [
            s for s in tx.volunteer.signups(shift_id, status="confirmed") if s.checked_in_at
        ]
    ended = shift.ends_at <= utcnow()
    return page.render(
        "confirm.html",
        title=_("Complete this shift?"),
        action=page.url(f"staff/shifts/{shift_id}/complete"),
        hidden={},
        lines=[
            f"{activity.title} · {page.when(shift.starts_at)}",
            _("{checked_in} of {taken} checked in.", checked_in=len(checked_in), taken=shift.taken),
        ],
        warning=None
        if ended
        else _("This shift has not ended yet: it ends {end}.", end=page.when(shift.ends_at)),
        button=_("Complete the shift"),
        testid="confirm-complete",
        back=page.url("staff/hours"),
    )


@router.post("/shifts/{shift_id}/complete", dependencies=CSRF)
def complete_shift(request: Request, org: str, shift_id: uuid.UUID) -> Response:
    """Close a shift (``complete_shift``): hours enter the ledger and earn points."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            done = tx.volunteer.complete_shift(shift_id)
    except (errors.Conflict, errors.NotFound) as refused:
        return page.refuse(page.url("staff/hours"), refused)
    return page.redirect(
        page.url("staff/hours"),
        N_("Shift completed: {attended} attended, {no_shows} did not come."),
        attended=len(done.attended),
        no_shows=len(done.no_shows),
    )


@router.post("/claims/{claim_id}/approve", dependencies=CSRF)
def approve_claim(request: Request, org: str, claim_id: uuid.UUID) -> Response:
    """Approve a claim (``approve_claim``): its hours earn points through ``hours_points``."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            entry = tx.volunteer.approve_claim(claim_id)
    except (errors.Conflict, errors.NotFound, errors.PermissionDenied) as refused:
        return page.refuse(page.url("staff/hours"), refused)
    return page.redirect(
        page.url("staff/hours"), N_("Approved {hours} hours."), hours=f"{entry.hours.normalize():f}"
    )


@router.post("/claims/{claim_id}/reject", dependencies=CSRF)
def reject_claim(request: Request, org: str, claim_id: uuid.UUID, reason: Field = "") -> Response:
    """Reject a claim with a reason (``reject_claim``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.volunteer.reject_claim(claim_id, reason=reason.strip() or "-")
    except (errors.Conflict, errors.NotFound, errors.ValidationFailed) as refused:
        return page.refuse(page.url("staff/hours"), refused)
    return page.redirect(page.url("staff/hours"), N_("The claim is rejected."))


# --- shifts and activities ---------------------------------------------------------------


def _shifts_page(page: Page) -> Response:
    with page.begin(require="shifts.manage") as tx:
        activities = tx.volunteer.activities()
        shifts = tx.volunteer.shifts(starts_after=utcnow().replace(hour=0, minute=0))
    return page.render(
        "staff/shifts.html",
        activities=activities,
        by_id={a.id: a for a in activities},
        shifts=shifts,
    )


@router.get("/shifts")
def shifts(request: Request, org: str) -> Response:
    """Shifts from today on, and the forms to add activities and shifts."""
    return _shifts_page(Page(request, org))


@router.post("/shifts", dependencies=CSRF)
def create_shift(
    request: Request,
    org: str,
    activity_id: Field = "",
    starts_at: Field = "",
    ends_at: Field = "",
    capacity: Field = "",
    place: Field = "",
) -> Response:
    """A new shift (``create_shift``); the times are read in the organisation's time zone."""
    page = Page(request, org)
    page.require_actor()
    values = {
        "activity_id": activity_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "capacity": capacity,
        "place": place,
    }
    try:
        with page.begin() as tx:
            tx.volunteer.create_shift(
                activity_id=activity_id.strip(),
                starts_at=starts_at.strip(),
                ends_at=ends_at.strip(),
                capacity=blank_to_none(capacity),
                place=place.strip(),
            )
    except (errors.ValidationFailed, errors.NotFound) as refused:
        return page.refuse(page.url("staff/shifts"), refused, values, SHIFT_LABELS)
    return page.redirect(page.url("staff/shifts"), N_("The shift is created."))


@router.post("/activities", dependencies=CSRF)
def create_activity(request: Request, org: str, title: Field = "", place: Field = "") -> Response:
    """A new activity (``create_activity``)."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.volunteer.create_activity(title=title.strip(), place=place.strip())
    except errors.ValidationFailed as refused:
        values = {"title": title, "activity_place": place}
        return page.refuse(
            page.url("staff/shifts"), refused, values, ACTIVITY_LABELS, {"place": "activity_place"}
        )
    return page.redirect(page.url("staff/shifts"), N_("The activity is created."))


# --- volunteers ------------------------------------------------------------------------------


@router.get("/volunteers")
def volunteers(request: Request, org: str) -> Response:
    """Volunteer profiles waiting for approval."""
    page = Page(request, org)
    with page.begin(require="volunteer.manage") as tx:
        waiting = tx.volunteer.search(status="applicant", limit=200)
        people = tx.registration.users(waiting)
        profiles = [tx.volunteer.profile(user_id) for user_id in waiting]
    return page.render("staff/volunteers.html", profiles=profiles, people=people)


@router.post("/volunteers/{user_id}/approve", dependencies=CSRF)
def approve_volunteer(request: Request, org: str, user_id: uuid.UUID) -> Response:
    """Approve an applicant (``approve``): they can sign up for shifts."""
    page = Page(request, org)
    page.require_actor()
    with page.begin() as tx:
        profile = tx.volunteer.approve(user_id)
        person = tx.registration.get_user(profile.user_id)
    return page.redirect(
        page.url("staff/volunteers"), N_("{name} is approved."), name=person.display_name
    )


# --- redemptions ---------------------------------------------------------------------------


def _redemptions_page(page: Page) -> Response:
    with page.begin(require="rewards.fulfil") as tx:
        waiting = tx.points.redemptions(status="requested")
        catalogue = {r.id: r for r in tx.points.rewards()}
        people = tx.registration.users([r.member_id for r in waiting])
    return page.render(
        "staff/redemptions.html",
        redemptions=waiting,
        catalogue=catalogue,
        people=people,
    )


@router.get("/redemptions")
def redemptions(request: Request, org: str) -> Response:
    """Redemptions waiting to be handed over."""
    return _redemptions_page(Page(request, org))


@router.post("/redemptions/{redemption_id}/fulfil", dependencies=CSRF)
def fulfil(request: Request, org: str, redemption_id: uuid.UUID) -> Response:
    """Hand a reward over (``points.fulfil``): a stock-backed reward issues its goods through
    the rewards_stock plugin in the same transaction."""
    page = Page(request, org)
    page.require_actor()
    try:
        with page.begin() as tx:
            tx.points.fulfil(redemption_id)
    except (errors.Conflict, errors.NotFound) as refused:
        return page.refuse(page.url("staff/redemptions"), refused)
    return page.redirect(page.url("staff/redemptions"), N_("The reward is handed over."))
