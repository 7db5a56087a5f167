"""Service hours: the append-only ledger, claims and their approval, reports and exports."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit import idempotency
from ngo_kit.audit import append_chained
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import KeyReused, NotFound, SelfActionRefused, ValidationFailed
from ngo_kit.modules.volunteer.base import (
    HOURS_PLACES,
    ZERO,
    VolunteerBase,
    _actor,
    _rows,
)
from ngo_kit.modules.volunteer.errors import AlreadyReversed, WrongState
from ngo_kit.modules.volunteer.models import HOURS_FIELDS, Activity, HoursClaim, HoursEntry, Profile
from ngo_kit.modules.volunteer.schemas import ClaimIn, ClaimRead, HoursRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Amount, Day, Prose, Text, check, coerce

#: The hash chain of the hours ledger (``ngo-kit verify`` checks it).
HOURS_CHAIN = "volunteer_hours"


class Hours(VolunteerBase):
    """The hours ledger, claims and hours reports."""

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

    @operation("POST /hours", permission="hours.approve", status=201, errors=(SelfActionRefused,))
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

    @operation(
        "POST /hours/{entry_id}/reverse", permission="hours.approve", errors=(AlreadyReversed,)
    )
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

    @operation("GET /me/hours", permission="volunteer.view", own=True, custom=True)
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

    @operation(
        "POST /claims", permission="volunteer.manage", own=True, status=201, errors=(KeyReused,)
    )
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

    def _claim_by_key(self, keyed: dict[str, Any]) -> ClaimRead | None:
        """The claim made with ``keyed``'s key in its scope; ``KeyReused`` when that one had
        other parameters."""
        row = idempotency.first_row(self.tx, HoursClaim, keyed)
        return ClaimRead.model_validate(row) if row is not None else None

    @operation("GET /claims", permission="hours.approve")
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

    @operation(
        "POST /claims/{claim_id}/approve",
        permission="hours.approve",
        errors=(SelfActionRefused, WrongState),
    )
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

    @operation(
        "POST /claims/{claim_id}/reject",
        permission="hours.approve",
        errors=(SelfActionRefused, WrongState),
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

    @operation("GET /reports/hours", permission="volunteer.view")
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

    @operation(
        "GET /reports/hours/export", permission="volunteer.view", custom=True, cli="export-hours"
    )
    def export_hours(self, path: str, **report: Any) -> int:
        """Write ``hours_report`` to ``path`` as CSV or XLSX (by the suffix); returns rows written."""
        rows = self.hours_report(**report)
        from ngo_kit.modules.volunteer import files

        return files.write_table(path, rows)
