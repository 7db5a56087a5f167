"""Personal data held by the volunteer module: a person's export and erasure."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from ngo_kit.modules.volunteer.base import VolunteerBase
from ngo_kit.modules.volunteer.models import (
    Assignment,
    Certificate,
    Certification,
    HoursClaim,
    HoursEntry,
    NameIndex,
    Profile,
    ProfileSkill,
    SignUp,
    Task,
)
from ngo_kit.operations import operation


class Privacy(VolunteerBase):
    """A person's data: export and erasure."""

    def _request_scope(self, user_id: uuid.UUID, permission: str) -> list[uuid.UUID]:
        """The organisations a personal-data request about ``user_id`` reaches: ``[]`` (every
        one) for the person themselves and the system actor; for anyone else, who needs
        ``permission``, this organisation alone."""
        tx = self.tx
        if tx.is_system or tx.actor_id == user_id:
            return []
        tx.require(permission)
        return [tx.org_id]

    @operation(
        not_http="the volunteer part of registration's erasure, which erases a person in "
        "every module at once; erasing this part alone would leave them half erased",
        changes=True,
        permission="members.erase",
        own=True,
    )
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
            self._service.profile_exists(user_id)
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

    @operation("GET /profiles/{user_id}/personal-data", permission="members.export", own=True)
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
