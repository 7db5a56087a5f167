"""Matching volunteers and shifts: eligibility in SQL, scoring in one linear pass.

``Matching`` is the service's part (``match``, ``recommend``, ``search``); the weights are
the module's defaults: skill fit 30, availability 25, distance or area 20, reliability 15,
recent load 10.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from ngo_kit.db import quantity_as_float, utcnow
from ngo_kit.errors import Conflict
from ngo_kit.modules.volunteer.base import VolunteerBase, age_on, name_keys
from ngo_kit.modules.volunteer.errors import NotEligible
from ngo_kit.modules.volunteer.models import (
    Certification,
    NameIndex,
    Profile,
    ProfileSkill,
    Shift,
    SignUp,
)
from ngo_kit.modules.volunteer.schemas import MatchFactor, MatchRead, ShiftRead
from ngo_kit.operations import operation

if TYPE_CHECKING:
    from ngo_kit.modules.volunteer.service import VolunteerService

WEIGHTS = {
    "skills": 30.0,
    "availability": 25.0,
    "distance": 20.0,
    "reliability": 15.0,
    "load": 10.0,
}
NEAR_KM = 50.0


class Matching(VolunteerBase):
    """Matching volunteers and shifts, and searching volunteers: the service's part."""

    @operation("GET /shifts/{shift_id}/matches", permission="shifts.manage")
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
        shift = self._service.shift(shift_id)
        return rank_volunteers(self._service, shift, limit=limit)

    @operation("GET /profiles/{user_id}/recommended-shifts", permission="volunteer.view", own=True)
    def recommend(self, user_id: uuid.UUID | None = None, *, limit: int = 10) -> list[MatchRead]:
        """Open future shifts a volunteer is eligible for, best first (their own, or ``volunteer.view``)."""
        user_id = self._for_self_or(user_id, "volunteer.view")
        return rank_shifts(self._service, user_id, limit=limit)

    @operation("GET /profiles/search", permission="volunteer.view")
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
        local = self._aware(available_at).astimezone(self.zone) if available_at else None
        for user_id, windows, unavailable in tx.session.execute(stmt.order_by(Profile.user_id)):
            if local is not None and available(windows, unavailable, local, local) < 1:
                continue
            found.append(user_id)
            if len(found) >= limit:
                break
        return found


class Candidate(NamedTuple):
    """The columns of a profile that matching reads (a tuple: one is made per volunteer)."""

    user_id: uuid.UUID
    city: str
    district: str
    latitude: Any
    longitude: Any
    availability: list[Any] | str
    unavailable_dates: list[Any] | str
    attended: int
    no_shows: int


def available(
    windows: Sequence[dict[str, Any]] | None,
    unavailable: Sequence[str] | None,
    start: dt.datetime,
    end: dt.datetime,
) -> float:
    """1.0 when a weekly window holds ``start``..``end`` (local times), 0.0 when none does or
    the day is marked unavailable, 0.5 when the volunteer gave no windows at all."""
    return _Slot(start, end).available(windows, unavailable)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


class _Slot:
    """A shift's local time, prepared once so each candidate costs a few comparisons."""

    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.day = start.date().isoformat()
        self.weekday = start.weekday()
        self.weekday_mark = re.compile(rf'"weekday":\s*{self.weekday}\b')
        self.begin = start.strftime("%H:%M")
        self.finish = end.strftime("%H:%M") if end.date() == start.date() else "24:00"

    def available(
        self,
        windows: Sequence[dict[str, Any]] | str | None,
        unavailable: Sequence[str] | str | None,
    ) -> float:
        """Also takes both lists as their JSON text (as matching reads them), and then parses
        the windows only when one names the shift's weekday: most volunteers cost no parse."""
        if unavailable and self.day in unavailable:  # a date in the list, or in its JSON text
            return 0.0
        if isinstance(windows, str):
            if windows.strip() in ("", "[]", "null"):
                return 0.5
            if not self.weekday_mark.search(windows):
                return 0.0
            parsed: Sequence[dict[str, Any]] = json.loads(windows)
        else:
            parsed = windows or ()
        if not parsed:
            return 0.5
        for window in parsed:
            if (
                window.get("weekday") == self.weekday
                and window["start"] <= self.begin
                and self.finish <= window["end"]
            ):
                return 1.0
        return 0.0


class _Scorer:
    """The built-in factors for one shift: ``score`` is the fast sum used to rank everyone,
    ``explain`` gives the named, reasoned factors for the few that are returned."""

    def __init__(
        self,
        shift: ShiftRead,
        start: dt.datetime,
        end: dt.datetime,
        wanted: Sequence[str],
        recent_days: int,
    ) -> None:
        self.shift = shift
        self.slot = _Slot(start, end)
        self.wanted = list(wanted)
        self.recent_days = recent_days
        self.coords = (
            (float(shift.latitude), float(shift.longitude))
            if shift.latitude is not None and shift.longitude is not None
            else None
        )

    def parts(
        self, cand: Candidate, levels: dict[str, int] | None, recent: int
    ) -> tuple[float, float, float, float, float]:
        w = WEIGHTS
        if self.wanted:
            have = levels or {}
            skills = w["skills"] * sum(have.get(s, 0) for s in self.wanted) / (5 * len(self.wanted))
        else:
            skills = w["skills"] / 2
        avail = w["availability"] * self.slot.available(cand.availability, cand.unavailable_dates)
        distance = w["distance"] * self._closeness(cand)
        total = cand.attended + cand.no_shows
        reliability = w["reliability"] * (cand.attended + 1) / (total + 2)
        load = w["load"] / (1 + recent)
        return skills, avail, distance, reliability, load

    def score(self, cand: Candidate, levels: dict[str, int] | None, recent: int) -> float:
        return sum(self.parts(cand, levels, recent))

    def _closeness(self, cand: Candidate) -> float:
        """0..1: by distance when both have coordinates, else by district or city."""
        shift = self.shift
        if self.coords is not None and cand.latitude is not None and cand.longitude is not None:
            km = haversine_km(float(cand.latitude), float(cand.longitude), *self.coords)
            return max(0.0, 1 - km / NEAR_KM)
        if shift.district and cand.district == shift.district and cand.city == shift.city:
            return 1.0
        if shift.city and cand.city == shift.city:
            return 0.6
        return 0.25

    def _near(self, cand: Candidate) -> tuple[float, str]:
        shift = self.shift
        if self.coords is not None and cand.latitude is not None and cand.longitude is not None:
            km = haversine_km(float(cand.latitude), float(cand.longitude), *self.coords)
            return max(0.0, 1 - km / NEAR_KM), f"{km:.1f} km away"
        if shift.district and cand.district == shift.district and cand.city == shift.city:
            return 1.0, f"lives in {shift.district}"
        if shift.city and cand.city == shift.city:
            return 0.6, f"lives in {shift.city}"
        return 0.25, "distance unknown"

    def explain(
        self, cand: Candidate, levels: dict[str, int] | None, recent: int
    ) -> list[tuple[str, float, str]]:
        skills, avail, distance, reliability, load = self.parts(cand, levels, recent)
        have = levels or {}
        if self.wanted:
            held = ", ".join(f"{s} {have.get(s, 0)}/5" for s in self.wanted)
            skill_reason = f"skill levels: {held}"
        else:
            skill_reason = "the shift asks for no skills"
        share = avail / WEIGHTS["availability"]
        avail_reason = {1.0: "available at that time", 0.5: "gave no availability"}.get(
            share, "not available then"
        )
        total = cand.attended + cand.no_shows
        return [
            ("skills", skills, skill_reason),
            ("availability", avail, avail_reason),
            ("distance", distance, self._near(cand)[1]),
            ("reliability", reliability, f"{cand.no_shows} no-show(s) in {total} shift(s)"),
            ("load", load, f"{recent} shift(s) in the last {self.recent_days} days"),
        ]


def rank_volunteers(svc: VolunteerService, shift: ShiftRead, *, limit: int) -> list[MatchRead]:
    """The best ``limit`` eligible volunteers for ``shift``, with explained scores.

    One pass over the eligible candidates keeps only the best few in a bounded heap, so time
    grows linearly and memory stays flat with the number of volunteers.
    """
    tx = svc.tx
    org_id = tx.org_id
    zone = svc.zone
    start, end = shift.starts_at.astimezone(zone), shift.ends_at.astimezone(zone)
    day = start.date()
    required = list(shift.required_skills)
    wanted = sorted(set(required) | {s for r in shift.roles for s in r.required_skills})
    stmt = sa.select(
        Profile.user_id,
        Profile.city,
        Profile.district,
        quantity_as_float(Profile.latitude, tx.connection.dialect.name),
        quantity_as_float(Profile.longitude, tx.connection.dialect.name),
        sa.cast(Profile.availability, sa.Text),  # parsed only when it names the weekday
        sa.cast(Profile.unavailable_dates, sa.Text),
        Profile.attended_count,
        Profile.no_show_count,
    ).where(Profile.org_id == org_id, Profile.status == "approved")
    if required:
        stmt = stmt.where(
            Profile.user_id.in_(
                sa.select(ProfileSkill.user_id)
                .where(ProfileSkill.org_id == org_id, ProfileSkill.skill.in_(required))
                .group_by(ProfileSkill.user_id)
                .having(sa.func.count() == len(required))
            )
        )
    for kind in shift.required_certifications:
        stmt = stmt.where(
            Profile.user_id.in_(
                sa.select(Certification.user_id).where(
                    Certification.org_id == org_id,
                    Certification.kind == kind,
                    sa.or_(Certification.valid_until.is_(None), Certification.valid_until >= day),
                )
            )
        )
    busy = set(
        tx.connection.scalars(
            sa.select(SignUp.user_id).where(
                SignUp.org_id == org_id,
                SignUp.status.in_(("confirmed", "waitlisted")),
                SignUp.starts_at < shift.ends_at,
                SignUp.ends_at > shift.starts_at,
            )
        )
    )
    levels: dict[uuid.UUID, dict[str, int]] = {}
    if wanted:
        for uid, skill, level in tx.connection.execute(
            sa.select(ProfileSkill.user_id, ProfileSkill.skill, ProfileSkill.level).where(
                ProfileSkill.org_id == org_id, ProfileSkill.skill.in_(wanted)
            )
        ):
            levels.setdefault(uid, {})[skill] = level
    recent_days = int(svc.settings["match_recent_days"])
    load = _recent_load(svc, recent_days)
    plugin = _plugin_hook(svc)
    scorer = _Scorer(shift, start, end, wanted, recent_days)
    want = limit if shift.min_age is None else max(limit * 3, limit + 20)
    heap: list[tuple[float, uuid.UUID, Candidate, float]] = []
    rows: Any = tx.connection.execute(stmt.execution_options(yield_per=5000))
    if plugin is not None:  # plugins query while we iterate: not on a streaming cursor
        rows = rows.all()
    for row in rows:
        cand = Candidate._make(row)
        if cand.user_id in busy:
            continue
        score = scorer.score(cand, levels.get(cand.user_id), load.get(cand.user_id, 0))
        extra = 0.0
        if plugin is not None:
            factor = plugin(tx=tx, shift=shift, profile=svc.profile(cand.user_id))
            extra = float(factor.score) if factor is not None else 0.0
        item = (score + extra, cand.user_id, cand, extra)
        if len(heap) < want:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
    best = sorted(heap, key=lambda h: (h[0], h[1]), reverse=True)
    if shift.min_age is not None:
        best = _old_enough(svc, best, shift.min_age, day)
    out = []
    for total, _, cand, _extra in best[:limit]:
        factors = scorer.explain(cand, levels.get(cand.user_id), load.get(cand.user_id, 0))
        if plugin is not None:
            factor = plugin(tx=tx, shift=shift, profile=svc.profile(cand.user_id))
            if factor is not None:
                factors.append((factor.name, float(factor.score), factor.reason))
        out.append(
            MatchRead(
                user_id=cand.user_id,
                shift_id=shift.id,
                score=round(total, 2),
                factors=tuple(
                    MatchFactor(name=n, score=round(v, 2), reason=r) for n, v, r in factors
                ),
            )
        )
    return out


def _old_enough(svc: VolunteerService, best: list[Any], min_age: int, day: dt.date) -> list[Any]:
    people = svc._people([b[2].user_id for b in best])
    out = []
    for item in best:
        birth = getattr(people.get(item[2].user_id), "birth_date", None)
        if birth is not None and age_on(birth, day) >= min_age:
            out.append(item)
    return out


def _recent_load(svc: VolunteerService, days: int) -> dict[uuid.UUID, int]:
    tx = svc.tx
    since = utcnow() - dt.timedelta(days=days)
    rows = tx.session.execute(
        sa.select(SignUp.user_id, sa.func.count())
        .where(
            SignUp.org_id == tx.org_id,
            SignUp.status.in_(("confirmed", "attended")),
            SignUp.starts_at >= since,
        )
        .group_by(SignUp.user_id)
    )
    return {uid: int(n) for uid, n in rows}


def _plugin_hook(svc: VolunteerService) -> Any | None:
    caller = svc.tx.kit.hook.ngo_kit_match_score
    return caller if caller.get_hookimpls() else None


def rank_shifts(svc: VolunteerService, user_id: uuid.UUID, *, limit: int) -> list[MatchRead]:
    """Open future shifts ``user_id`` is eligible for and free at, best first."""
    tx = svc.tx
    session, org_id = tx.session, tx.org_id
    profile = session.execute(
        sa.select(
            Profile.user_id,
            Profile.city,
            Profile.district,
            Profile.latitude,
            Profile.longitude,
            Profile.availability,
            Profile.unavailable_dates,
            Profile.attended_count,
            Profile.no_show_count,
            Profile.status,
        ).where(Profile.org_id == org_id, Profile.user_id == user_id)
    ).first()
    if profile is None or profile.status != "approved":
        return []
    cand = Candidate(*profile[:9])
    busy = list(
        session.execute(
            sa.select(SignUp.shift_id, SignUp.starts_at, SignUp.ends_at).where(
                SignUp.org_id == org_id,
                SignUp.user_id == user_id,
                SignUp.status.in_(("confirmed", "waitlisted")),
            )
        )
    )
    levels = dict(
        session.execute(
            sa.select(ProfileSkill.skill, ProfileSkill.level).where(
                ProfileSkill.org_id == org_id, ProfileSkill.user_id == user_id
            )
        ).all()
    )
    recent_days = int(svc.settings["match_recent_days"])
    recent = _recent_load(svc, recent_days).get(user_id, 0)
    zone = svc.zone
    shift_rows = list(
        session.scalars(
            sa.select(Shift)
            .where(Shift.org_id == org_id, Shift.status == "open", Shift.starts_at > utcnow())
            .order_by(Shift.starts_at)
            .limit(2000)
        )
    )
    reads = {s.id: s for s in svc._shift_reads([s.id for s in shift_rows])}
    scored = []
    for row in shift_rows:
        if any(
            b.shift_id == row.id or (b.starts_at < row.ends_at and b.ends_at > row.starts_at)
            for b in busy
        ):
            continue
        try:
            svc._check_eligible(row, None, user_id)
        except (NotEligible, Conflict):
            continue
        shift = reads[row.id]
        wanted = sorted(
            set(shift.required_skills) | {s for r in shift.roles for s in r.required_skills}
        )
        start, end = shift.starts_at.astimezone(zone), shift.ends_at.astimezone(zone)
        factors = _Scorer(shift, start, end, wanted, recent_days).explain(cand, levels, recent)
        if shift.taken >= shift.capacity:
            factors.append(("places", -10.0, "full: sign-up joins the waitlist"))
        scored.append((sum(f[1] for f in factors), str(shift.starts_at), shift.id, factors))
    best = heapq.nlargest(limit, scored, key=lambda s: (s[0], s[1]))
    return [
        MatchRead(
            user_id=user_id,
            shift_id=sid,
            score=round(score, 2),
            factors=tuple(MatchFactor(name=n, score=round(s, 2), reason=r) for n, s, r in factors),
        )
        for score, _, sid, factors in best
    ]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
