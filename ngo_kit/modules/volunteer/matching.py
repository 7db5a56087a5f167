"""Matching volunteers and shifts: eligibility in SQL, scoring in one linear pass.

Used by ``VolunteerService.match`` and ``recommend``; the weights are the module's defaults:
skill fit 30, availability 25, distance or area 20, reliability 15, recent load 10.
"""

from __future__ import annotations

import datetime as dt
import heapq
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import utcnow
from ngo_kit.errors import Conflict
from ngo_kit.modules.volunteer.models import Certification, Profile, ProfileSkill, Shift, SignUp
from ngo_kit.modules.volunteer.schemas import MatchFactor, MatchRead, ShiftRead

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


@dataclass(frozen=True)
class Candidate:
    """The columns of a profile that matching reads."""

    user_id: uuid.UUID
    city: str
    district: str
    latitude: Any
    longitude: Any
    availability: list[Any]
    unavailable_dates: list[Any]
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
    if unavailable and start.date().isoformat() in unavailable:
        return 0.0
    if not windows:
        return 0.5
    begin, finish = start.strftime("%H:%M"), end.strftime("%H:%M")
    if end.date() != start.date():
        finish = "24:00"
    for window in windows:
        if (
            window.get("weekday") == start.weekday()
            and window["start"] <= begin
            and finish <= window["end"]
        ):
            return 1.0
    return 0.0


def _factors(
    cand: Candidate,
    shift: ShiftRead,
    start: dt.datetime,
    end: dt.datetime,
    skill_levels: dict[str, int] | None,
    wanted_skills: Sequence[str],
    recent: int,
    recent_days: int,
) -> list[tuple[str, float, str]]:
    out: list[tuple[str, float, str]] = []
    if wanted_skills:
        levels = skill_levels or {}
        mean = sum(levels.get(s, 0) for s in wanted_skills) / (5 * len(wanted_skills))
        held = ", ".join(f"{s} {levels.get(s, 0)}/5" for s in wanted_skills)
        out.append(("skills", WEIGHTS["skills"] * mean, f"skill levels: {held}"))
    else:
        out.append(("skills", WEIGHTS["skills"] / 2, "the shift asks for no skills"))
    avail = available(cand.availability, cand.unavailable_dates, start, end)
    reason = {1.0: "available at that time", 0.5: "gave no availability"}.get(
        avail, "not available then"
    )
    out.append(("availability", WEIGHTS["availability"] * avail, reason))
    out.append(_distance(cand, shift))
    total = cand.attended + cand.no_shows
    reliability = (cand.attended + 1) / (total + 2)
    out.append(
        (
            "reliability",
            WEIGHTS["reliability"] * reliability,
            f"{cand.no_shows} no-show(s) in {total} shift(s)",
        )
    )
    out.append(
        (
            "load",
            WEIGHTS["load"] / (1 + recent),
            f"{recent} shift(s) in the last {recent_days} days",
        )
    )
    return out


def _distance(cand: Candidate, shift: ShiftRead) -> tuple[str, float, str]:
    from ngo_kit.modules.volunteer.service import haversine_km

    w = WEIGHTS["distance"]
    lat, lon, slat, slon = cand.latitude, cand.longitude, shift.latitude, shift.longitude
    if lat is not None and lon is not None and slat is not None and slon is not None:
        km = haversine_km(float(lat), float(lon), float(slat), float(slon))
        return ("distance", w * max(0.0, 1 - km / NEAR_KM), f"{km:.1f} km away")
    if shift.district and cand.district == shift.district and cand.city == shift.city:
        return ("distance", w, f"lives in {shift.district}")
    if shift.city and cand.city == shift.city:
        return ("distance", w * 0.6, f"lives in {shift.city}")
    return ("distance", w * 0.25, "distance unknown")


def rank_volunteers(svc: VolunteerService, shift: ShiftRead, *, limit: int) -> list[MatchRead]:
    """The best ``limit`` eligible volunteers for ``shift``, with explained scores."""
    tx = svc.tx
    session, org_id = tx.session, tx.org_id
    zone = svc.zone
    start, end = shift.starts_at.astimezone(zone), shift.ends_at.astimezone(zone)
    day = start.date()
    required = list(shift.required_skills)
    wanted = sorted(set(required) | {s for r in shift.roles for s in r.required_skills})
    stmt = sa.select(
        Profile.user_id,
        Profile.city,
        Profile.district,
        Profile.latitude,
        Profile.longitude,
        Profile.availability,
        Profile.unavailable_dates,
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
    stmt = stmt.where(
        Profile.user_id.not_in(
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
        for uid, skill, level in session.execute(
            sa.select(ProfileSkill.user_id, ProfileSkill.skill, ProfileSkill.level).where(
                ProfileSkill.org_id == org_id, ProfileSkill.skill.in_(wanted)
            )
        ):
            levels.setdefault(uid, {})[skill] = level
    recent_days = int(svc.settings["match_recent_days"])
    load = _recent_load(svc, recent_days)
    plugin = _plugin_hook(svc)
    scored: list[tuple[float, str, uuid.UUID, list[tuple[str, float, str]]]] = []
    for row in session.execute(stmt.execution_options(yield_per=5000)):
        cand = Candidate(*row)
        factors = _factors(
            cand,
            shift,
            start,
            end,
            levels.get(cand.user_id),
            wanted,
            load.get(cand.user_id, 0),
            recent_days,
        )
        if plugin is not None:
            extra = plugin(tx=tx, shift=shift, profile=svc.profile(cand.user_id))
            if extra is not None:
                factors.append((extra.name, float(extra.score), extra.reason))
        scored.append((sum(f[1] for f in factors), str(cand.user_id), cand.user_id, factors))
    want = limit if shift.min_age is None else max(limit * 3, limit + 20)
    best = heapq.nlargest(want, scored, key=lambda s: (s[0], s[1]))
    if shift.min_age is not None:
        best = _old_enough(svc, best, shift.min_age, day)
    return [
        MatchRead(
            user_id=uid,
            shift_id=shift.id,
            score=round(score, 2),
            factors=tuple(MatchFactor(name=n, score=round(s, 2), reason=r) for n, s, r in factors),
        )
        for score, _, uid, factors in best[:limit]
    ]


def _old_enough(svc: VolunteerService, best: list[Any], min_age: int, day: dt.date) -> list[Any]:
    from ngo_kit.modules.volunteer.service import age_on

    people = svc._people([b[2] for b in best])
    out = []
    for item in best:
        birth = getattr(people.get(item[2]), "birth_date", None)
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
    from ngo_kit.modules.volunteer.service import NotEligible

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
        factors = _factors(cand, shift, start, end, levels, wanted, recent, recent_days)
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
