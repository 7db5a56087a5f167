"""Attendance: check-in codes and passes, check-in and check-out, no-shows, completing a shift."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import utcnow
from ngo_kit.errors import NotFound, PermissionDenied, TokenInvalid, ValidationFailed
from ngo_kit.modules.volunteer.base import (
    ATTENDED,
    CONFIRMED,
    HOURS_PLACES,
    NO_SHOW,
    ZERO,
    VolunteerBase,
    _rows,
)
from ngo_kit.modules.volunteer.errors import (
    CheckInClosed,
    ShiftClosed,
    TokenForAnotherShift,
    WrongState,
)
from ngo_kit.modules.volunteer.models import Profile, Shift, SignUp
from ngo_kit.modules.volunteer.schemas import AttendanceRead, HoursRead, SignUpRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Moment, check
from ngo_kit.tokens import tokens_for

CHECKIN_PURPOSE = "volunteer.checkin"
PASS_PURPOSE = "volunteer.checkin-pass"


def round_hours(seconds: float, minutes: int, mode: str) -> Decimal:
    """Round a duration to a multiple of ``minutes`` (``nearest``, ``down`` or ``up``), in hours."""
    if seconds <= 0:
        return ZERO
    units = Decimal(int(seconds)) / Decimal(60 * minutes)
    rounding = {"down": ROUND_FLOOR, "up": ROUND_CEILING}.get(mode, ROUND_HALF_UP)
    whole = units.quantize(Decimal(1), rounding=rounding)
    return (whole * Decimal(minutes) / Decimal(60)).quantize(HOURS_PLACES)


class Attendance(VolunteerBase):
    """Check-in and check-out, no-shows and completed shifts."""

    @operation("GET /shifts/{shift_id}/checkin-token", permission="attendance.record", custom=True)
    def checkin_token(self, shift_id: uuid.UUID) -> str:
        """A signed check-in code for the shift's door poster (``attendance.record``)."""
        self.tx.require("attendance.record")
        shift = self.tx.get_owned(Shift, shift_id, "Shift")
        return tokens_for(self.tx.kit).sign(
            CHECKIN_PURPOSE, {"s": str(shift.id), "o": str(self.tx.org_id)}
        )

    @operation("GET /shifts/{shift_id}/checkin-qr", permission="attendance.record", custom=True)
    def checkin_qr(self, shift_id: uuid.UUID, *, kind: str = "svg", scale: int = 4) -> bytes:
        """The check-in code as a QR image (``svg`` or ``png``) for the door."""
        return _qr(self.checkin_token(shift_id), kind, scale)

    @operation("GET /shifts/{shift_id}/checkin-pass", permission="volunteer.view", own=True)
    def checkin_pass(self, shift_id: uuid.UUID, user_id: uuid.UUID | None = None) -> str:
        """A volunteer's signed pass for their confirmed place on a shift, to show at the door.

        The opposite of the door poster: the volunteer shows it, a coordinator scans it and
        calls ``check_in_with_pass``. For the volunteer themselves (or ``volunteer.view``);
        ``NotFound`` ("SignUp") without a confirmed place.
        """
        tx = self.tx
        user_id = self._for_self_or(user_id, "volunteer.view")
        shift = tx.get_owned(Shift, shift_id, "Shift")
        self._confirmed(shift.id, user_id)
        return tokens_for(tx.kit).sign(
            PASS_PURPOSE, {"s": str(shift.id), "u": str(user_id), "o": str(tx.org_id)}
        )

    @operation(
        "GET /shifts/{shift_id}/checkin-pass-qr", permission="volunteer.view", own=True, custom=True
    )
    def checkin_pass_qr(
        self,
        shift_id: uuid.UUID,
        *,
        link: str = "{token}",
        kind: str = "svg",
        scale: int = 4,
    ) -> bytes:
        """The volunteer's pass as a QR image; ``link`` is what it encodes, ``{token}`` filled
        (an app's check-in page URL, say)."""
        return _qr(link.format(token=self.checkin_pass(shift_id)), kind, scale)

    @operation(
        "POST /checkin-passes/read",
        permission="attendance.record",
        changes=False,
        errors=(TokenInvalid, TokenForAnotherShift),
    )
    def read_pass(self, token: str) -> SignUpRead:
        """The confirmed sign-up a pass stands for (``attendance.record``), without checking in.

        Raises ``TokenTampered`` / ``TokenWrongPurpose`` for other tokens,
        ``TokenForAnotherShift`` for a pass of another organisation, ``NotFound`` ("SignUp")
        once the place is cancelled.
        """
        tx = self.tx
        tx.require("attendance.record")
        data = tokens_for(tx.kit).load(PASS_PURPOSE, token, max_age=None)
        try:
            shift_id, user_id = uuid.UUID(str(data["s"])), uuid.UUID(str(data["u"]))
            org_id = uuid.UUID(str(data["o"]))
        except (KeyError, TypeError, ValueError):
            raise TokenInvalid() from None
        if org_id != tx.org_id:
            raise TokenForAnotherShift()
        return self._signup_read(self._confirmed(shift_id, user_id))

    @operation(
        "POST /checkin-passes/check-in",
        permission="attendance.record",
        errors=(TokenInvalid, TokenForAnotherShift, ShiftClosed),
    )
    def check_in_with_pass(self, token: str) -> SignUpRead:
        """Check in the holder of a volunteer's pass (``attendance.record``), as ``check_in``
        by a coordinator does; errors as ``read_pass`` and ``check_in``."""
        signup = self.read_pass(token)
        return self.check_in(signup.shift_id, signup.user_id)

    def _window(self, shift: Shift) -> tuple[dt.datetime, dt.datetime]:
        s = self.settings
        return (
            shift.starts_at - dt.timedelta(minutes=int(s["checkin_opens_minutes"])),
            shift.ends_at + dt.timedelta(minutes=int(s["checkin_closes_minutes"])),
        )

    def _check_token(self, shift: Shift, token: str) -> None:
        data = tokens_for(self.tx.kit).load(CHECKIN_PURPOSE, token, max_age=None)
        if (
            not isinstance(data, dict)
            or data.get("s") != str(shift.id)
            or data.get("o") != str(self.tx.org_id)
        ):
            raise TokenForAnotherShift()
        opens, closes = self._window(shift)
        if not opens <= utcnow() <= closes:
            zone = self.zone
            raise CheckInClosed(
                opens=opens.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                closes=closes.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            )

    def _attendee(
        self, shift_id: uuid.UUID, user_id: uuid.UUID | None, token: str | None
    ) -> tuple[Shift, uuid.UUID]:
        tx = self.tx
        shift = tx.get_owned(Shift, shift_id, "Shift")
        if shift.status != "open":
            raise ShiftClosed()
        if token is not None:
            if tx.actor_id is None or (user_id is not None and user_id != tx.actor_id):
                raise PermissionDenied("attendance.record")
            self._check_token(shift, token)
            return shift, tx.actor_id
        tx.require("attendance.record")
        if user_id is None:
            raise ValidationFailed("user_id", "missing")
        return shift, user_id

    @operation(
        "POST /shifts/{shift_id}/check-in",
        permission="attendance.record",
        own=True,
        custom=True,
        errors=(CheckInClosed, TokenForAnotherShift, TokenInvalid, ShiftClosed),
    )
    def check_in(
        self,
        shift_id: uuid.UUID,
        user_id: uuid.UUID | None = None,
        *,
        token: str | None = None,
        at: dt.datetime | None = None,
    ) -> SignUpRead:
        """Record arrival: by a coordinator (``attendance.record``) or by the volunteer with the
        shift's check-in code (valid only in the window around the shift).

        Raises ``CheckInClosed``, ``TokenForAnotherShift``, ``TokenTampered`` for bad codes, and
        ``NotFound`` ("SignUp") for someone without a confirmed place. Checking in twice keeps
        the first time.
        """
        tx = self.tx
        at = check("at", Moment | None, at)
        shift, user_id = self._attendee(shift_id, user_id, token)
        when = self._aware(at) if at is not None and token is None else utcnow()
        row = self._confirmed(shift.id, user_id)
        if row.checked_in_at is None:
            tx.session.execute(
                sa.update(SignUp).where(SignUp.id == row.id).values(checked_in_at=when)
            )
            tx.audit(
                "volunteer.checked_in",
                "shift",
                shift.id,
                "checked in",
                data={"user_id": str(user_id)},
            )
        return self._signup_read(tx.session.get(SignUp, row.id, populate_existing=True))  # type: ignore[arg-type]

    def _confirmed(self, shift_id: uuid.UUID, user_id: uuid.UUID) -> SignUp:
        row = self.tx.session.scalar(
            sa.select(SignUp).where(
                SignUp.org_id == self.tx.org_id,
                SignUp.shift_id == shift_id,
                SignUp.user_id == user_id,
                SignUp.status.in_((CONFIRMED, ATTENDED)),
            )
        )
        if row is None:
            raise NotFound("SignUp", user_id)
        return row

    @operation(
        "POST /shifts/{shift_id}/check-out",
        permission="attendance.record",
        own=True,
        errors=(CheckInClosed, TokenForAnotherShift, TokenInvalid, ShiftClosed, WrongState),
    )
    def check_out(
        self,
        shift_id: uuid.UUID,
        user_id: uuid.UUID | None = None,
        *,
        token: str | None = None,
        at: dt.datetime | None = None,
    ) -> HoursRead:
        """Record departure and the hours served (rounded by the organisation's rule).

        Same callers and errors as ``check_in``; the hours enter the ledger at once and
        ``ngo_kit_hours_approved`` fires. ``WrongState`` when not checked in or already out.
        """
        at = check("at", Moment | None, at)
        shift, user_id = self._attendee(shift_id, user_id, token)
        when = self._aware(at) if at is not None and token is None else utcnow()
        row = self._confirmed(shift.id, user_id)
        return self._close_attendance(shift, row, when)

    def _close_attendance(self, shift: Shift, row: SignUp, when: dt.datetime) -> HoursRead:
        tx = self.tx
        if row.checked_in_at is None or row.checked_out_at is not None:
            raise WrongState(
                kind="SignUp",
                state="checked out" if row.checked_out_at else "not checked in",
                needed="checked in",
            )
        result = tx.session.execute(
            sa.update(SignUp)
            .where(SignUp.id == row.id, SignUp.checked_out_at.is_(None))
            .values(checked_out_at=when, status=ATTENDED)
        )
        if _rows(result) != 1:
            raise WrongState(kind="SignUp", state="checked out", needed="checked in")
        tx.session.execute(
            sa.update(Profile)
            .where(Profile.org_id == tx.org_id, Profile.user_id == row.user_id)
            .values(attended_count=Profile.attended_count + 1)
        )
        hours = self.hours_served(shift, row.checked_in_at, when)
        return self._service._record_hours(
            user_id=row.user_id,
            hours=hours,
            source="attendance",
            served_on=shift.starts_at.astimezone(self.zone).date(),
            activity_id=shift.activity_id,
            shift_id=shift.id,
            signup_id=row.id,
        )

    @operation(
        not_http="a calculation on a shift row (a Python object) that check-out and "
        "completing a shift use; it reads and changes nothing",
        changes=False,
    )
    def hours_served(
        self, shift: Any, checked_in: dt.datetime, checked_out: dt.datetime
    ) -> Decimal:
        """Hours between check-in and check-out, inside the shift when the organisation says so,
        rounded to its unit (``hours_rounding_minutes``) and mode (``hours_rounding``)."""
        s = self.settings
        start, end = checked_in, checked_out
        if s["hours_within_shift"]:
            start, end = max(start, shift.starts_at), min(end, shift.ends_at)
        seconds = (end - start).total_seconds()
        return round_hours(seconds, int(s["hours_rounding_minutes"]), str(s["hours_rounding"]))

    @operation(
        "POST /shifts/{shift_id}/sign-ups/{user_id}/no-show",
        permission="attendance.record",
        errors=(WrongState,),
    )
    def mark_no_show(self, shift_id: uuid.UUID, user_id: uuid.UUID) -> SignUpRead:
        """Record that a confirmed volunteer did not come (``attendance.record``)."""
        tx = self.tx
        tx.require("attendance.record")
        shift = tx.get_owned(Shift, shift_id, "Shift")
        row = self._confirmed(shift.id, user_id)
        if row.checked_in_at is not None:
            raise WrongState(kind="SignUp", state="checked in", needed="not checked in")
        self._no_show([row.id], [user_id])
        tx.audit("volunteer.no_show", "shift", shift.id, "no-show", data={"user_id": str(user_id)})
        return self._signup_read(tx.session.get(SignUp, row.id, populate_existing=True))  # type: ignore[arg-type]

    def _no_show(self, signup_ids: list[uuid.UUID], user_ids: list[uuid.UUID]) -> None:
        if not signup_ids:
            return
        tx = self.tx
        tx.session.execute(
            sa.update(SignUp).where(SignUp.id.in_(signup_ids)).values(status=NO_SHOW)
        )
        tx.session.execute(
            sa.update(Profile)
            .where(Profile.org_id == tx.org_id, Profile.user_id.in_(user_ids))
            .values(no_show_count=Profile.no_show_count + 1)
        )

    @operation(
        "POST /shifts/{shift_id}/complete",
        permission="attendance.record",
        custom=True,
        errors=(ShiftClosed, WrongState),
    )
    def complete_shift(self, shift_id: uuid.UUID) -> AttendanceRead:
        """Close a shift (``attendance.record``): whoever is still checked in is checked out
        at the end, confirmed volunteers who never checked in become no-shows, and
        ``ngo_kit_shift_completed`` fires with the attendance."""
        tx = self.tx
        tx.require("attendance.record")
        shift = tx.get_owned(Shift, shift_id, "Shift")
        result = tx.session.execute(
            sa.update(Shift)
            .where(Shift.id == shift.id, Shift.status == "open")
            .values(status="completed")
        )
        if _rows(result) != 1:
            raise ShiftClosed()
        rows = list(
            tx.session.scalars(
                sa.select(SignUp)
                .where(SignUp.shift_id == shift.id, SignUp.status.in_((CONFIRMED, ATTENDED)))
                .order_by(SignUp.seq)
            )
        )
        recorded: list[HoursRead] = []
        missing = [r for r in rows if r.status == CONFIRMED and r.checked_in_at is None]
        for row in rows:
            if row.status == CONFIRMED and row.checked_in_at is not None:
                recorded.append(
                    self._close_attendance(shift, row, max(shift.ends_at, row.checked_in_at))
                )
        self._no_show([r.id for r in missing], [r.user_id for r in missing])
        attended = tuple(r.user_id for r in rows if r.checked_in_at is not None)
        attendance = AttendanceRead(
            shift_id=shift.id,
            attended=attended,
            no_shows=tuple(r.user_id for r in missing),
            hours=tuple(recorded),
        )
        tx.audit(
            "volunteer.shift_completed",
            "shift",
            shift.id,
            f"{len(attended)} attended, {len(missing)} no-show",
        )
        tx.emit(
            "ngo_kit_shift_completed", shift=self._service.shift(shift.id), attendance=attendance
        )
        return attendance


def _qr(text: str, kind: str, scale: int) -> bytes:
    """``text`` as a QR image (``svg`` or ``png``), with medium error correction (a code about
    15% smudged or creased still reads)."""
    import segno  # loaded when a code is drawn, not with the module

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind=kind, scale=scale)
    return out.getvalue()
