"""The volunteer service (``tx.volunteer``): every business rule of the module lives here.

Sign-ups are the hot path: they take the volunteer's profile row lock (one person's sign-ups
queue, so double-booking cannot slip between two calls), then the shift row through a guarded
UPDATE that also numbers arrivals, then the role's and shift's ``taken`` counters through
guarded UPDATEs. Confirmed places therefore never exceed capacity and the waitlist is served in
arrival order, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit import idempotency
from ngo_kit.audit import append_chained
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    Conflict,
    LocalisedText,
    NotFound,
    PermissionDenied,
    ShiftFull,
    TokenInvalid,
    ValidationFailed,
)
from ngo_kit.modules.volunteer.certificate_service import (
    CertificateExtras,
    new_number,
    warn_without_public_url,
)
from ngo_kit.modules.volunteer.models import (
    HOURS_FIELDS,
    Activity,
    Assignment,
    Certificate,
    Certification,
    HoursClaim,
    HoursEntry,
    NameIndex,
    Profile,
    ProfileSkill,
    Shift,
    ShiftRole,
    SignUp,
    Skill,
    Task,
)
from ngo_kit.modules.volunteer.schemas import (
    ActivityIn,
    ActivityRead,
    AssignmentRead,
    AttendanceRead,
    CertificateCheck,
    CertificateRead,
    ClaimIn,
    ClaimRead,
    HoursRead,
    ImportReport,
    MatchRead,
    ProfileIn,
    ProfileRead,
    RecurringShiftsIn,
    RoleRead,
    ShiftIn,
    ShiftRead,
    SignUpRead,
    SkillRead,
    TaskIn,
    TaskRead,
)
from ngo_kit.schemas import Amount, Day, Moment, Name, Prose, Text, check, coerce
from ngo_kit.statements import Statements, bind
from ngo_kit.tenancy import Membership, Organisation, OrgRead
from ngo_kit.tokens import tokens_for

if TYPE_CHECKING:
    from ngo_kit.context import Context

CONFIRMED, WAITLISTED, CANCELLED, ATTENDED, NO_SHOW = (
    "confirmed",
    "waitlisted",
    "cancelled",
    "attended",
    "no_show",
)
ACTIVE = (CONFIRMED, WAITLISTED)
CHECKIN_PURPOSE = "volunteer.checkin"
PASS_PURPOSE = "volunteer.checkin-pass"
CERTIFICATE_PURPOSE = "volunteer.certificate"
HOURS_CHAIN = "volunteer_hours"
ZERO = Decimal(0)
HOURS_PLACES = Decimal("0.01")

#: Per-organisation settings (``org.settings["volunteer"]``) and their defaults.
DEFAULT_SETTINGS: dict[str, Any] = {
    "hours_rounding_minutes": 15,
    "hours_rounding": "nearest",  # or "down" / "up"
    "hours_within_shift": True,  # count only the time inside the shift's start and end
    "checkin_opens_minutes": 30,  # before the start
    "checkin_closes_minutes": 60,  # after the end
    "cancel_cutoff_hours": 0,  # used when the shift sets none
    # the verification page: a path below the kit's public_base_url, or an absolute address
    "certificate_verify_url": "/api/certificates/verify",
    "self_service_certificates": False,  # volunteers may issue their own certificates
    "match_recent_days": 30,
}


_CERTIFICATE_FIELDS = (
    "id",
    "number",
    "org_id",
    "user_id",
    "hours",
    "period_from",
    "period_to",
    "issued_at",
)


# --- hot-path statements (compiled once per dialect) -----------------------------------


def _locking(stmt: Any, dialect: str) -> Any:
    return stmt if dialect == "sqlite" else stmt.with_for_update()


_SIGNUP_COLUMNS = [c for c in SignUp.__table__.columns]


def _still_member() -> sa.Exists:
    """The profile's person is a member of its organisation (a profile outlives a membership)."""
    return sa.exists().where(
        Membership.org_id == Profile.org_id, Membership.actor_id == Profile.user_id
    )


SQL = Statements(
    {
        "shift": lambda d: sa.select(
            Shift.id,
            Shift.org_id,
            Shift.status,
            Shift.starts_at,
            Shift.ends_at,
            Shift.required_skills,
            Shift.required_certifications,
            Shift.min_age,
        ).where(Shift.org_id == bind("o", Shift.org_id), Shift.id == bind("s", Shift.id)),
        "roles": lambda d: sa.select(*ShiftRole.__table__.columns).where(
            ShiftRole.org_id == bind("o", ShiftRole.org_id),
            ShiftRole.shift_id == bind("s", ShiftRole.shift_id),
        ),
        "profile_lock": lambda d: _locking(
            sa.select(Profile.status).where(
                Profile.org_id == bind("o", Profile.org_id),
                Profile.user_id == bind("u", Profile.user_id),
                _still_member(),
            ),
            d,
        ),
        "previous": lambda d: sa.select(SignUp.id, SignUp.status).where(
            SignUp.org_id == bind("o", SignUp.org_id),
            SignUp.shift_id == bind("s", SignUp.shift_id),
            SignUp.user_id == bind("u", SignUp.user_id),
        ),
        "clash": lambda d: (
            sa.select(SignUp.shift_id)
            .where(
                SignUp.org_id == bind("o", SignUp.org_id),
                SignUp.user_id == bind("u", SignUp.user_id),
                sa.or_(SignUp.status == CONFIRMED, SignUp.status == WAITLISTED),
                SignUp.starts_at < bind("e", SignUp.starts_at),
                SignUp.ends_at > bind("b", SignUp.ends_at),
                SignUp.shift_id != bind("s", SignUp.shift_id),
            )
            .limit(1)
        ),
        "arrive": lambda d: (
            sa.update(Shift)
            .where(Shift.id == bind("s", Shift.id), Shift.status == "open")
            .values(arrivals=Shift.arrivals + 1)
        ),
        "arrivals": lambda d: sa.select(Shift.arrivals).where(Shift.id == bind("s", Shift.id)),
        "arrive_returning": lambda d: (
            sa.update(Shift)
            .where(Shift.id == bind("s", Shift.id), Shift.status == "open")
            .values(arrivals=Shift.arrivals + 1)
            .returning(Shift.arrivals)
        ),
        "profile_touch": lambda d: (
            sa.update(Profile)
            .where(
                Profile.org_id == bind("o", Profile.org_id),
                Profile.user_id == bind("u", Profile.user_id),
                _still_member(),
            )
            .values(last_signed_up_at=bind("n", Profile.last_signed_up_at))
            .returning(Profile.status)
        ),
        "take_role": lambda d: (
            sa.update(ShiftRole)
            .where(ShiftRole.id == bind("r", ShiftRole.id), ShiftRole.taken < ShiftRole.capacity)
            .values(taken=ShiftRole.taken + 1)
        ),
        "take_shift": lambda d: (
            sa.update(Shift)
            .where(Shift.id == bind("s", Shift.id), Shift.taken < Shift.capacity)
            .values(taken=Shift.taken + 1)
        ),
        "insert": lambda d: sa.insert(SignUp).values(
            {c.name: sa.bindparam(c.name, type_=c.type) for c in _SIGNUP_COLUMNS}
        ),
        "touch": lambda d: (
            sa.update(Profile)
            .where(
                Profile.org_id == bind("o", Profile.org_id),
                Profile.user_id == bind("u", Profile.user_id),
            )
            .values(last_signed_up_at=bind("n", Profile.last_signed_up_at))
        ),
        "insert_profiles": lambda d: sa.insert(Profile).values(
            {
                c.name: sa.bindparam(c.name, type_=c.type)
                for c in Profile.__table__.columns
                if c.name != "last_signed_up_at"
            }
        ),
        "insert_skills": lambda d: sa.insert(ProfileSkill).values(
            {c.name: sa.bindparam(c.name, type_=c.type) for c in ProfileSkill.__table__.columns}
        ),
        "position": lambda d: sa.select(sa.func.count().label("ahead")).where(
            SignUp.shift_id == bind("s", SignUp.shift_id),
            SignUp.status == WAITLISTED,
            SignUp.seq < bind("q", SignUp.seq),
        ),
    }
)


# --- errors -----------------------------------------------------------------------------


class NotEligible(Conflict):
    """The volunteer does not meet the shift's requirements; ``rule`` says which one."""

    code = "not_eligible"
    template = "Not eligible for this shift: {reason}"

    def __init__(self, rule: str, reason: str, **params: Any) -> None:
        self.rule = rule
        super().__init__(rule=rule, reason=LocalisedText(reason, **params), **params)


class DoubleBooked(Conflict):
    """The volunteer already holds a place on a shift that overlaps this one."""

    code = "double_booked"
    template = "Already signed up to an overlapping shift ({shift_id})."


class CancellationClosed(Conflict):
    """The shift's cancellation cut-off has passed; a coordinator can still cancel."""

    code = "cancellation_closed"
    template = "Cancellation closed {hours} hours before the shift starts."


class ShiftClosed(Conflict):
    """The shift is completed, cancelled or already started: no sign-ups or changes."""

    code = "shift_closed"
    template = "The shift is closed."


class CheckInClosed(TokenInvalid):
    """A check-in code was used outside the window around its shift."""

    code = "checkin_closed"
    template = "Check-in is open from {opens} to {closes} only."


class TokenForAnotherShift(TokenInvalid):
    """A check-in code belongs to a different shift."""

    code = "token_other_shift"
    template = "This check-in code is for another shift."


class AlreadyReversed(Conflict):
    """An hours entry can be reversed once, and a reversal cannot be reversed."""

    code = "already_reversed"
    template = "Hours entry {entry} is already reversed or is itself a reversal."


class TaskOverAssigned(Conflict):
    """Assignments would add up to more than the task's quantity."""

    code = "task_over_assigned"
    template = "Only {available} of the task is left to assign."


class WrongState(Conflict):
    """The thing is not in a state that allows this step."""

    code = "wrong_state"
    template = "{kind} is {state}; this needs {needed}."


# --- helpers ----------------------------------------------------------------------------


def round_hours(seconds: float, minutes: int, mode: str) -> Decimal:
    """Round a duration to a multiple of ``minutes`` (``nearest``, ``down`` or ``up``), in hours."""
    if seconds <= 0:
        return ZERO
    units = Decimal(int(seconds)) / Decimal(60 * minutes)
    rounding = {"down": ROUND_FLOOR, "up": ROUND_CEILING}.get(mode, ROUND_HALF_UP)
    whole = units.quantize(Decimal(1), rounding=rounding)
    return (whole * Decimal(minutes) / Decimal(60)).quantize(HOURS_PLACES)


def name_keys(name: str) -> tuple[str, str, str]:
    """Search keys for a name: lowercase without spaces, full pinyin, initials.

    ``张三丰`` gives ``("张三丰", "zhangsanfeng", "zsf")``; ``Anna Smith`` gives
    ``("annasmith", "annasmith", "as")``.
    """
    from pypinyin import Style, lazy_pinyin

    words = name.lower().split()
    compact = "".join(words)
    full = "".join(lazy_pinyin(compact, errors="default"))
    initials = ""
    for word in words:
        letters = lazy_pinyin(word, style=Style.FIRST_LETTER, errors=lambda chars: chars[0])
        initials += "".join(p[0] for p in letters if p)
    return compact[:300], full[:600], initials[:100]


def age_on(birth: dt.date, day: dt.date) -> int:
    """Whole years between ``birth`` and ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _actor(tx: Context) -> str:
    from ngo_kit.audit import actor_label

    return actor_label(tx.actor)


class VolunteerService(CertificateExtras):
    """``tx.volunteer``: profiles, shifts, sign-ups, attendance, hours, certificates, tasks."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    # --- common ---------------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """This organisation's volunteer settings, defaults filled in."""
        own = self.tx.require_org().settings.get("volunteer") or {}
        return {**DEFAULT_SETTINGS, **own}

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The organisation's time zone."""
        return zoneinfo.ZoneInfo(self.tx.require_org().timezone)

    def _for_self_or(self, user_id: uuid.UUID | None, permission: str) -> uuid.UUID:
        """The person acted on: the actor themselves, or anyone when the actor holds ``permission``."""
        tx = self.tx
        if user_id is None:
            if tx.actor_id is None:
                raise ValidationFailed("user_id", "missing")
            return tx.actor_id
        if user_id != tx.actor_id:
            tx.require(permission)
        return user_id

    def _people(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
        """Accounts from the registration module, read with system rights: the module needs
        birth dates, names and contacts for its own rules, whoever the actor is."""
        if not ids:
            return {}
        with self.tx.elevated():
            return dict(self.tx.registration.users(list(ids)))

    def _person(self, user_id: uuid.UUID) -> Any | None:
        return self._people([user_id]).get(user_id)

    def _is_member(self, user_id: uuid.UUID) -> bool:
        return (
            self.tx.session.scalar(
                sa.select(Membership.id).where(
                    Membership.org_id == self.tx.org_id, Membership.actor_id == user_id
                )
            )
            is not None
        )

    # --- skills and profiles ----------------------------------------------------------------

    def add_skill(self, code: str, name: str) -> SkillRead:
        """Put a skill on the organisation's list (``volunteer.manage``)."""
        tx = self.tx
        tx.require("volunteer.manage")
        from ngo_kit.modules.volunteer.schemas import _code

        name = check("name", Name, name)
        try:
            _code(code)
        except Exception:
            raise ValidationFailed("code", "invalid_skill_code") from None
        with tx.translate_integrity(AlreadyExists("Skill", code)):
            tx.session.execute(
                sa.insert(Skill).values(id=new_id(), org_id=tx.org_id, code=code, name=name)
            )
        tx.audit("volunteer.skill_added", "skill", code, f"skill {code} added")
        return SkillRead(code=code, name=name)

    def skills(self) -> list[SkillRead]:
        """The organisation's skill list."""
        rows = self.tx.session.execute(
            sa.select(Skill.code, Skill.name)
            .where(Skill.org_id == self.tx.org_id)
            .order_by(Skill.code)
        )
        return [SkillRead(code=c, name=n) for c, n in rows]

    def save_profile(
        self, data: ProfileIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ProfileRead:
        """Create or update a member's volunteer profile (the member, or ``volunteer.manage``).

        A new profile starts as ``applicant``. Skills must be on the organisation's list.
        Raises ``NotFound`` ("Member") for someone who is not a member of the organisation.
        """
        tx = self.tx
        spec = coerce(ProfileIn, data, kwargs)
        self._for_self_or(spec.user_id, "volunteer.manage")
        if not self._is_member(spec.user_id):
            raise NotFound("Member", spec.user_id)
        self._check_skills(spec.skills)
        custom = self._validate_custom_fields(spec.custom_fields)
        values: dict[str, Any] = {
            "languages": spec.languages,
            "city": spec.city,
            "district": spec.district,
            "latitude": spec.latitude,
            "longitude": spec.longitude,
            "availability": [w.model_dump() for w in spec.availability],
            "unavailable_dates": sorted({d.isoformat() for d in spec.unavailable_dates}),
            "emergency_contact_name": spec.emergency_contact_name,
            "emergency_contact_phone": spec.emergency_contact_phone,
            "custom_fields": custom,
        }
        session = tx.session
        existing = session.scalar(
            sa.select(Profile.id).where(
                Profile.org_id == tx.org_id, Profile.user_id == spec.user_id
            )
        )
        if existing is None:
            with tx.translate_integrity(AlreadyExists("Volunteer", spec.user_id)):
                session.execute(
                    sa.insert(Profile).values(
                        id=new_id(),
                        org_id=tx.org_id,
                        user_id=spec.user_id,
                        status="applicant",
                        created_at=utcnow(),
                        hours_total=ZERO,
                        attended_count=0,
                        no_show_count=0,
                        **values,
                    )
                )
            action = "volunteer.profile_created"
        else:
            session.execute(sa.update(Profile).where(Profile.id == existing).values(**values))
            action = "volunteer.profile_updated"
        self._replace_skills(spec.user_id, spec.skills)
        self._replace_certifications(spec.user_id, spec.certifications)
        self._index_names([spec.user_id])
        tx.audit(action, "volunteer", spec.user_id, action.split(".")[1].replace("_", " "))
        return self.profile(spec.user_id)

    def _check_skills(self, skills: Mapping[str, int]) -> None:
        if not skills:
            return
        known = set(
            self.tx.session.scalars(
                sa.select(Skill.code).where(
                    Skill.org_id == self.tx.org_id, Skill.code.in_(list(skills))
                )
            )
        )
        unknown = sorted(set(skills) - known)
        if unknown:
            raise ValidationFailed(
                "skills",
                "unknown_skill",
                "is not on the organisation's skill list: {skill}",
                skill=unknown[0],
            )

    def _validate_custom_fields(self, values: dict[str, Any]) -> dict[str, Any]:
        if not values:
            return values
        checked = self.tx.registration.validate_fields("volunteer", values, prefix="custom_fields")
        return dict(checked)

    def _replace_skills(self, user_id: uuid.UUID, skills: Mapping[str, int]) -> None:
        tx = self.tx
        tx.session.execute(
            sa.delete(ProfileSkill).where(
                ProfileSkill.org_id == tx.org_id, ProfileSkill.user_id == user_id
            )
        )
        if skills:
            tx.session.execute(
                sa.insert(ProfileSkill),
                [
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "user_id": user_id,
                        "skill": s,
                        "level": lvl,
                    }
                    for s, lvl in sorted(skills.items())
                ],
            )

    def _replace_certifications(
        self, user_id: uuid.UUID, certs: Mapping[str, dt.date | None]
    ) -> None:
        tx = self.tx
        tx.session.execute(
            sa.delete(Certification).where(
                Certification.org_id == tx.org_id, Certification.user_id == user_id
            )
        )
        if certs:
            tx.session.execute(
                sa.insert(Certification),
                [
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "user_id": user_id,
                        "kind": k,
                        "valid_until": v,
                    }
                    for k, v in sorted(certs.items())
                ],
            )

    def _index_names(self, ids: Sequence[uuid.UUID]) -> None:
        people = self._people(ids)
        if not people:
            return
        tx = self.tx
        tx.session.execute(
            sa.delete(NameIndex).where(
                NameIndex.org_id == tx.org_id, NameIndex.user_id.in_(list(people))
            )
        )
        rows = []
        for uid, person in people.items():
            key, full, initials = name_keys(str(getattr(person, "display_name", "") or ""))
            rows.append(
                {
                    "org_id": tx.org_id,
                    "user_id": uid,
                    "name_key": key,
                    "pinyin": full,
                    "initials": initials,
                }
            )
        tx.session.execute(sa.insert(NameIndex), rows)

    def reindex_names(self) -> int:
        """Rebuild the name search index from the registration module (``volunteer.manage``)."""
        self.tx.require("volunteer.manage")
        ids = list(
            self.tx.session.scalars(
                sa.select(Profile.user_id).where(Profile.org_id == self.tx.org_id)
            )
        )
        for start in range(0, len(ids), 1000):
            self._index_names(ids[start : start + 1000])
        return len(ids)

    def profile(self, user_id: uuid.UUID | None = None) -> ProfileRead:
        """A volunteer's profile (their own, or anyone's with ``volunteer.view``)."""
        tx = self.tx
        user_id = self._for_self_or(user_id, "volunteer.view")
        row = tx.session.scalar(
            sa.select(Profile).where(Profile.org_id == tx.org_id, Profile.user_id == user_id)
        )
        if row is None:
            raise NotFound("Volunteer", user_id)
        return self._profile_read(row)

    def _profile_read(self, row: Profile) -> ProfileRead:
        tx = self.tx
        skills = dict(
            tx.session.execute(
                sa.select(ProfileSkill.skill, ProfileSkill.level).where(
                    ProfileSkill.org_id == tx.org_id, ProfileSkill.user_id == row.user_id
                )
            ).all()
        )
        certs = dict(
            tx.session.execute(
                sa.select(Certification.kind, Certification.valid_until).where(
                    Certification.org_id == tx.org_id, Certification.user_id == row.user_id
                )
            ).all()
        )
        return ProfileRead(
            id=row.id,
            user_id=row.user_id,
            status=row.status,
            skills=skills,
            certifications=certs,
            languages=list(row.languages or []),
            city=row.city,
            district=row.district,
            latitude=row.latitude,
            longitude=row.longitude,
            availability=list(row.availability or []),
            unavailable_dates=[dt.date.fromisoformat(d) for d in row.unavailable_dates or []],
            emergency_contact_name=row.emergency_contact_name,
            emergency_contact_phone=row.emergency_contact_phone,
            custom_fields=dict(row.custom_fields or {}),
            hours_total=row.hours_total,
            attended_count=row.attended_count,
            no_show_count=row.no_show_count,
            approved_at=row.approved_at,
        )

    def approve(self, user_id: uuid.UUID) -> ProfileRead:
        """Approve an applicant (``volunteer.manage``); fires ``ngo_kit_volunteer_approved``."""
        tx = self.tx
        tx.require("volunteer.manage")
        result = tx.session.execute(
            sa.update(Profile)
            .where(
                Profile.org_id == tx.org_id,
                Profile.user_id == user_id,
                Profile.status != "approved",
            )
            .values(status="approved", approved_at=utcnow())
        )
        if _rows(result) != 1:
            current = self.profile(user_id)  # NotFound when there is no profile
            raise WrongState(kind="Volunteer", state=current.status, needed="applicant or inactive")
        tx.audit("volunteer.approved", "volunteer", user_id, "volunteer approved")
        profile = self.profile(user_id)
        tx.emit("ngo_kit_volunteer_approved", profile=profile)
        return profile

    def deactivate(self, user_id: uuid.UUID) -> ProfileRead:
        """Mark a volunteer inactive (``volunteer.manage``): no new sign-ups."""
        tx = self.tx
        tx.require("volunteer.manage")
        result = tx.session.execute(
            sa.update(Profile)
            .where(Profile.org_id == tx.org_id, Profile.user_id == user_id)
            .values(status="inactive")
        )
        if _rows(result) != 1:
            raise NotFound("Volunteer", user_id)
        tx.audit("volunteer.deactivated", "volunteer", user_id, "volunteer inactive")
        return self.profile(user_id)

    # --- activities and shifts ------------------------------------------------------------

    def create_activity(
        self, data: ActivityIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ActivityRead:
        """A new activity (``shifts.manage``)."""
        tx = self.tx
        tx.require("shifts.manage")
        spec = coerce(ActivityIn, data, kwargs)
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "title": spec.title,
            "description": spec.description,
            "place": spec.place,
            "status": "open",
            "created_at": utcnow(),
        }
        tx.session.execute(sa.insert(Activity).values(**values))
        tx.audit("volunteer.activity_created", "activity", values["id"], spec.title)
        return ActivityRead.model_validate(values)

    def activity(self, activity_id: uuid.UUID) -> ActivityRead:
        """One activity of this organisation."""
        return ActivityRead.model_validate(self.tx.get_owned(Activity, activity_id, "Activity"))

    def activities(self) -> list[ActivityRead]:
        """The organisation's activities, newest first."""
        rows = self.tx.session.scalars(
            sa.select(Activity)
            .where(Activity.org_id == self.tx.org_id)
            .order_by(Activity.created_at.desc())
        )
        return [ActivityRead.model_validate(r) for r in rows]

    def _aware(self, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    def create_shift(
        self, data: ShiftIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ShiftRead:
        """A shift of an activity (``shifts.manage``); naive times are in the organisation's zone."""
        return self.create_shifts([coerce(ShiftIn, data, kwargs)])[0]

    def create_shifts(self, specs: Iterable[ShiftIn | dict[str, Any]]) -> list[ShiftRead]:
        """Create many shifts at once (bulk creation, ``shifts.manage``)."""
        tx = self.tx
        tx.require("shifts.manage")
        items = [coerce(ShiftIn, s, {}) for s in specs]
        activity_ids = {s.activity_id for s in items}
        for activity_id in activity_ids:
            tx.get_owned(Activity, activity_id, "Activity")
        shift_rows: list[dict[str, Any]] = []
        role_rows: list[dict[str, Any]] = []
        for spec in items:
            shift_id = new_id()
            shift_rows.append(
                {
                    "id": shift_id,
                    "org_id": tx.org_id,
                    "activity_id": spec.activity_id,
                    "starts_at": self._aware(spec.starts_at),
                    "ends_at": self._aware(spec.ends_at),
                    "place": spec.place,
                    "city": spec.city,
                    "district": spec.district,
                    "latitude": spec.latitude,
                    "longitude": spec.longitude,
                    "capacity": spec.total_capacity,
                    "taken": 0,
                    "arrivals": 0,
                    "required_skills": spec.required_skills,
                    "required_certifications": spec.required_certifications,
                    "min_age": spec.min_age,
                    "cancel_cutoff_hours": spec.cancel_cutoff_hours,
                    "status": "open",
                }
            )
            for role in spec.roles:
                role_rows.append(
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "shift_id": shift_id,
                        "name": role.name,
                        "capacity": role.capacity,
                        "taken": 0,
                        "required_skills": role.required_skills,
                    }
                )
        if not shift_rows:
            return []
        tx.session.execute(sa.insert(Shift), shift_rows)
        if role_rows:
            with tx.translate_integrity(
                ValidationFailed(
                    "roles", "duplicate_role", "each role name may appear once per shift"
                )
            ):
                tx.session.execute(sa.insert(ShiftRole), role_rows)
        tx.audit(
            "volunteer.shifts_created",
            "activity",
            items[0].activity_id,
            f"{len(shift_rows)} shift(s) created",
            data={"shifts": [str(r["id"]) for r in shift_rows[:100]]},
        )
        return self._shift_reads([r["id"] for r in shift_rows])

    def create_recurring_shifts(
        self, data: RecurringShiftsIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> list[ShiftRead]:
        """Shifts repeating by an RRULE from the first one, in the organisation's local time."""
        from dateutil.rrule import rrulestr

        spec = coerce(RecurringShiftsIn, data, kwargs)
        first = spec.first
        start_local = self._aware(first.starts_at).astimezone(self.zone).replace(tzinfo=None)
        length = self._aware(first.ends_at) - self._aware(first.starts_at)
        try:
            rule = rrulestr(spec.rule, dtstart=start_local)
        except (ValueError, TypeError) as exc:
            raise ValidationFailed("rule", "invalid_rrule", error=str(exc)) from None
        occurrences: list[dt.datetime] = []
        for when in rule:
            if len(occurrences) >= spec.limit:
                raise ValidationFailed("rule", "too_many_shifts", limit=spec.limit)
            occurrences.append(when)
        shifts = []
        for when in occurrences:
            local = when.replace(tzinfo=self.zone)
            shifts.append(first.model_copy(update={"starts_at": local, "ends_at": local + length}))
        return self.create_shifts(shifts)

    def clone_activity(
        self,
        activity_id: uuid.UUID,
        *,
        title: str | None = None,
        shift_offset: dt.timedelta = dt.timedelta(0),
    ) -> ActivityRead:
        """Copy an activity and its shifts (moved by ``shift_offset``), places empty (``shifts.manage``)."""
        title = check("title", Name | None, title)
        source = self.activity(activity_id)
        copy = self.create_activity(
            title=title or source.title, description=source.description, place=source.place
        )
        specs = []
        for shift in self.shifts(activity_id=activity_id):
            specs.append(
                ShiftIn(
                    activity_id=copy.id,
                    starts_at=shift.starts_at + shift_offset,
                    ends_at=shift.ends_at + shift_offset,
                    capacity=shift.capacity,
                    roles=[
                        {
                            "name": r.name,
                            "capacity": r.capacity,
                            "required_skills": r.required_skills,
                        }
                        for r in shift.roles
                    ],
                    place=shift.place,
                    city=shift.city,
                    district=shift.district,
                    latitude=shift.latitude,
                    longitude=shift.longitude,
                    required_skills=shift.required_skills,
                    required_certifications=shift.required_certifications,
                    min_age=shift.min_age,
                    cancel_cutoff_hours=shift.cancel_cutoff_hours,
                )
            )
        self.create_shifts(specs)
        return copy

    def shift(self, shift_id: uuid.UUID) -> ShiftRead:
        """One shift with its roles and places taken."""
        reads = self._shift_reads([self.tx.get_owned(Shift, shift_id, "Shift").id])
        return reads[0]

    def shifts(
        self,
        *,
        activity_id: uuid.UUID | None = None,
        starts_after: dt.datetime | None = None,
        starts_before: dt.datetime | None = None,
        open_only: bool = False,
    ) -> list[ShiftRead]:
        """Shifts of this organisation in start order, optionally of one activity or period.

        Naive times are in the organisation's zone.
        """
        starts_after = check("starts_after", Moment | None, starts_after)
        starts_before = check("starts_before", Moment | None, starts_before)
        stmt = sa.select(Shift.id).where(Shift.org_id == self.tx.org_id)
        if activity_id is not None:
            stmt = stmt.where(Shift.activity_id == activity_id)
        if starts_after is not None:
            stmt = stmt.where(Shift.starts_at >= self._aware(starts_after))
        if starts_before is not None:
            stmt = stmt.where(Shift.starts_at < self._aware(starts_before))
        if open_only:
            stmt = stmt.where(Shift.status == "open")
        return self._shift_reads(
            list(self.tx.session.scalars(stmt.order_by(Shift.starts_at, Shift.id)))
        )

    def _shift_reads(self, ids: Sequence[uuid.UUID]) -> list[ShiftRead]:
        if not ids:
            return []
        session, org_id = self.tx.session, self.tx.org_id
        roles: dict[uuid.UUID, list[RoleRead]] = {}
        shifts: dict[uuid.UUID, Shift] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for row in session.scalars(
                sa.select(Shift).where(Shift.org_id == org_id, Shift.id.in_(chunk))
            ):
                shifts[row.id] = row
            for role in session.scalars(
                sa.select(ShiftRole)
                .where(ShiftRole.org_id == org_id, ShiftRole.shift_id.in_(chunk))
                .order_by(ShiftRole.name)
            ):
                roles.setdefault(role.shift_id, []).append(RoleRead.model_validate(role))
        out = []
        for ident in ids:
            row = shifts[ident]
            out.append(self._shift_read(row, tuple(roles.get(ident, ()))))
        return out

    @staticmethod
    def _shift_read(row: Any, roles: tuple[RoleRead, ...] = ()) -> ShiftRead:
        return ShiftRead(
            id=row.id,
            activity_id=row.activity_id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            place=row.place,
            city=row.city,
            district=row.district,
            latitude=row.latitude,
            longitude=row.longitude,
            capacity=row.capacity,
            taken=row.taken,
            required_skills=list(row.required_skills or []),
            required_certifications=list(row.required_certifications or []),
            min_age=row.min_age,
            cancel_cutoff_hours=row.cancel_cutoff_hours,
            status=row.status,
            roles=roles,
        )

    # --- sign-up, waitlist, cancellation --------------------------------------------------

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
            tx.emit("ngo_kit_shift_signed_up", shift=self.shift(shift.id), signup=signup)
        return signup

    def _signup_by_key(self, keyed: dict[str, Any]) -> SignUpRead | None:
        """The sign-up made with ``keyed``'s key in its scope; ``KeyReused`` when that one had
        other parameters."""
        row = idempotency.first_row(self.tx, SignUp, keyed)
        return self._signup_read(row) if row is not None else None

    def _signup_read(self, row: SignUp) -> SignUpRead:
        read = SignUpRead.model_validate(row)
        if row.status == WAITLISTED:
            read = read.model_copy(update={"position": self._position(row.shift_id, row.seq)})
        return read

    def _position(self, shift_id: uuid.UUID, seq: int) -> int:
        found = SQL(self.tx, "position").first(self.tx, s=shift_id, q=seq)
        return int(found["ahead"] if found else 0) + 1

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
        fresh = self.shift(shift.id)
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
        shift = self.shift(shift_id)
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

    # --- attendance -----------------------------------------------------------------------

    def checkin_token(self, shift_id: uuid.UUID) -> str:
        """A signed check-in code for the shift's door poster (``attendance.record``)."""
        self.tx.require("attendance.record")
        shift = self.tx.get_owned(Shift, shift_id, "Shift")
        return tokens_for(self.tx.kit).sign(
            CHECKIN_PURPOSE, {"s": str(shift.id), "o": str(self.tx.org_id)}
        )

    def checkin_qr(self, shift_id: uuid.UUID, *, kind: str = "svg", scale: int = 4) -> bytes:
        """The check-in code as a QR image (``svg`` or ``png``) for the door."""
        return _qr(self.checkin_token(shift_id), kind, scale)

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
        return self._record_hours(
            user_id=row.user_id,
            hours=hours,
            source="attendance",
            served_on=shift.starts_at.astimezone(self.zone).date(),
            activity_id=shift.activity_id,
            shift_id=shift.id,
            signup_id=row.id,
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
        tx.emit("ngo_kit_shift_completed", shift=self.shift(shift.id), attendance=attendance)
        return attendance

    # --- hours ----------------------------------------------------------------------------

    def _record_hours(
        self,
        *,
        user_id: uuid.UUID,
        hours: Decimal,
        source: str,
        served_on: dt.date,
        activity_id: uuid.UUID | None = None,
        shift_id: uuid.UUID | None = None,
        signup_id: uuid.UUID | None = None,
        claim_id: uuid.UUID | None = None,
        assignment_id: uuid.UUID | None = None,
        reverses: HoursRead | None = None,
        note: str = "",
    ) -> HoursRead:
        """Append one ledger entry and move the profile's total, in one transaction.

        Locks in order: the profile row (guarded: the total never goes negative), the chain
        head (``append_chained``), then the audit head.
        """
        tx = self.tx
        moved = tx.session.execute(
            sa.update(Profile)
            .where(
                Profile.org_id == tx.org_id,
                Profile.user_id == user_id,
                Profile.hours_total + hours >= 0,
            )
            .values(hours_total=Profile.hours_total + hours)
        )
        if _rows(moved) != 1:
            raise NotFound("Volunteer", user_id)
        values = {
            "id": new_id(),
            "at": utcnow(),
            "user_id": user_id,
            "hours": hours,
            "source": source,
            "activity_id": activity_id,
            "shift_id": shift_id,
            "signup_id": signup_id,
            "claim_id": claim_id,
            "assignment_id": assignment_id,
            "reverses_id": reverses.id if reverses else None,
            "served_on": served_on,
            "recorded_by": _actor(tx),
            "note": note[:500],
        }
        with tx.translate_integrity(AlreadyReversed(entry=str(reverses.id) if reverses else "?")):
            row = append_chained(tx, HOURS_CHAIN, HoursEntry.__table__, values, HOURS_FIELDS)  # type: ignore[arg-type]
        entry = HoursRead.model_validate({k: row[k] for k in HoursRead.model_fields})
        tx.audit(
            "volunteer.hours_reversed" if reverses else "volunteer.hours_recorded",
            "volunteer",
            user_id,
            f"{hours} h ({source})",
            data={"entry": str(entry.id), "hours": str(hours)},
        )
        if reverses is None:
            tx.emit("ngo_kit_hours_approved", hours=entry)
        else:
            tx.emit("ngo_kit_hours_reversed", hours=entry, original=reverses)
        return entry

    def record_hours(
        self,
        user_id: uuid.UUID,
        hours: Decimal | int | str,
        *,
        served_on: dt.date,
        activity_id: uuid.UUID | None = None,
        note: str = "",
    ) -> HoursRead:
        """Enter hours directly (``hours.approve``), for work recorded outside shifts.

        Nobody records their own hours this way (``SelfActionRefused``: claim them and let
        someone else approve) unless the organisation allows self-action for ``hours.approve``.
        """
        self.tx.require_for("hours.approve", user_id)
        amount = self._positive_hours(hours)
        served_on = check("served_on", Day, served_on)
        note = check("note", Prose, note)
        self._require_volunteer(user_id)
        if activity_id is not None:
            self.tx.get_owned(Activity, activity_id, "Activity")
        return self._record_hours(
            user_id=user_id,
            hours=amount,
            source="manual",
            served_on=served_on,
            activity_id=activity_id,
            note=note,
        )

    @staticmethod
    def _positive_hours(hours: Decimal | int | str) -> Decimal:
        amount: Decimal = check("hours", Amount, hours).quantize(HOURS_PLACES)
        if amount <= 0 or amount > 10_000:
            raise ValidationFailed("hours", "not_positive_amount")
        return amount

    def reverse_hours(self, entry_id: uuid.UUID, *, reason: str) -> HoursRead:
        """Correct a mistake (``hours.approve``): a negative entry pointing at the original.

        Raises ``AlreadyReversed`` for an entry reversed before or a reversal itself;
        fires ``ngo_kit_hours_reversed``.
        """
        tx = self.tx
        tx.require("hours.approve")
        reason = check("reason", Text, reason)
        if not reason.strip():
            raise ValidationFailed("reason", "blank")
        original = HoursRead.model_validate(tx.get_owned(HoursEntry, entry_id, "Hours"))
        if original.reverses_id is not None or original.hours <= 0:
            raise AlreadyReversed(entry=str(entry_id))
        done = tx.session.scalar(
            sa.select(HoursEntry.id).where(
                HoursEntry.org_id == tx.org_id, HoursEntry.reverses_id == original.id
            )
        )
        if done is not None:
            raise AlreadyReversed(entry=str(entry_id))
        return self._record_hours(
            user_id=original.user_id,
            hours=-original.hours,
            source="reversal",
            served_on=original.served_on,
            activity_id=original.activity_id,
            shift_id=original.shift_id,
            reverses=original,
            note=reason,
        )

    def hours(self, user_id: uuid.UUID | None = None) -> list[HoursRead]:
        """A volunteer's ledger entries, oldest first (their own, or ``volunteer.view``)."""
        tx = self.tx
        user_id = self._for_self_or(user_id, "volunteer.view")
        rows = tx.session.scalars(
            sa.select(HoursEntry)
            .where(HoursEntry.org_id == tx.org_id, HoursEntry.user_id == user_id)
            .order_by(HoursEntry.seq)
        )
        return [HoursRead.model_validate(r) for r in rows]

    def claim_hours(
        self, data: ClaimIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ClaimRead:
        """Report hours for approval (the volunteer, or ``volunteer.manage`` for someone)."""
        tx = self.tx
        spec = coerce(ClaimIn, data, kwargs)
        user_id = self._for_self_or(spec.user_id, "volunteer.manage")
        keyed = idempotency.keyed(
            tx,
            "volunteer.claim_hours",
            spec.key,
            user_id=user_id,
            served_on=spec.served_on,
            hours=spec.hours,
            activity_id=spec.activity_id,
        )  # the description is a note: a retry that rewords it is the same claim
        if spec.key is not None:  # a repeat returns the first claim, whatever changed since
            found = self._claim_by_key(keyed)
            if found is not None:
                return found
        self._require_volunteer(user_id)
        if spec.activity_id is not None:
            tx.get_owned(Activity, spec.activity_id, "Activity")
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "user_id": user_id,
            "activity_id": spec.activity_id,
            "served_on": spec.served_on,
            "hours": spec.hours,
            "description": spec.description,
            "status": "pending",
            "created_at": utcnow(),
            "decided_by": None,
            "decided_at": None,
            "reason": "",
            **keyed,
        }
        try:
            with tx.savepoint():
                tx.session.execute(sa.insert(HoursClaim).values(**values))
        except sa.exc.IntegrityError:
            found = self._claim_by_key(keyed) if spec.key is not None else None
            if found is None:
                raise
            return found
        tx.audit("volunteer.hours_claimed", "volunteer", user_id, f"{spec.hours} h claimed")
        return ClaimRead.model_validate(values)

    def profile_exists(self, user_id: uuid.UUID) -> None:
        """Raise ``NotFound`` ("Volunteer") unless ``user_id`` has a profile here."""
        found = self.tx.session.scalar(
            sa.select(Profile.id).where(
                Profile.org_id == self.tx.org_id, Profile.user_id == user_id
            )
        )
        if found is None:
            raise NotFound("Volunteer", user_id)

    def _claim_by_key(self, keyed: dict[str, Any]) -> ClaimRead | None:
        """The claim made with ``keyed``'s key in its scope; ``KeyReused`` when that one had
        other parameters."""
        row = idempotency.first_row(self.tx, HoursClaim, keyed)
        return ClaimRead.model_validate(row) if row is not None else None

    def _require_volunteer(self, user_id: uuid.UUID) -> None:
        """``NotFound`` ("Volunteer", naming ``user_id``) unless ``user_id`` has a profile here
        and is still a member: hours and work go to the organisation's members only."""
        found = self.tx.session.scalar(
            sa.select(Profile.id).where(
                Profile.org_id == self.tx.org_id, Profile.user_id == user_id, _still_member()
            )
        )
        if found is None:
            raise NotFound("Volunteer", user_id, field="user_id")

    def claims(self, *, status: str | None = "pending") -> list[ClaimRead]:
        """Claims of this organisation, oldest first (``hours.approve``)."""
        tx = self.tx
        tx.require("hours.approve")
        stmt = sa.select(HoursClaim).where(HoursClaim.org_id == tx.org_id)
        if status is not None:
            stmt = stmt.where(HoursClaim.status == status)
        return [
            ClaimRead.model_validate(r)
            for r in tx.session.scalars(stmt.order_by(HoursClaim.created_at))
        ]

    def approve_claim(self, claim_id: uuid.UUID) -> HoursRead:
        """Accept a claim (``hours.approve``): its hours enter the ledger, ``ngo_kit_hours_approved`` fires.

        Nobody approves their own claim (``SelfActionRefused``) unless the organisation allows
        self-action for ``hours.approve``.
        """
        tx = self.tx
        tx.require("hours.approve")
        claim = self._decide(claim_id, "approved", "")
        return self._record_hours(
            user_id=claim.user_id,
            hours=claim.hours,
            source="claim",
            served_on=claim.served_on,
            activity_id=claim.activity_id,
            claim_id=claim.id,
        )

    def reject_claim(self, claim_id: uuid.UUID, *, reason: str) -> ClaimRead:
        """Refuse a claim with a reason (``hours.approve``)."""
        self.tx.require("hours.approve")
        reason = check("reason", Text, reason)
        if not reason.strip():
            raise ValidationFailed("reason", "blank")
        return self._decide(claim_id, "rejected", reason)

    def _decide(self, claim_id: uuid.UUID, status: str, reason: str) -> ClaimRead:
        tx = self.tx
        claim = tx.get_owned(HoursClaim, claim_id, "Claim")
        tx.refuse_self("hours.approve", claim.user_id)
        result = tx.session.execute(
            sa.update(HoursClaim)
            .where(HoursClaim.id == claim.id, HoursClaim.status == "pending")
            .values(status=status, decided_by=_actor(tx), decided_at=utcnow(), reason=reason[:500])
        )
        if _rows(result) != 1:
            raise WrongState(kind="Claim", state=claim.status, needed="pending")
        tx.audit(f"volunteer.claim_{status}", "claim", claim.id, f"claim {status}")
        return ClaimRead.model_validate(
            tx.session.get(HoursClaim, claim.id, populate_existing=True)
        )

    # --- reports and exports --------------------------------------------------------------

    def hours_report(
        self,
        *,
        by: str = "volunteer",
        served_from: dt.date | None = None,
        served_to: dt.date | None = None,
    ) -> list[dict[str, Any]]:
        """Net approved hours grouped ``by`` ``volunteer``, ``activity`` or ``month``
        (``volunteer.view``), for service dates in ``[served_from, served_to]``."""
        tx = self.tx
        tx.require("volunteer.view")
        served_from = check("served_from", Day | None, served_from)
        served_to = check("served_to", Day | None, served_to)
        stmt = sa.select(
            HoursEntry.user_id, HoursEntry.activity_id, HoursEntry.served_on, HoursEntry.hours
        ).where(HoursEntry.org_id == tx.org_id)
        if served_from is not None:
            stmt = stmt.where(HoursEntry.served_on >= served_from)
        if served_to is not None:
            stmt = stmt.where(HoursEntry.served_on <= served_to)
        if by not in ("volunteer", "activity", "month"):
            raise ValidationFailed("by", "literal_error", expected="volunteer, activity, month")
        totals: dict[str, Decimal] = {}
        for user_id, activity_id, served_on, hours in tx.session.execute(
            stmt.execution_options(yield_per=5000)
        ):
            if by == "volunteer":
                group = str(user_id)
            elif by == "activity":
                group = str(activity_id or "")
            else:
                group = served_on.strftime("%Y-%m")
            totals[group] = totals.get(group, ZERO) + hours
        return [{by: k, "hours": v} for k, v in sorted(totals.items())]

    def export_hours(self, path: str, **report: Any) -> int:
        """Write ``hours_report`` to ``path`` as CSV or XLSX (by the suffix); returns rows written."""
        rows = self.hours_report(**report)
        from ngo_kit.modules.volunteer import files

        return files.write_table(path, rows)

    # --- certificates ---------------------------------------------------------------------

    def issue_certificate(
        self,
        user_id: uuid.UUID,
        *,
        period_from: dt.date | None = None,
        period_to: dt.date | None = None,
    ) -> CertificateRead:
        """Issue a certificate of service hours for a period (``certificates.issue``; a
        volunteer for themselves too when the organisation's ``self_service_certificates``
        setting is on).

        The hours are the ledger's net total for service dates in the period; the returned
        ``token`` and ``verify_url`` let a third party check it with ``verify_certificate``.
        Staff do not certify themselves (``SelfActionRefused``) unless the organisation allows
        self-action for ``certificates.issue`` or turned ``self_service_certificates`` on.
        """
        tx = self.tx
        period_from = check("period_from", Day | None, period_from)
        period_to = check("period_to", Day | None, period_to)
        if not (user_id == tx.actor_id and self.settings["self_service_certificates"]):
            tx.require_for("certificates.issue", user_id)
        self.profile_exists(user_id)
        stmt = sa.select(sa.func.coalesce(sa.func.sum(HoursEntry.hours), 0)).where(
            HoursEntry.org_id == tx.org_id, HoursEntry.user_id == user_id
        )
        if period_from is not None:
            stmt = stmt.where(HoursEntry.served_on >= period_from)
        if period_to is not None:
            stmt = stmt.where(HoursEntry.served_on <= period_to)
        hours = Decimal(str(tx.session.scalar(stmt) or 0)).quantize(HOURS_PLACES)
        values = {
            "id": new_id(),
            "number": new_number(),
            "org_id": tx.org_id,
            "user_id": user_id,
            "hours": hours,
            "period_from": period_from,
            "period_to": period_to,
            "issued_at": utcnow(),
            "issued_by": _actor(tx),
        }
        tx.session.execute(sa.insert(Certificate).values(**values))
        tx.audit("volunteer.certificate_issued", "volunteer", user_id, f"certificate for {hours} h")
        return self._certificate_read(values)

    def _certificate_read(self, values: Mapping[str, Any]) -> CertificateRead:
        token = tokens_for(self.tx.kit).sign(
            CERTIFICATE_PURPOSE, {"c": str(values["id"]), "o": str(values["org_id"])}
        )
        return CertificateRead(
            id=values["id"],
            number=values["number"],
            user_id=values["user_id"],
            hours=Decimal(values["hours"]).quantize(HOURS_PLACES),
            period_from=values["period_from"],
            period_to=values["period_to"],
            issued_at=values["issued_at"],
            token=token,
            verify_url=self._verify_link(token),
        )

    def certificate(self, certificate_id: uuid.UUID) -> CertificateRead:
        """A certificate issued by this organisation (the holder, or ``certificates.issue``)."""
        row = self.tx.get_owned(Certificate, certificate_id, "Certificate")
        if row.user_id != self.tx.actor_id:
            self.tx.require("certificates.issue")
        return self._certificate_read({c: getattr(row, c) for c in _CERTIFICATE_FIELDS})

    def certificates(self, user_id: uuid.UUID | None = None) -> list[CertificateRead]:
        """A volunteer's certificates that are not revoked, newest first (their own, or
        anyone's with ``certificates.issue``)."""
        tx = self.tx
        user_id = self._for_self_or(user_id, "certificates.issue")
        rows = tx.session.scalars(
            sa.select(Certificate)
            .where(
                Certificate.org_id == tx.org_id,
                Certificate.user_id == user_id,
                Certificate.revoked_at.is_(None),
            )
            .order_by(Certificate.issued_at.desc(), Certificate.id)
        )
        return [
            self._certificate_read({c: getattr(row, c) for c in _CERTIFICATE_FIELDS})
            for row in rows
        ]

    def certificate_pdf(self, certificate_id: uuid.UUID) -> bytes:
        """The certificate as a PDF, in Chinese and English, with a QR code of the link."""
        from ngo_kit.modules.volunteer.certificate_pdf import certificate_pdf

        cert = self.certificate(certificate_id)
        person = self._person(cert.user_id)
        name = str(getattr(person, "display_name", "") or "")
        warn_without_public_url(self.tx)
        org = self.tx.require_org().name
        return certificate_pdf(cert, name=name, organisation=org, images=self._images_for_pdf())

    def verify_certificate(self, token: str) -> CertificateCheck:
        """Check a certificate's token; needs no organisation or actor.

        Returns who, which organisation, how many hours, for which period and when it was
        issued. Raises ``TokenTampered`` (forged or altered), ``TokenWrongPurpose`` or
        ``NotFound`` ("Certificate", also when revoked).
        """
        data = tokens_for(self.tx.kit).load(CERTIFICATE_PURPOSE, token, max_age=None)
        try:
            cert_id, org_id = uuid.UUID(str(data["c"])), uuid.UUID(str(data["o"]))
        except (KeyError, TypeError, ValueError):
            raise TokenInvalid() from None
        session = self.tx.session
        row = session.execute(
            sa.select(Certificate, Organisation.name)
            .join(Organisation, Organisation.id == Certificate.org_id)
            .where(Certificate.id == cert_id, Certificate.org_id == org_id)
        ).first()
        if row is None or row[0].revoked_at is not None:
            raise NotFound("Certificate", cert_id)
        cert, org_name = row
        with self._in_org(cert.org_id):
            person = self._person(cert.user_id)
        return CertificateCheck(
            certificate_id=cert.id,
            number=cert.number,
            user_id=cert.user_id,
            name=str(getattr(person, "display_name", "") or ""),
            organisation=org_name,
            hours=cert.hours,
            period_from=cert.period_from,
            period_to=cert.period_to,
            issued_at=cert.issued_at,
        )

    @contextmanager
    def _in_org(self, org_id: uuid.UUID) -> Iterator[None]:
        """Bind the ``tx`` to ``org_id`` for a block (verification runs without one)."""
        tx = self.tx
        before = tx.org
        if before is not None and before.id == org_id:
            yield
            return
        row = tx.session.get(Organisation, org_id)
        if row is None:
            raise NotFound("Organisation", org_id)
        tx.bind_org(OrgRead.model_validate(row))
        try:
            yield
        finally:
            if before is not None:
                tx.bind_org(before)
            else:
                tx.org = None
                tx.forget_permissions()

    def revoke_certificate(self, certificate_id: uuid.UUID) -> None:
        """Withdraw a certificate (``certificates.issue``): verification then refuses it."""
        tx = self.tx
        tx.require("certificates.issue")
        row = tx.get_owned(Certificate, certificate_id, "Certificate")
        tx.session.execute(
            sa.update(Certificate).where(Certificate.id == row.id).values(revoked_at=utcnow())
        )
        tx.audit("volunteer.certificate_revoked", "certificate", row.id, "certificate revoked")

    # --- matching -------------------------------------------------------------------------

    def match(self, shift_id: uuid.UUID, *, limit: int = 20) -> list[MatchRead]:
        """Eligible volunteers for a shift, best first, each score explained (``shifts.manage``).

        Eligible: approved, holding the required skills and certifications valid on the day,
        old enough, not on the shift and not booked on an overlapping one. Scored on skill
        fit, weekly availability, distance (or same district/city), reliability (no-show
        rate) and recent load (fewer recent shifts rank higher), plus plugin factors from
        ``ngo_kit_match_score``. Time grows linearly with the number of volunteers.
        """
        tx = self.tx
        tx.require("shifts.manage")
        shift = self.shift(shift_id)
        from ngo_kit.modules.volunteer import matching

        return matching.rank_volunteers(self, shift, limit=limit)

    def recommend(self, user_id: uuid.UUID | None = None, *, limit: int = 10) -> list[MatchRead]:
        """Open future shifts a volunteer is eligible for, best first (their own, or ``volunteer.view``)."""
        user_id = self._for_self_or(user_id, "volunteer.view")
        from ngo_kit.modules.volunteer import matching

        return matching.rank_shifts(self, user_id, limit=limit)

    # --- search ---------------------------------------------------------------------------

    def search(
        self,
        text: str | None = None,
        *,
        skill: str | None = None,
        city: str | None = None,
        district: str | None = None,
        available_at: dt.datetime | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[uuid.UUID]:
        """Volunteers' account ids matching every given filter (``volunteer.view``).

        ``text`` matches the name, its pinyin (``zhangsan``) or its initials (``zs``);
        ``available_at`` a moment inside one of their weekly windows and not on an
        unavailable date.
        """
        tx = self.tx
        tx.require("volunteer.view")
        stmt = sa.select(Profile.user_id, Profile.availability, Profile.unavailable_dates).where(
            Profile.org_id == tx.org_id
        )
        if text:
            key = "".join(text.split()).lower()
            _, full, _ = name_keys(key)
            like = f"%{_escape(key)}%"
            stmt = stmt.join(
                NameIndex,
                sa.and_(NameIndex.org_id == Profile.org_id, NameIndex.user_id == Profile.user_id),
            ).where(
                sa.or_(
                    NameIndex.name_key.like(like, escape="\\"),
                    NameIndex.pinyin.like(f"%{_escape(full)}%", escape="\\"),
                    NameIndex.initials.like(f"{_escape(key)}%", escape="\\"),
                )
            )
        if skill:
            stmt = stmt.where(
                Profile.user_id.in_(
                    sa.select(ProfileSkill.user_id).where(
                        ProfileSkill.org_id == tx.org_id, ProfileSkill.skill == skill
                    )
                )
            )
        if city:
            stmt = stmt.where(Profile.city == city)
        if district:
            stmt = stmt.where(Profile.district == district)
        if status:
            stmt = stmt.where(Profile.status == status)
        found: list[uuid.UUID] = []
        from ngo_kit.modules.volunteer.matching import available

        local = self._aware(available_at).astimezone(self.zone) if available_at else None
        for user_id, windows, unavailable in tx.session.execute(stmt.order_by(Profile.user_id)):
            if local is not None and available(windows, unavailable, local, local) < 1:
                continue
            found.append(user_id)
            if len(found) >= limit:
                break
        return found

    # --- tasks ----------------------------------------------------------------------------

    def create_task(
        self, data: TaskIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> TaskRead:
        """A task to split among volunteers or workers (``volunteer.manage``)."""
        tx = self.tx
        tx.require("volunteer.manage")
        spec = coerce(TaskIn, data, kwargs)
        if spec.activity_id is not None:
            tx.get_owned(Activity, spec.activity_id, "Activity")
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "created_at": utcnow(),
            "assigned": ZERO,
            "done": ZERO,
            "status": "open",
            **spec.model_dump(),
        }
        tx.session.execute(sa.insert(Task).values(**values))
        tx.audit("volunteer.task_created", "task", values["id"], spec.title)
        return self.task(values["id"])

    def task(self, task_id: uuid.UUID) -> TaskRead:
        """One task."""
        return TaskRead.model_validate(self.tx.get_owned(Task, task_id, "Task"))

    def assign(
        self, task_id: uuid.UUID, user_id: uuid.UUID, quantity: Decimal | int | str
    ) -> AssignmentRead:
        """Offer a share of a task to someone (``volunteer.manage``).

        ``TaskOverAssigned`` when open assignments would exceed the task's quantity.
        """
        tx = self.tx
        tx.require("volunteer.manage")
        amount = self._positive_quantity(quantity)
        task = tx.get_owned(Task, task_id, "Task")
        self._require_volunteer(user_id)
        if task.status != "open":
            raise WrongState(kind="Task", state=task.status, needed="open")
        result = tx.session.execute(
            sa.update(Task)
            .where(Task.id == task.id, Task.assigned + amount <= Task.quantity)
            .values(assigned=Task.assigned + amount)
        )
        if _rows(result) != 1:
            left = tx.session.scalar(
                sa.select(Task.quantity - Task.assigned).where(Task.id == task.id)
            )
            raise TaskOverAssigned(available=str(left))
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "task_id": task.id,
            "user_id": user_id,
            "quantity": amount,
            "progress": ZERO,
            "status": "offered",
            "note": "",
            "created_at": utcnow(),
        }
        tx.session.execute(sa.insert(Assignment).values(**values))
        tx.audit(
            "volunteer.assigned",
            "task",
            task.id,
            f"{amount} assigned",
            data={"user_id": str(user_id)},
        )
        return self.assignment(values["id"])

    @staticmethod
    def _positive_quantity(quantity: Decimal | int | str) -> Decimal:
        amount: Decimal = check("quantity", Amount, quantity)
        if amount <= 0:
            raise ValidationFailed("quantity", "not_positive_amount")
        return amount.quantize(Decimal("0.0001"))

    def assignment(self, assignment_id: uuid.UUID) -> AssignmentRead:
        """One assignment (its holder, or ``volunteer.view``)."""
        row = self.tx.get_owned(Assignment, assignment_id, "Assignment")
        if row.user_id != self.tx.actor_id:
            self.tx.require("volunteer.view")
        return AssignmentRead.model_validate(row)

    def _own_assignment(self, assignment_id: uuid.UUID, states: tuple[str, ...]) -> Assignment:
        row: Assignment = self.tx.get_owned(Assignment, assignment_id, "Assignment")
        if row.user_id != self.tx.actor_id:
            self.tx.require("volunteer.manage")
        if row.status not in states:
            raise WrongState(kind="Assignment", state=row.status, needed=" or ".join(states))
        return row

    def _set_assignment(self, row: Assignment, expected: str, **values: Any) -> AssignmentRead:
        tx = self.tx
        result = tx.session.execute(
            sa.update(Assignment)
            .where(Assignment.id == row.id, Assignment.status == expected)
            .values(**values)
        )
        if _rows(result) != 1:
            raise WrongState(kind="Assignment", state="changed", needed=expected)
        tx.audit(
            "volunteer.assignment_" + str(values.get("status", "updated")),
            "assignment",
            row.id,
            f"assignment {values.get('status', 'updated')}",
        )
        return AssignmentRead.model_validate(
            tx.session.get(Assignment, row.id, populate_existing=True)
        )

    def accept_assignment(self, assignment_id: uuid.UUID) -> AssignmentRead:
        """The assignee takes the offered share."""
        row = self._own_assignment(assignment_id, ("offered",))
        return self._set_assignment(row, "offered", status="accepted")

    def decline_assignment(self, assignment_id: uuid.UUID, *, note: str = "") -> AssignmentRead:
        """The assignee turns the offer down; the quantity returns to the task."""
        note = check("note", Prose, note)
        row = self._own_assignment(assignment_id, ("offered", "accepted"))
        read = self._set_assignment(row, row.status, status="declined", note=note[:500])
        self.tx.session.execute(
            sa.update(Task)
            .where(Task.id == row.task_id)
            .values(assigned=Task.assigned - row.quantity)
        )
        return read

    def report_progress(
        self, assignment_id: uuid.UUID, progress: Decimal | int | str, *, note: str = ""
    ) -> AssignmentRead:
        """The assignee reports how much is done so far (at most the assigned quantity)."""
        row = self._own_assignment(assignment_id, ("accepted",))
        amount: Decimal = check("progress", Amount, progress)
        note = check("note", Prose, note)
        if amount < 0 or amount > row.quantity:
            raise ValidationFailed("progress", "less_than_equal", le=str(row.quantity))
        return self._set_assignment(row, "accepted", progress=amount, note=note[:500])

    def submit_assignment(self, assignment_id: uuid.UUID, *, note: str = "") -> AssignmentRead:
        """The assignee says the share is done; a reviewer checks it next."""
        row = self._own_assignment(assignment_id, ("accepted",))
        note = check("note", Prose, note)
        return self._set_assignment(row, "accepted", status="submitted", note=note[:500])

    def review_assignment(
        self,
        assignment_id: uuid.UUID,
        *,
        accepted_quantity: Decimal | int | str | None = None,
        approve: bool = True,
        note: str = "",
    ) -> AssignmentRead:
        """A reviewer (``volunteer.manage``) checks a submitted share.

        Approving records the accepted pieces (default: all) on the task, and for an hours
        task the hours in the ledger; it fires ``ngo_kit_task_completed``. Refusing sends the
        share back to ``accepted`` for rework. Reviewers cannot check their own work.
        """
        tx = self.tx
        tx.require("volunteer.manage")
        note = check("note", Prose, note)
        row = tx.get_owned(Assignment, assignment_id, "Assignment")
        tx.refuse_self("volunteer.manage", row.user_id)
        if row.status != "submitted":
            raise WrongState(kind="Assignment", state=row.status, needed="submitted")
        if not approve:
            return self._set_assignment(row, "submitted", status="accepted", note=note[:500])
        amount = (
            row.quantity
            if accepted_quantity is None
            else self._positive_quantity(accepted_quantity)
        )
        if amount > row.quantity:
            raise ValidationFailed("accepted_quantity", "less_than_equal", le=str(row.quantity))
        read = self._set_assignment(
            row,
            "submitted",
            status="completed",
            accepted_quantity=amount,
            progress=amount,
            reviewed_by=_actor(tx),
            reviewed_at=utcnow(),
            note=note[:500],
        )
        # Unaccepted pieces return to the pool; the task is done once everything is.
        tx.session.execute(
            sa.update(Task)
            .where(Task.id == row.task_id)
            .values(done=Task.done + amount, assigned=Task.assigned - (row.quantity - amount))
        )
        tx.session.execute(
            sa.update(Task)
            .where(Task.id == row.task_id, Task.done >= Task.quantity)
            .values(status="done")
        )
        task = self.task(row.task_id)
        if task.unit == "hours":
            self._record_hours(
                user_id=row.user_id,
                hours=amount.quantize(HOURS_PLACES),
                source="task",
                served_on=utcnow().astimezone(self.zone).date(),
                activity_id=task.activity_id,
                assignment_id=row.id,
            )
        tx.emit("ngo_kit_task_completed", task=task, assignment=read)
        return read

    def assignments(
        self, *, task_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
    ) -> list[AssignmentRead]:
        """Assignments of a task or of a person (their own, or ``volunteer.view``)."""
        tx = self.tx
        if user_id is None or user_id != tx.actor_id:
            tx.require("volunteer.view")
        stmt = sa.select(Assignment).where(Assignment.org_id == tx.org_id)
        if task_id is not None:
            stmt = stmt.where(Assignment.task_id == task_id)
        if user_id is not None:
            stmt = stmt.where(Assignment.user_id == user_id)
        return [
            AssignmentRead.model_validate(r)
            for r in tx.session.scalars(stmt.order_by(Assignment.created_at))
        ]

    # --- import ---------------------------------------------------------------------------

    def import_profiles(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] | None = None,
        on_refused: Callable[[int, str], None] | None = None,
    ) -> ImportReport:
        """Create volunteer profiles from rows (dicts from a CSV or XLSX file, ``volunteer.manage``).

        Columns: ``user_id`` (a member's account id, required), ``status``, ``skills``
        (``first_aid:3;driving``), ``languages`` (``zh;en``), ``city``, ``district``,
        ``latitude``, ``longitude``, ``emergency_contact_name``, ``emergency_contact_phone``.
        Rows are read as a stream and written in batches; a refused row is reported with its
        number and reason and the others are imported. Every refused row is reported: to
        ``on_refused(line, reason)`` as it is found when given (memory then stays flat however
        many are refused), else in ``report.errors``. ``report.rows`` is always
        ``report.imported + report.refused``.
        """
        from ngo_kit.modules.volunteer import files

        self.tx.require("volunteer.manage")
        known_skills = {s.code for s in self.skills()}
        count = imported = refused = 0
        kept: list[tuple[int, str]] = []

        def refuse(line: int, reason: str) -> None:
            nonlocal refused
            refused += 1
            if on_refused is not None:
                on_refused(line, reason)
            else:
                kept.append((line, reason))

        for chunk in _chunks(rows, batch_size):
            start = count
            count += len(chunk)
            parsed: list[dict[str, Any]] = []
            for offset, raw in enumerate(chunk):
                line = start + offset + 1
                try:
                    parsed.append(files.parse_profile_row(raw, known_skills, line))
                except ValueError as exc:
                    refuse(line, str(exc))
            imported += self._write_profiles(parsed, refuse)
            if on_batch is not None:
                on_batch(len(chunk))
        self.tx.audit(
            "volunteer.imported",
            "volunteer",
            "import",
            f"{imported} of {count} rows imported",
            data={"rows": count, "imported": imported, "refused": refused},
        )
        return ImportReport(rows=count, imported=imported, refused=refused, errors=tuple(kept))

    def _write_profiles(
        self, parsed: list[dict[str, Any]], refuse: Callable[[int, str], None]
    ) -> int:
        if not parsed:
            return 0
        tx = self.tx
        session, org_id = tx.session, tx.org_id
        ids = [p["user_id"] for p in parsed]
        members = set(
            session.scalars(
                sa.select(Membership.actor_id).where(
                    Membership.org_id == org_id, Membership.actor_id.in_(ids)
                )
            )
        )
        existing = set(
            session.scalars(
                sa.select(Profile.user_id).where(Profile.org_id == org_id, Profile.user_id.in_(ids))
            )
        )
        now = utcnow()
        profiles: list[dict[str, Any]] = []
        skills: list[dict[str, Any]] = []
        seen: set[uuid.UUID] = set()
        for p in parsed:
            uid = p["user_id"]
            line = p.pop("_line")
            problem = (
                "not a member of the organisation"
                if uid not in members
                else "a profile exists already"
                if uid in existing or uid in seen
                else None
            )
            if problem is not None:
                refuse(line, f"user_id: {problem}")
                continue
            seen.add(uid)
            for code, level in p.pop("skills").items():
                skills.append({"id": new_id(), "user_id": uid, "skill": code, "level": level})
            p["id"] = new_id()
            p["approved_at"] = now if p["status"] == "approved" else None
            profiles.append(p)
        if profiles:
            same = {
                "org_id": org_id,
                "created_at": now,
                "availability": [],
                "unavailable_dates": [],
                "custom_fields": {},
                "hours_total": ZERO,
                "attended_count": 0,
                "no_show_count": 0,
            }
            SQL(tx, "insert_profiles").run_many(tx, profiles, same)
        if skills:
            SQL(tx, "insert_skills").run_many(tx, skills, {"org_id": org_id})
        if profiles:
            self._index_names([p["user_id"] for p in profiles])
        return len(profiles)

    # --- personal data --------------------------------------------------------------------

    def _request_scope(self, user_id: uuid.UUID, permission: str) -> list[uuid.UUID]:
        """The organisations a personal-data request about ``user_id`` reaches: ``[]`` (every
        one) for the person themselves and the system actor; for anyone else, who needs
        ``permission``, this organisation alone."""
        tx = self.tx
        if tx.is_system or tx.actor_id == user_id:
            return []
        tx.require(permission)
        return [tx.org_id]

    def erase_person(self, user_id: uuid.UUID) -> None:
        """Drop what this module holds about a person beyond ids: emergency contact, custom
        fields, home coordinates, the name index, the words of their hours claims and the
        notes on their task assignments. Ledgers keep the id.

        Registration's ``erase`` runs it (the module's ``PersonalData``) with elevated rights,
        in every organisation. Called directly, the person or the system actor
        erase everywhere; anyone else needs ``members.erase`` and erases this organisation's
        profile only (``NotFound`` when the person has none here).
        """
        here = self._request_scope(user_id, "members.erase")
        if here:
            self.profile_exists(user_id)
        session = self.tx.session
        session.execute(
            sa.update(Profile)
            .where(Profile.user_id == user_id, *(Profile.org_id == o for o in here))
            .values(
                emergency_contact_name="",
                emergency_contact_phone="",
                custom_fields={},
                latitude=None,
                longitude=None,
                city="",
                district="",
                status="inactive",
            )
        )
        session.execute(
            sa.delete(NameIndex).where(
                NameIndex.user_id == user_id, *(NameIndex.org_id == o for o in here)
            )
        )
        session.execute(  # the person's own words about their hours, and the answer to them
            sa.update(HoursClaim)
            .where(HoursClaim.user_id == user_id, *(HoursClaim.org_id == o for o in here))
            .values(description="", reason="")
        )
        session.execute(
            sa.update(Assignment)
            .where(Assignment.user_id == user_id, *(Assignment.org_id == o for o in here))
            .values(note="")
        )

    def personal_data(self, user_id: uuid.UUID) -> dict[str, Any] | None:
        """What this module holds about a person, JSON-ready (``None``: nothing).

        Every organisation for the person themselves and the system actor; this
        organisation's only for a holder of ``members.export``. (Registration's
        ``export_personal_data`` asks the module's ``PersonalData`` for each organisation.)
        """
        return self._personal_data_in(user_id, self._request_scope(user_id, "members.export"))

    def _personal_data_in(self, user_id: uuid.UUID, here: list[uuid.UUID]) -> dict[str, Any] | None:
        """The person's profiles, skills, certifications, sign-ups, hours, claims, certificates
        and task assignments in the organisations ``here`` (``[]``: every one), unchecked:
        callers decide who may ask."""
        session = self.tx.session

        def rows(model: Any, *order: Any) -> list[Any]:
            stmt = sa.select(model).where(
                model.user_id == user_id, *(model.org_id == o for o in here)
            )
            return list(session.scalars(stmt.order_by(model.org_id, *order)))

        profiles = rows(Profile, Profile.id)
        signups = rows(SignUp, SignUp.starts_at, SignUp.id)
        hours = rows(HoursEntry, HoursEntry.seq)
        claims = rows(HoursClaim, HoursClaim.created_at, HoursClaim.id)
        certificates = rows(Certificate, Certificate.issued_at, Certificate.id)
        assignments = rows(Assignment, Assignment.created_at, Assignment.id)
        if not (profiles or signups or hours or claims or certificates or assignments):
            return None
        tasks = dict(
            session.execute(
                sa.select(Task.id, Task.title).where(Task.id.in_({a.task_id for a in assignments}))
            ).all()
        )
        return {
            "profiles": [_profile_data(p) for p in profiles],
            "skills": [
                {"org_id": str(k.org_id), "skill": k.skill, "level": k.level}
                for k in rows(ProfileSkill, ProfileSkill.skill)
            ],
            "certifications": [
                {"org_id": str(c.org_id), "kind": c.kind, "valid_until": _iso_date(c.valid_until)}
                for c in rows(Certification, Certification.kind)
            ],
            "signups": [
                {
                    "org_id": str(u.org_id),
                    "shift_id": str(u.shift_id),
                    "status": u.status,
                    "starts_at": u.starts_at.isoformat(),
                    "ends_at": u.ends_at.isoformat(),
                    "checked_in_at": _iso_time(u.checked_in_at),
                    "checked_out_at": _iso_time(u.checked_out_at),
                    "cancelled_at": _iso_time(u.cancelled_at),
                }
                for u in signups
            ],
            "hours": [
                {
                    "org_id": str(h.org_id),
                    "served_on": h.served_on.isoformat(),
                    "hours": str(h.hours),
                    "source": h.source,
                    "note": h.note,
                }
                for h in hours
            ],
            "claims": [
                {
                    "org_id": str(c.org_id),
                    "served_on": c.served_on.isoformat(),
                    "hours": str(c.hours),
                    "description": c.description,
                    "status": c.status,
                    "reason": c.reason,
                }
                for c in claims
            ],
            "certificates": [
                {
                    "org_id": str(c.org_id),
                    "id": str(c.id),
                    "hours": str(c.hours),
                    "period_from": _iso_date(c.period_from),
                    "period_to": _iso_date(c.period_to),
                    "issued_at": c.issued_at.isoformat(),
                    "revoked_at": _iso_time(c.revoked_at),
                }
                for c in certificates
            ],
            "tasks": [
                {
                    "org_id": str(a.org_id),
                    "task": tasks.get(a.task_id, ""),
                    "quantity": str(a.quantity),
                    "progress": str(a.progress),
                    "status": a.status,
                    "note": a.note,
                }
                for a in assignments
            ],
        }


def _profile_data(p: Profile) -> dict[str, Any]:
    return {
        "org_id": str(p.org_id),
        "status": p.status,
        "languages": list(p.languages or []),
        "city": p.city,
        "district": p.district,
        "latitude": str(p.latitude) if p.latitude is not None else None,
        "longitude": str(p.longitude) if p.longitude is not None else None,
        "availability": list(p.availability or []),
        "unavailable_dates": list(p.unavailable_dates or []),
        "emergency_contact_name": p.emergency_contact_name,
        "emergency_contact_phone": p.emergency_contact_phone,
        "custom_fields": dict(p.custom_fields or {}),
        "hours_total": str(p.hours_total),
    }


def _iso_date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _iso_time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rows(result: Any) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return int(result.rowcount)


def _qr(text: str, kind: str, scale: int) -> bytes:
    """``text`` as a QR image (``svg`` or ``png``), with medium error correction (a code about
    15% smudged or creased still reads)."""
    import segno  # loaded when a code is drawn, not with the module

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind=kind, scale=scale)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


__all__ = [
    "AlreadyReversed",
    "CancellationClosed",
    "CheckInClosed",
    "DoubleBooked",
    "NotEligible",
    "ShiftClosed",
    "TaskOverAssigned",
    "TokenForAnotherShift",
    "VolunteerService",
    "WrongState",
    "round_hours",
]
