"""Helpers shared by the points tests (imported as ``points_helpers``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit
from ngo_kit.context import Context
from ngo_kit.modules.points.models import PointsAccount, PointsEntry, PointsLot
from ngo_kit.tenancy import OrgRead


def member() -> uuid.UUID:
    """A new member id (an account id)."""
    return uuid.uuid4()


def as_system(kit: Kit, org: OrgRead, fn: Callable[[Context], Any]) -> Any:
    """Run ``fn(tx)`` in its own transaction as the system actor."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        return fn(tx)


def ledger_invariants(kit: Kit) -> None:
    """Every invariant ``verify`` checks, plus: no member below zero, entries of each org sum to 0."""
    assert kit.verify() == []
    with kit.begin(actor=SYSTEM) as tx:
        s = tx.session
        assert not s.scalar(
            sa.select(sa.func.count())
            .select_from(PointsAccount)
            .where(PointsAccount.kind == "member", PointsAccount.balance < 0)
        )
        assert not s.scalar(
            sa.select(sa.func.count()).select_from(PointsLot).where(PointsLot.remaining < 0)
        )
        per_org = s.execute(
            sa.select(PointsEntry.org_id, sa.func.sum(PointsEntry.amount)).group_by(
                PointsEntry.org_id
            )
        ).all()
        assert all(int(total) == 0 for _, total in per_org)
