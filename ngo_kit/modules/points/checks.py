"""``ngo-kit verify`` checks of what the points ledger's chain does not cover by itself.

The entries are hash-chained; the operations (``points_txn``) and the lifetime ``earned``
totals are plain rows. These checks hold them to the chained entries, so changing either
shows: an operation must agree with its entries, and an account's ``earned`` must equal the
awards on it less the awards reversed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from ngo_kit.audit import Problem
from ngo_kit.modules.points.models import MEMBER, PointsAccount, PointsEntry, PointsTxn


class OperationCheck:
    """Every operation has entries, moves the points it records, names a member its entries
    touch, and carries the kind, reason, reference and time its entries carry."""

    name = "points.operations"

    def run(self, session: Session) -> list[Problem]:
        """Return one problem per operation that does not agree with its entries."""
        e, t, a = PointsEntry, PointsTxn, PointsAccount
        same = sa.and_(
            e.kind == t.kind,
            e.reason == t.reason,
            e.reference == t.reference,
            e.at == t.created_at,
        )
        rows = session.execute(
            sa.select(
                t.org_id,
                t.id,
                t.kind,
                t.points,
                t.member_id,
                sa.func.count(e.id),
                sa.func.sum(sa.case((e.amount > 0, e.amount), else_=0)),
                sa.func.sum(sa.case((same, 0), else_=1)),
                sa.func.sum(
                    sa.case((sa.and_(a.kind == MEMBER, a.member_id == t.member_id), 1), else_=0)
                ),
            )
            .outerjoin(e, sa.and_(e.txn_id == t.id, e.org_id == t.org_id))
            .outerjoin(a, a.id == e.account_id)
            .group_by(t.org_id, t.id, t.kind, t.points, t.member_id)
            .execution_options(yield_per=2000)
        )
        problems: list[Problem] = []
        for org_id, txn_id, kind, points, member_id, legs, moved, differing, touched in rows:
            message = _disagreement(kind, int(points), member_id, legs, moved, differing, touched)
            if message is not None:
                problems.append(
                    Problem(
                        self.name, org_id, f"operation {txn_id} ({kind}) {message}", str(txn_id)
                    )
                )
        return problems


def _disagreement(
    kind: str, points: int, member_id: Any, legs: Any, moved: Any, differing: Any, touched: Any
) -> str | None:
    if not legs:
        return "has no ledger entries"
    if int(moved or 0) != points:
        return f"records {points} points but its entries move {int(moved or 0)}"
    if int(differing or 0):
        return "does not match its entries: kind, reason, reference or time was changed"
    if member_id is not None and not int(touched or 0):
        return f"names member {member_id}, but none of its entries is on that member's account"
    return None


class EarnedCheck:
    """Every account's lifetime ``earned`` equals the awards on it less the awards reversed
    (system accounts earn nothing)."""

    name = "points.earned"

    def run(self, session: Session) -> list[Problem]:
        """Return one problem per account whose ``earned`` is off."""
        e, t, a = PointsEntry, PointsTxn, PointsAccount
        original = aliased(PointsTxn)
        earning = sa.or_(e.kind == "award", sa.and_(e.kind == "reverse", original.kind == "award"))
        sums = (
            sa.select(e.account_id, sa.func.sum(e.amount).label("total"))
            .join(t, sa.and_(t.id == e.txn_id, t.org_id == e.org_id))
            .outerjoin(original, original.id == t.reverses_id)
            .where(earning)
            .group_by(e.account_id)
            .subquery()
        )
        expected = sa.case((a.kind == MEMBER, sa.func.coalesce(sums.c.total, 0)), else_=0)
        rows = session.execute(
            sa.select(a.org_id, a.id, a.kind, a.earned, expected)
            .outerjoin(sums, sums.c.account_id == a.id)
            .where(a.earned != expected)
        )
        return [
            Problem(
                self.name,
                org_id,
                f"account {account_id} ({kind}) has earned {earned} "
                f"but its award entries sum to {int(total)}",
                str(account_id),
            )
            for org_id, account_id, kind, earned, total in rows
        ]


OPERATION_CHECK = OperationCheck()
EARNED_CHECK = EarnedCheck()

__all__ = ["EARNED_CHECK", "OPERATION_CHECK", "EarnedCheck", "OperationCheck"]
