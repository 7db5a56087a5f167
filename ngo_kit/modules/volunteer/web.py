"""HTTP routes of the volunteer module (the ``web`` extra): profiles, activities and shifts,
sign-up and cancellation, check-in with the shift's QR code or the volunteer's pass, hours and
their CSV/XLSX export, and certificates.

Mounted by ``ngo_kit.web.create_app`` under ``/api/orgs/{org}/volunteer``; the public
certificate check under ``/api/certificates`` (the certificate's token names its organisation).
Routes hold no business rule: each opens one unit of work and calls one method of
``tx.volunteer``, which checks the permissions.
"""

import datetime as dt
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from ngo_kit.context import Context
from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.plugins import Registrar
from ngo_kit.schemas import Day, InputModel, ReadModel, Text
from ngo_kit.web import AwareTime, RequestContext, Routes, request_context

from .schemas import (
    ActivityIn,
    ActivityRead,
    AttendanceRead,
    CertificateCheck,
    CertificateRead,
    HoursRead,
    ProfileIn,
    ProfileRead,
    ShiftIn,
    ShiftRead,
    SignUpRead,
)
from .service import VolunteerService

Ctx = Annotated[RequestContext, Depends(request_context)]
Key = Field(default=None, min_length=1, max_length=200)

#: The media types of the tables ``export_hours`` writes, by file suffix.
TABLE_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class SignUpBody(InputModel):
    """Take a place on a shift: ``user_id`` defaults to the signed-in volunteer."""

    user_id: uuid.UUID | None = None
    role: Text | None = Field(default=None, min_length=1, max_length=63)
    waitlist: bool = True
    key: Text | None = Key


class CancelBody(InputModel):
    """Give up a place: ``user_id`` defaults to the signed-in volunteer."""

    user_id: uuid.UUID | None = None
    reason: Text = Field(default="", max_length=500)


class CheckInBody(InputModel):
    """Check in: the volunteer with the shift's QR ``token``, or staff naming ``user_id``."""

    token: Text | None = Field(default=None, min_length=1, max_length=2000)
    user_id: uuid.UUID | None = None


class CertificateIn(InputModel):
    """A certificate of service hours for a volunteer and an optional period."""

    user_id: uuid.UUID
    period_from: Day | None = None
    period_to: Day | None = None


class CheckInToken(ReadModel):
    """The shift's check-in code, for the QR poster at the door."""

    shift_id: uuid.UUID
    token: str


def _volunteer(tx: Context) -> VolunteerService:
    """``tx.volunteer``, typed."""
    service: VolunteerService = tx.volunteer
    return service


def build_router() -> APIRouter:
    """The volunteer routes (relative to ``/api/orgs/{org}/volunteer``)."""
    router = APIRouter()

    @router.post("/profiles", status_code=201)
    def save_profile(body: ProfileIn, ctx: Ctx) -> ProfileRead:
        """Create or replace a volunteer profile (the member, or ``volunteer.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).save_profile(body)

    @router.get("/me/profile")
    def my_profile(ctx: Ctx) -> ProfileRead:
        """The signed-in volunteer's profile."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).profile(actor)

    @router.post("/profiles/{user_id}/approve")
    def approve(user_id: uuid.UUID, ctx: Ctx) -> ProfileRead:
        """Approve an applicant (``volunteer.manage``): they may now sign up to shifts."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).approve(user_id)

    @router.get("/activities")
    def activities(ctx: Ctx) -> list[ActivityRead]:
        """The organisation's activities, newest first."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).activities()

    @router.post("/activities", status_code=201)
    def create_activity(body: ActivityIn, ctx: Ctx) -> ActivityRead:
        """A new activity (``shifts.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).create_activity(body)

    @router.get("/shifts")
    def shifts(
        ctx: Ctx,
        activity_id: uuid.UUID | None = None,
        starts_after: AwareTime | None = None,
        starts_before: AwareTime | None = None,
        open_only: bool = False,
    ) -> list[ShiftRead]:
        """Shifts in start order, optionally of one activity or period."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).shifts(
                activity_id=activity_id,
                starts_after=starts_after,
                starts_before=starts_before,
                open_only=open_only,
            )

    @router.post("/shifts", status_code=201)
    def create_shift(body: ShiftIn, ctx: Ctx) -> ShiftRead:
        """A shift of an activity (``shifts.manage``); naive times are in the organisation's zone."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).create_shift(body)

    @router.get("/shifts/{shift_id}")
    def shift(shift_id: uuid.UUID, ctx: Ctx) -> ShiftRead:
        """One shift with its roles and places taken."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).shift(shift_id)

    @router.post("/shifts/{shift_id}/sign-up", status_code=201)
    def sign_up(shift_id: uuid.UUID, body: SignUpBody, ctx: Ctx) -> SignUpRead:
        """Take a place (or a waitlist place) on a shift (``shift_full``, ``not_eligible``...)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).sign_up(
                shift_id, body.user_id, role=body.role, waitlist=body.waitlist, key=body.key
            )

    @router.post("/shifts/{shift_id}/cancel")
    def cancel(shift_id: uuid.UUID, body: CancelBody, ctx: Ctx) -> SignUpRead:
        """Give up a place; the first person waiting is promoted."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).cancel(shift_id, body.user_id, reason=body.reason)

    @router.get("/shifts/{shift_id}/checkin-token")
    def checkin_token(shift_id: uuid.UUID, ctx: Ctx) -> CheckInToken:
        """The shift's check-in code for the QR poster (``attendance.record``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return CheckInToken(shift_id=shift_id, token=_volunteer(tx).checkin_token(shift_id))

    @router.get(
        "/shifts/{shift_id}/checkin-qr",
        response_class=Response,
        responses={200: {"content": {"image/svg+xml": {}}, "description": "The QR code (SVG)"}},
    )
    def checkin_qr(shift_id: uuid.UUID, ctx: Ctx) -> Response:
        """The shift's check-in code as an SVG QR code for the door (``attendance.record``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            svg = _volunteer(tx).checkin_qr(shift_id, kind="svg")
        return Response(svg, media_type="image/svg+xml")

    @router.get(
        "/shifts/{shift_id}/checkin-pass-qr",
        response_class=Response,
        responses={200: {"content": {"image/svg+xml": {}}, "description": "The QR code (SVG)"}},
    )
    def checkin_pass_qr(shift_id: uuid.UUID, ctx: Ctx) -> Response:
        """The signed-in volunteer's pass for their confirmed place, as an SVG QR code to show
        at the door (``not_found`` without a confirmed place)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            svg = _volunteer(tx).checkin_pass_qr(shift_id, kind="svg")
        return Response(svg, media_type="image/svg+xml")

    @router.post("/shifts/{shift_id}/check-in")
    def check_in(shift_id: uuid.UUID, body: CheckInBody, ctx: Ctx) -> SignUpRead:
        """Record arrival: the volunteer with the QR ``token`` (in the window around the shift),
        or staff naming ``user_id`` (``attendance.record``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).check_in(shift_id, body.user_id, token=body.token)

    @router.post("/shifts/{shift_id}/complete")
    def complete_shift(shift_id: uuid.UUID, ctx: Ctx) -> AttendanceRead:
        """Close a shift (``attendance.record``): hours for those who came, no-shows for the rest."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).complete_shift(shift_id)

    @router.get("/me/signups")
    def my_signups(ctx: Ctx) -> list[SignUpRead]:
        """The signed-in volunteer's places and waitlist places, soonest first."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).my_signups(actor)

    @router.get("/me/hours")
    def my_hours(ctx: Ctx) -> list[HoursRead]:
        """The signed-in volunteer's hours ledger, oldest first."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).hours(actor)

    @router.get(
        "/reports/hours/export",
        response_class=Response,
        responses={
            200: {
                "content": {media: {} for media in TABLE_TYPES.values()},
                "description": "The hours report as a CSV or XLSX file",
            }
        },
    )
    def export_hours(
        ctx: Ctx,
        by: Literal["volunteer", "activity", "month"] = "volunteer",
        served_from: dt.date | None = None,
        served_to: dt.date | None = None,
        format: Literal["csv", "xlsx"] = "csv",
    ) -> Response:
        """Net service hours grouped ``by`` volunteer, activity or month, for service dates in
        ``[served_from, served_to]``, as a CSV or XLSX download (``volunteer.view``)."""
        ctx.require_actor()
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / f"hours.{format}"
            with ctx.begin() as tx:
                _volunteer(tx).export_hours(
                    str(path), by=by, served_from=served_from, served_to=served_to
                )
            content = path.read_bytes()
        name = f"volunteer-hours-by-{by}.{format}"
        return Response(
            content,
            media_type=TABLE_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.post("/certificates", status_code=201)
    def issue_certificate(body: CertificateIn, ctx: Ctx) -> CertificateRead:
        """Issue a certificate of service hours (``certificates.issue``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _volunteer(tx).issue_certificate(
                body.user_id, period_from=body.period_from, period_to=body.period_to
            )

    @router.get(
        "/certificates/{certificate_id}/pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}, "description": "The certificate"}},
    )
    def certificate_pdf(certificate_id: uuid.UUID, ctx: Ctx) -> Response:
        """A certificate of service hours as a PDF (the holder, or ``certificates.issue``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            pdf = _volunteer(tx).certificate_pdf(certificate_id)
        return Response(pdf, media_type="application/pdf")

    return router


def build_public_router() -> APIRouter:
    """The public certificate check (relative to ``/api/certificates``)."""
    router = APIRouter()

    @router.get("/verify")
    def verify_certificate(
        ctx: Ctx, token: Annotated[str, Query(min_length=1, max_length=2000)]
    ) -> CertificateCheck:
        """Check a certificate of service hours from its link or QR code; no sign-in needed.

        ``token_tampered`` (400) for a forged or altered token, ``not_found`` when revoked.
        """
        with ctx.begin(org=False) as tx:
            return _volunteer(tx).verify_certificate(token)

    return router


@hookimpl
def ngo_kit_register_routes(register: Registrar[Routes], kit: Kit) -> None:
    """Contribute the volunteer routes and the public certificate check."""
    register(Routes("volunteer", build_router()))
    register(Routes("certificates", build_public_router(), org_scoped=False))


__all__ = ["build_public_router", "build_router", "ngo_kit_register_routes"]
