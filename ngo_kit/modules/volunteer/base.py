"""What every part of the volunteer service shares: the ``tx``, settings, statements, helpers."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from ngo_kit.errors import NotFound, ValidationFailed
from ngo_kit.modules.volunteer.models import Profile, ProfileSkill, Shift, ShiftRole, SignUp
from ngo_kit.modules.volunteer.schemas import SignUpRead
from ngo_kit.statements import Statements, bind
from ngo_kit.tenancy import Membership

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.volunteer.service import VolunteerService

CONFIRMED, WAITLISTED, CANCELLED, ATTENDED, NO_SHOW = (
    "confirmed",
    "waitlisted",
    "cancelled",
    "attended",
    "no_show",
)
ACTIVE = (CONFIRMED, WAITLISTED)
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


class VolunteerBase:
    """The state and helpers shared by the parts of ``VolunteerService``."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @property
    def _service(self) -> VolunteerService:
        """This object as the whole service, to call what another part of it provides."""
        return cast("VolunteerService", self)

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

    def _aware(self, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    def _signup_read(self, row: SignUp) -> SignUpRead:
        read = SignUpRead.model_validate(row)
        if row.status == WAITLISTED:
            read = read.model_copy(update={"position": self._position(row.shift_id, row.seq)})
        return read

    def _position(self, shift_id: uuid.UUID, seq: int) -> int:
        found = SQL(self.tx, "position").first(self.tx, s=shift_id, q=seq)
        return int(found["ahead"] if found else 0) + 1

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


def _rows(result: Any) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return int(result.rowcount)
