"""What the ledger says about members: balance, standing, statement, expiring points,
leaderboards, the CSV export and a member's personal data."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any, TextIO

import sqlalchemy as sa

from ngo_kit.db import utcnow
from ngo_kit.errors import ValidationFailed
from ngo_kit.exports import write_csv
from ngo_kit.modules.points.base import PointsBase
from ngo_kit.modules.points.models import (
    MEMBER,
    NO_MEMBER,
    PointsAccount,
    PointsBadge,
    PointsBadgeAward,
    PointsEntry,
    PointsLevel,
    PointsLot,
    PointsRedemption,
    PointsTally,
    PointsTxn,
)
from ngo_kit.modules.points.schemas import (
    EntryRead,
    LeaderboardRow,
    LotRead,
    Period,
    RedemptionRead,
    StandingRead,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Instant, check


def _member_cell(member_id: uuid.UUID) -> uuid.UUID | None:
    """The member column of an export: empty for the organisation's own accounts."""
    return None if member_id == NO_MEMBER else member_id


class Standings(PointsBase):
    """Balances, statements, leaderboards, exports and personal data."""

    @operation("GET /members/{member_id}/balance", permission="points.view", own=True)
    def balance(self, member_id: uuid.UUID) -> int:
        """A member's balance (0 before the first award): one indexed row read."""
        self._see(member_id)
        return self._balance(member_id)

    @operation("GET /members/{member_id}", custom=True, permission="points.view", own=True)
    def standing(self, member_id: uuid.UUID) -> StandingRead:
        """Balance, lifetime earned points and level of a member."""
        self._see(member_id)
        row = self.conn.execute(
            sa.select(PointsAccount.balance, PointsAccount.earned).where(
                PointsAccount.org_id == self.tx.org_id,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
        ).first()
        balance, earned = (int(row[0]), int(row[1])) if row else (0, 0)
        level = self.conn.scalar(
            sa.select(PointsLevel.name)
            .where(PointsLevel.org_id == self.tx.org_id, PointsLevel.threshold <= earned)
            .order_by(PointsLevel.threshold.desc())
            .limit(1)
        )
        return StandingRead(member_id=member_id, balance=balance, earned=earned, level=level)

    @operation(
        "GET /members/{member_id}/statement", custom=True, permission="points.view", own=True
    )
    def statement(
        self, member_id: uuid.UUID, *, limit: int = 50, before_seq: int | None = None
    ) -> list[EntryRead]:
        """A member's entries, newest first, each with the balance after it; page with ``before_seq``."""
        self._see(member_id)
        accounts = self._member_accounts([member_id], create=False)
        if member_id not in accounts:
            return []
        stmt = sa.select(PointsEntry).where(PointsEntry.account_id == accounts[member_id])
        if before_seq is not None:
            stmt = stmt.where(PointsEntry.seq < before_seq)
        rows = self.session.scalars(stmt.order_by(PointsEntry.seq.desc()).limit(min(limit, 500)))
        return [EntryRead.model_validate(r) for r in rows]

    @operation("GET /members/{member_id}/lots", permission="points.view", own=True)
    def expiring(self, member_id: uuid.UUID) -> list[LotRead]:
        """What of a member's balance expires when, soonest first (points that never expire last)."""
        self._see(member_id)
        accounts = self._member_accounts([member_id], create=False)
        if member_id not in accounts:
            return []
        rows = self.conn.execute(
            sa.select(PointsLot.id, PointsLot.remaining, PointsLot.earned_at, PointsLot.expires_at)
            .where(PointsLot.account_id == accounts[member_id], PointsLot.remaining > 0)
            .order_by(
                sa.case((PointsLot.expires_at.is_(None), 1), else_=0),
                PointsLot.expires_at,
                PointsLot.id,
            )
        )
        return [LotRead(id=i, remaining=r, earned_at=e, expires_at=x) for i, r, e, x in rows]

    @operation("GET /entries.csv", custom=True, permission="points.view")
    def export_csv(self, out: TextIO | None = None) -> str:
        """Every entry of the organisation as CSV (``points.view``); returns the text when no ``out``.

        Written through the kit's formula-neutralising writer (``ngo_kit.exports``): a reason
        such as ``=HYPERLINK(...)`` is text in a spreadsheet, never a formula.
        """
        self.tx.require("points.view")
        target = out or io.StringIO()
        header = [
            "seq", "at", "operation", "kind", "account", "member", "amount", "balance_after",
            "reason", "reference", "actor",
        ]  # fmt: skip
        stmt = (
            sa.select(
                PointsEntry.seq,
                PointsEntry.at,
                PointsEntry.txn_id,
                PointsEntry.kind,
                PointsAccount.kind,
                PointsAccount.member_id,
                PointsEntry.amount,
                PointsEntry.balance_after,
                PointsEntry.reason,
                PointsEntry.reference,
                PointsEntry.actor,
            )
            .join(PointsAccount, PointsAccount.id == PointsEntry.account_id)
            .where(PointsEntry.org_id == self.tx.org_id)
            .order_by(PointsEntry.seq)
            .execution_options(yield_per=2000)
        )
        rows = (
            [row.seq, row.at.isoformat(), *row[2:5], _member_cell(row.member_id), *row[6:]]
            for row in self.conn.execute(stmt)
        )
        write_csv(target, header, rows)
        return target.getvalue() if isinstance(target, io.StringIO) and out is None else ""

    # --- personal data --------------------------------------------------------------------------

    @operation("GET /members/{member_id}/personal-data", permission="points.view", own=True)
    def personal_data(self, member_id: uuid.UUID) -> dict[str, Any] | None:
        """What this module holds about a member in this organisation, JSON-ready (``None``:
        nothing): the account's balance and lifetime earned points, every ledger entry and
        operation naming the member, redemptions, badges and period totals.

        Registration's ``export_personal_data`` asks for it once per organisation of the
        person, after checking who may ask; called directly it needs ``points.view`` (or
        being the member).
        """
        self._see(member_id)
        org = self.tx.org_id
        account = self.conn.execute(
            sa.select(PointsAccount.id, PointsAccount.balance, PointsAccount.earned).where(
                PointsAccount.org_id == org,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
        ).first()
        operations = self.conn.execute(
            sa.select(PointsTxn.__table__)
            .where(
                PointsTxn.org_id == org,
                sa.or_(PointsTxn.member_id == member_id, PointsTxn.counterparty_id == member_id),
            )
            .order_by(PointsTxn.created_at, PointsTxn.id)
        ).all()
        redemptions = self.session.scalars(
            sa.select(PointsRedemption)
            .where(PointsRedemption.org_id == org, PointsRedemption.member_id == member_id)
            .order_by(PointsRedemption.created_at, PointsRedemption.id)
        ).all()
        badges = self.conn.execute(
            sa.select(PointsBadge.code, PointsBadgeAward.awarded_at, PointsBadgeAward.evidence)
            .join(PointsBadge, PointsBadge.id == PointsBadgeAward.badge_id)
            .where(PointsBadgeAward.org_id == org, PointsBadgeAward.member_id == member_id)
            .order_by(PointsBadgeAward.awarded_at)
        ).all()
        tallies = self.conn.execute(
            sa.select(PointsTally.period, PointsTally.points)
            .where(PointsTally.org_id == org, PointsTally.member_id == member_id)
            .order_by(PointsTally.period)
        ).all()
        if account is None and not (operations or redemptions or badges or tallies):
            return None
        entries: list[dict[str, Any]] = []
        if account is not None:
            entries = [
                EntryRead.model_validate(r).model_dump(mode="json")
                for r in self.session.scalars(
                    sa.select(PointsEntry)
                    .where(PointsEntry.org_id == org, PointsEntry.account_id == account.id)
                    .order_by(PointsEntry.seq)
                )
            ]
        return {
            "account": None
            if account is None
            else {"balance": int(account.balance), "earned": int(account.earned)},
            "ledger": entries,
            "operations": [
                {
                    "id": str(o.id),
                    "kind": o.kind,
                    "points": int(o.points),
                    "reason": o.reason,
                    "reference": o.reference,
                    "counterparty": str(o.counterparty_id) if o.counterparty_id else None,
                    "created_at": o.created_at.isoformat(),
                }
                for o in operations
            ],
            "redemptions": [
                RedemptionRead.model_validate(r).model_dump(mode="json") for r in redemptions
            ],
            "badges": [
                {"badge": code, "awarded_at": at.isoformat(), "evidence": dict(evidence or {})}
                for code, at, evidence in badges
            ],
            "totals": {period: int(points) for period, points in tallies},
        }

    def _erase_personal_data(self, member_id: uuid.UUID) -> None:
        """Remove what this organisation's points data says about a member beyond ids and
        amounts: redemption notes and badge evidence. The ledger keeps its entries (ids,
        amounts and reasons, hash-chained) so balances and chains stay whole.

        Only registration's ``erase`` runs it (the module's ``PersonalData``), in each
        organisation of the person, after deciding who may ask.
        """
        org = self.tx.org_id
        self.conn.execute(
            sa.update(PointsRedemption)
            .where(PointsRedemption.org_id == org, PointsRedemption.member_id == member_id)
            .values(note="")
        )
        self.conn.execute(
            sa.update(PointsBadgeAward)
            .where(PointsBadgeAward.org_id == org, PointsBadgeAward.member_id == member_id)
            .values(evidence={})
        )

    @operation("GET /leaderboard", custom=True)
    def leaderboard(
        self,
        period: Period = "all",
        *,
        at: dt.datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[LeaderboardRow]:
        """Members by points earned this week, this month or all time; equal points share a rank.

        Reads the period totals kept with each entry (an index range, no ledger scan).
        """
        at = check("at", Instant | None, at)
        labels = dict(zip(("all", "month", "week"), self._periods(at or utcnow()), strict=True))
        if period not in labels:
            raise ValidationFailed("period", "literal_error", expected="week, month, all")
        label = labels[period]
        org_id = self.tx.org_id
        rows = self.conn.execute(
            sa.select(PointsTally.member_id, PointsTally.points)
            .where(
                PointsTally.org_id == org_id, PointsTally.period == label, PointsTally.points > 0
            )
            .order_by(PointsTally.points.desc(), PointsTally.member_id)
            .limit(min(limit, 500))
            .offset(offset)
        ).all()
        if not rows:
            return []
        above = int(
            self.conn.scalar(
                sa.select(sa.func.count())
                .select_from(PointsTally)
                .where(
                    PointsTally.org_id == org_id,
                    PointsTally.period == label,
                    PointsTally.points > rows[0][1],
                )
            )
            or 0
        )
        out: list[LeaderboardRow] = []
        rank = above + 1
        for position, (member_id, points) in enumerate(rows):
            if position and points < rows[position - 1][1]:
                rank = offset + position + 1
            out.append(LeaderboardRow(rank=rank, member_id=member_id, points=int(points)))
        return out
