"""Activities and their shifts: creation (one, many, recurring, cloned) and reading."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import ValidationFailed
from ngo_kit.modules.volunteer.base import VolunteerBase
from ngo_kit.modules.volunteer.models import Activity, Shift, ShiftRole
from ngo_kit.modules.volunteer.schemas import (
    ActivityIn,
    ActivityRead,
    RecurringShiftsIn,
    RoleRead,
    ShiftIn,
    ShiftRead,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Moment, Name, check, coerce


class Shifts(VolunteerBase):
    """Activities and shifts."""

    @operation("POST /activities", permission="shifts.manage", status=201, custom=True)
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

    @operation("GET /activities/{activity_id}")
    def activity(self, activity_id: uuid.UUID) -> ActivityRead:
        """One activity of this organisation."""
        return ActivityRead.model_validate(self.tx.get_owned(Activity, activity_id, "Activity"))

    @operation("GET /activities", custom=True)
    def activities(self) -> list[ActivityRead]:
        """The organisation's activities, newest first."""
        rows = self.tx.session.scalars(
            sa.select(Activity)
            .where(Activity.org_id == self.tx.org_id)
            .order_by(Activity.created_at.desc())
        )
        return [ActivityRead.model_validate(r) for r in rows]

    @operation("POST /shifts", permission="shifts.manage", status=201, custom=True)
    def create_shift(
        self, data: ShiftIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ShiftRead:
        """A shift of an activity (``shifts.manage``); naive times are in the organisation's zone."""
        return self.create_shifts([coerce(ShiftIn, data, kwargs)])[0]

    @operation("POST /shifts/batch", permission="shifts.manage", status=201)
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

    @operation("POST /shifts/recurring", permission="shifts.manage", status=201)
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

    @operation("POST /activities/{activity_id}/clone", permission="shifts.manage", status=201)
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

    @operation("GET /shifts/{shift_id}", custom=True)
    def shift(self, shift_id: uuid.UUID) -> ShiftRead:
        """One shift with its roles and places taken."""
        reads = self._shift_reads([self.tx.get_owned(Shift, shift_id, "Shift").id])
        return reads[0]

    @operation("GET /shifts", custom=True)
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
