"""Sign-ups: taking a place on a shift, the waitlist, cancellation and promotion.

Sign-ups are the hot path: they take the volunteer's profile row lock (one person's sign-ups
queue, so double-booking cannot slip between two calls), then the shift row through a guarded
UPDATE that also numbers arrivals, then the role's and shift's ``taken`` counters through
guarded UPDATEs. Confirmed places therefore never exceed capacity and the waitlist is served in
arrival order, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from ngo_kit import idempotency
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    Conflict,
    KeyReused,
    LocalisedText,
    NotFound,
    ShiftFull,
    ValidationFailed,
)
from ngo_kit.modules.volunteer.base import (
    ACTIVE,
    CANCELLED,
    CONFIRMED,
    SQL,
    WAITLISTED,
    VolunteerBase,
    age_on,
)
from ngo_kit.modules.volunteer.errors import (
    CancellationClosed,
    DoubleBooked,
    NotEligible,
    ShiftClosed,
)
from ngo_kit.modules.volunteer.models import Certification, ProfileSkill, Shift, ShiftRole, SignUp
from ngo_kit.modules.volunteer.schemas import ShiftRead, SignUpRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Text, check


class SignUps(VolunteerBase):
    """Sign-up, the waitlist and cancellation."""

    @operation(
        "POST /shifts/{shift_id}/sign-up",
        permission="shifts.manage",
        own=True,
        status=201,
        custom=True,
        errors=(
            NotEligible,
            DoubleBooked,
            ShiftFull,
            ShiftClosed,
            AlreadyExists,
            KeyReused,
            Conflict,
        ),
    )
    def sign_up(
        self,
        shift_id: uuid.UUID,
        user_id: uuid.UUID | None = None,
        *,
        role: str | None = None,
        waitlist: bool = True,
        key: str | None = None,
    ) -> SignUpRead:
        """Take a place on a shift, or a place in its waitlist when it is full.

        The volunteer signs up themselves; signing up someone else needs ``shifts.manage``.
        With ``waitlist=False`` a full shift raises ``ShiftFull``. Raises ``NotEligible``
        (not approved, missing skill, certification missing or expired on the shift's date,
        too young), ``DoubleBooked`` (an overlapping place held), ``AlreadyExists`` (already on
        this shift), ``ShiftClosed`` (completed, cancelled or started). A repeated ``key``
        returns the first result and writes nothing. Fires ``ngo_kit_shift_signed_up``.
        """
        tx = self.tx
        user_id = self._for_self_or(user_id, "shifts.manage")
        org_id = tx.org_id
        keyed = idempotency.keyed(
            tx, "volunteer.sign_up", key, shift_id=shift_id, user_id=user_id, role=role
        )
        if key is not None:  # before the shift, the profile and the places are looked at
            found = self._signup_by_key(keyed)
            if found is not None:
                return found
        row = SQL(tx, "shift").first(tx, o=org_id, s=shift_id)
        if row is None:
            raise NotFound("Shift", shift_id)
        shift = SimpleNamespace(**row)
        now = utcnow()
        if shift.status != "open" or shift.starts_at <= now:
            raise ShiftClosed()
        role_row = self._role_for(shift, role)
        # The profile row lock queues one person's sign-ups: the overlap check below then
        # sees every place they hold.
        returning = tx.connection.dialect.update_returning
        if returning:  # one statement locks, touches and reads the profile
            profile = SQL(tx, "profile_touch").first(tx, o=org_id, u=user_id, n=now)
        else:
            profile = SQL(tx, "profile_lock").first(tx, o=org_id, u=user_id)
        if profile is None:  # no profile here, or no longer a member
            raise NotFound("Volunteer", user_id, field="user_id")
        if profile["status"] != "approved":
            raise NotEligible("not_approved", "the volunteer is not approved")
        self._check_eligible(shift, role_row, user_id)
        previous = SQL(tx, "previous").first(tx, o=org_id, s=shift.id, u=user_id)
        if previous is not None and previous["status"] != CANCELLED:
            raise AlreadyExists("SignUp", user_id)
        clash = SQL(tx, "clash").first(
            tx, o=org_id, u=user_id, s=shift.id, b=shift.starts_at, e=shift.ends_at
        )
        if clash is not None:
            raise DoubleBooked(shift_id=str(clash["shift_id"]))
        seq = self._arrive(shift.id)
        role_id = role_row.id if role_row is not None else None
        confirmed = self._take_place(shift.id, role_id)
        if not confirmed and not waitlist:
            raise ShiftFull()
        status = CONFIRMED if confirmed else WAITLISTED
        values: dict[str, Any] = {
            "role_id": role_id,
            "status": status,
            "seq": seq,
            "starts_at": shift.starts_at,
            "ends_at": shift.ends_at,
            "created_at": now,
            **keyed,
            "checked_in_at": None,
            "checked_out_at": None,
            "cancelled_at": None,
            "promoted_at": None,
        }
        if previous is not None:
            signup_id = previous["id"]
            tx.session.execute(sa.update(SignUp).where(SignUp.id == signup_id).values(**values))
        else:
            signup_id = new_id()
            values.update(id=signup_id, org_id=org_id, shift_id=shift.id, user_id=user_id)
            if key is None:
                SQL(tx, "insert").changed(tx, **values)
            else:
                try:
                    with tx.savepoint():
                        tx.session.execute(sa.insert(SignUp).values(**values))
                except sa.exc.IntegrityError:
                    winner = self._signup_by_key(keyed)
                    if winner is None:
                        raise
                    return winner
        if not returning:
            SQL(tx, "touch").changed(tx, o=org_id, u=user_id, n=now)
        signup = SignUpRead(
            id=signup_id,
            shift_id=shift.id,
            role_id=role_id,
            user_id=user_id,
            status=status,
            seq=seq,
            created_at=now,
            position=None if confirmed else self._position(shift.id, seq),
        )
        tx.audit(
            "volunteer.signed_up",
            "shift",
            shift.id,
            f"{status} ({seq})",
            data={"user_id": str(user_id), "status": status, "seq": seq},
        )
        if tx.kit.hook.ngo_kit_shift_signed_up.get_hookimpls():
            tx.emit("ngo_kit_shift_signed_up", shift=self._service.shift(shift.id), signup=signup)
        return signup

    def _signup_by_key(self, keyed: dict[str, Any]) -> SignUpRead | None:
        """The sign-up made with ``keyed``'s key in its scope; ``KeyReused`` when that one had
        other parameters."""
        row = idempotency.first_row(self.tx, SignUp, keyed)
        return self._signup_read(row) if row is not None else None

    def _role_for(self, shift: Any, role: str | None) -> Any | None:
        roles = SQL(self.tx, "roles").all(self.tx, o=shift.org_id, s=shift.id)
        if not roles:
            if role is not None:
                raise NotFound("Shift role", role)
            return None
        if role is None:
            raise ValidationFailed("role", "missing")
        for found in roles:
            if found["name"] == role:
                return SimpleNamespace(**found)
        raise NotFound("Shift role", role)

    def _arrive(self, shift_id: uuid.UUID) -> int:
        """Number this arrival; the UPDATE also locks the shift row until commit."""
        tx = self.tx
        if tx.connection.dialect.update_returning:
            found = SQL(tx, "arrive_returning").first(tx, s=shift_id)
            if found is None:
                raise ShiftClosed()
            return int(found["arrivals"])
        if SQL(tx, "arrive").changed(tx, s=shift_id) != 1:
            raise ShiftClosed()
        found = SQL(tx, "arrivals").first(tx, s=shift_id)
        return int(found["arrivals"]) if found else 0

    def _take_place(self, shift_id: uuid.UUID, role_id: uuid.UUID | None) -> bool:
        tx = self.tx
        if role_id is not None and SQL(tx, "take_role").changed(tx, r=role_id) != 1:
            return False
        if SQL(tx, "take_shift").changed(tx, s=shift_id) != 1:
            if role_id is not None:  # roles add up to the capacity, so this means drift
                raise Conflict("The shift's places and its roles' places disagree.")
            return False
        return True

    def _free_place(self, shift_id: uuid.UUID, role_id: uuid.UUID | None) -> None:
        session = self.tx.session
        session.execute(
            sa.update(Shift)
            .where(Shift.id == shift_id, Shift.taken > 0)
            .values(taken=Shift.taken - 1)
        )
        if role_id is not None:
            session.execute(
                sa.update(ShiftRole)
                .where(ShiftRole.id == role_id, ShiftRole.taken > 0)
                .values(taken=ShiftRole.taken - 1)
            )

    def _check_eligible(self, shift: Any, role: Any | None, user_id: uuid.UUID) -> None:
        needed = set(shift.required_skills or []) | set(role.required_skills if role else [])
        if not needed and not shift.required_certifications and shift.min_age is None:
            return
        session, org_id = self.tx.session, self.tx.org_id
        if needed:
            held = set(
                session.scalars(
                    sa.select(ProfileSkill.skill).where(
                        ProfileSkill.org_id == org_id,
                        ProfileSkill.user_id == user_id,
                        ProfileSkill.skill.in_(sorted(needed)),
                    )
                )
            )
            missing = sorted(needed - held)
            if missing:
                raise NotEligible("missing_skill", "skill {skill} is required", skill=missing[0])
        day = shift.starts_at.astimezone(self.zone).date()
        certs = list(shift.required_certifications or [])
        if certs:
            valid = dict(
                session.execute(
                    sa.select(Certification.kind, Certification.valid_until).where(
                        Certification.org_id == org_id,
                        Certification.user_id == user_id,
                        Certification.kind.in_(certs),
                    )
                ).all()
            )
            for kind in sorted(certs):
                if kind not in valid:
                    raise NotEligible(
                        "missing_certification", "certification {kind} is required", kind=kind
                    )
                until = valid[kind]
                if until is not None and until < day:
                    raise NotEligible(
                        "certification_expired",
                        "certification {kind} expires before the shift ({until})",
                        kind=kind,
                        until=until.isoformat(),
                    )
        if shift.min_age is not None:
            birth = getattr(self._person(user_id), "birth_date", None)
            if birth is None:
                raise NotEligible("age_unknown", "the volunteer's age is not known")
            if age_on(birth, day) < shift.min_age:
                raise NotEligible("too_young", "the minimum age is {age}", age=shift.min_age)

    @operation(
        "POST /shifts/{shift_id}/cancel",
        permission="shifts.manage",
        own=True,
        custom=True,
        errors=(ShiftClosed, CancellationClosed, Conflict),
    )
    def cancel(
        self, shift_id: uuid.UUID, user_id: uuid.UUID | None = None, *, reason: str = ""
    ) -> SignUpRead:
        """Give up a place (or a waitlist place); the first person waiting is promoted.

        The volunteer cancels themselves until the cut-off (``CancellationClosed`` after);
        ``shifts.manage`` cancels anyone at any time. Promotion sends the promoted volunteer a
        message through the outbox. Fires ``ngo_kit_shift_cancelled`` then
        ``ngo_kit_waitlist_promoted``.
        """
        tx = self.tx
        reason = check("reason", Text, reason)
        user_id = self._for_self_or(user_id, "shifts.manage")
        session, org_id = tx.session, tx.org_id
        shift = tx.get_owned(Shift, shift_id, "Shift")
        if shift.status != "open":
            raise ShiftClosed()
        now = utcnow()
        if not tx.can("shifts.manage"):
            cutoff_hours = shift.cancel_cutoff_hours or int(self.settings["cancel_cutoff_hours"])
            if now > shift.starts_at - dt.timedelta(hours=cutoff_hours):
                raise CancellationClosed(hours=cutoff_hours)
        # Lock the shift row first (the same order as sign-up), then read the place under it.
        session.execute(
            sa.update(Shift).where(Shift.id == shift.id).values(arrivals=Shift.arrivals)
        )
        row = session.scalar(
            sa.select(SignUp).where(
                SignUp.org_id == org_id,
                SignUp.shift_id == shift.id,
                SignUp.user_id == user_id,
                SignUp.status.in_(ACTIVE),
            )
        )
        if row is None:
            raise NotFound("SignUp", user_id)
        was = row.status
        session.execute(
            sa.update(SignUp).where(SignUp.id == row.id).values(status=CANCELLED, cancelled_at=now)
        )
        if was == CONFIRMED:
            self._free_place(shift.id, row.role_id)
        tx.audit(
            "volunteer.cancelled",
            "shift",
            shift.id,
            f"{was} place cancelled",
            data={"user_id": str(user_id), "reason": reason[:200]},
        )
        cancelled = self._signup_read(session.get(SignUp, row.id, populate_existing=True))  # type: ignore[arg-type]
        fresh = self._service.shift(shift.id)
        tx.emit("ngo_kit_shift_cancelled", shift=fresh, signup=cancelled)
        if was == CONFIRMED:
            self._promote(shift.id, row.role_id)
        return cancelled

    def _promote(self, shift_id: uuid.UUID, role_id: uuid.UUID | None) -> SignUpRead | None:
        tx = self.tx
        session = tx.session
        stmt = sa.select(SignUp).where(SignUp.shift_id == shift_id, SignUp.status == WAITLISTED)
        if role_id is not None:
            stmt = stmt.where(SignUp.role_id == role_id)
        first = session.scalar(stmt.order_by(SignUp.seq).limit(1))
        if first is None or not self._take_place(shift_id, role_id):
            return None
        now = utcnow()
        session.execute(
            sa.update(SignUp).where(SignUp.id == first.id).values(status=CONFIRMED, promoted_at=now)
        )
        promoted = self._signup_read(session.get(SignUp, first.id, populate_existing=True))  # type: ignore[arg-type]
        shift = self._service.shift(shift_id)
        self._notify_promoted(shift, promoted)
        tx.audit(
            "volunteer.promoted",
            "shift",
            shift_id,
            f"waitlist place {first.seq} confirmed",
            data={"user_id": str(first.user_id), "seq": first.seq},
        )
        tx.emit("ngo_kit_waitlist_promoted", shift=shift, signup=promoted)
        return promoted

    def _notify_promoted(self, shift: ShiftRead, signup: SignUpRead) -> None:
        person = self._person(signup.user_id)
        email, phone = getattr(person, "email", None), getattr(person, "phone", None)
        if not (email or phone):
            return
        local = shift.starts_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
        text = LocalisedText(
            "A place came free and is yours: the shift at {when} {place}",
            when=local,
            place=shift.place,
        )
        self.tx.send(
            "email" if email else "sms",
            str(email or phone),
            subject=LocalisedText("You have a place on the shift").in_locale(self.tx.locale),
            body=text.in_locale(self.tx.locale).strip(),
            data={"kind": "volunteer.waitlist_promoted", "shift_id": str(shift.id)},
            dedup_key=f"volunteer.promoted:{signup.id}:{signup.seq}:{signup.promoted_at}",
        )

    @operation("GET /shifts/{shift_id}/sign-ups", permission="volunteer.view")
    def signups(self, shift_id: uuid.UUID, *, status: str | None = None) -> list[SignUpRead]:
        """A shift's sign-ups in arrival order (``volunteer.view``)."""
        tx = self.tx
        tx.require("volunteer.view")
        shift = tx.get_owned(Shift, shift_id, "Shift")
        stmt = sa.select(SignUp).where(SignUp.org_id == tx.org_id, SignUp.shift_id == shift.id)
        if status is not None:
            stmt = stmt.where(SignUp.status == status)
        rows = list(tx.session.scalars(stmt.order_by(SignUp.seq)))
        position = 0
        out = []
        for row in rows:
            read = SignUpRead.model_validate(row)
            if row.status == WAITLISTED:
                position += 1
                read = read.model_copy(update={"position": position})
            out.append(read)
        return out

    @operation("GET /me/signups", permission="volunteer.view", own=True, custom=True)
    def my_signups(self, user_id: uuid.UUID | None = None) -> list[SignUpRead]:
        """A volunteer's current places and waitlist places, soonest first."""
        tx = self.tx
        user_id = self._for_self_or(user_id, "volunteer.view")
        rows = tx.session.scalars(
            sa.select(SignUp)
            .where(SignUp.org_id == tx.org_id, SignUp.user_id == user_id, SignUp.status.in_(ACTIVE))
            .order_by(SignUp.starts_at)
        )
        return [self._signup_read(r) for r in rows]
