"""HTTP routes of the points module (the ``web`` extra): standing and statement, awards,
the rewards catalogue, redemptions, the leaderboard and the CSV export of the ledger.

Mounted by ``ngo_kit.web.create_app`` under ``/api/orgs/{org}/points``. Routes hold no business
rule: each opens one unit of work and calls one method of ``tx.points``, which checks the
permissions (a member sees their own points; ``points.view`` sees anyone's).
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from ngo_kit.context import Context
from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit
from ngo_kit.plugins import Registrar
from ngo_kit.schemas import InputModel, Integer, Text
from ngo_kit.web import RequestContext, Routes, request_context

from .schemas import (
    AwardIn,
    EntryRead,
    LeaderboardRow,
    Period,
    RedemptionRead,
    RewardIn,
    RewardRead,
    StandingRead,
    TransactionRead,
)
from .service import PointsService

Ctx = Annotated[RequestContext, Depends(request_context)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
BeforeSeq = Annotated[int | None, Query(ge=1, le=2**62)]


class RedeemBody(InputModel):
    """Redeem a reward; ``member_id`` defaults to the signed-in member (staff may name another)."""

    reward_id: uuid.UUID
    quantity: Integer = Field(default=1, gt=0, le=1000)
    member_id: uuid.UUID | None = None
    key: Text | None = Field(default=None, min_length=1, max_length=200)


def _points(tx: Context) -> PointsService:
    """``tx.points``, typed."""
    service: PointsService = tx.points
    return service


def build_router() -> APIRouter:
    """The points routes (relative to ``/api/orgs/{org}/points``)."""
    router = APIRouter()

    @router.get("/me")
    def my_standing(ctx: Ctx) -> StandingRead:
        """The signed-in member's balance, lifetime earned points and level."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).standing(actor)

    @router.get("/me/statement")
    def my_statement(ctx: Ctx, limit: Limit = 50, before_seq: BeforeSeq = None) -> list[EntryRead]:
        """The signed-in member's entries, newest first (page with ``before_seq``)."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).statement(actor, limit=limit, before_seq=before_seq)

    @router.get("/members/{member_id}")
    def standing(member_id: uuid.UUID, ctx: Ctx) -> StandingRead:
        """A member's balance, earned points and level (their own, or ``points.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).standing(member_id)

    @router.get("/members/{member_id}/statement")
    def statement(
        member_id: uuid.UUID, ctx: Ctx, limit: Limit = 50, before_seq: BeforeSeq = None
    ) -> list[EntryRead]:
        """A member's entries, newest first (their own, or ``points.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).statement(member_id, limit=limit, before_seq=before_seq)

    @router.post("/awards", status_code=201)
    def award(body: AwardIn, ctx: Ctx) -> TransactionRead:
        """Award points to a member (``points.award``); a repeated ``key`` returns the first."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).award(body)

    @router.get("/rewards")
    def rewards(ctx: Ctx, available_only: bool = False) -> list[RewardRead]:
        """The rewards catalogue (``available_only``: active, in their window, in stock)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).rewards(available_only=available_only)

    @router.post("/rewards", status_code=201)
    def add_reward(body: RewardIn, ctx: Ctx) -> RewardRead:
        """Add a reward to the catalogue (``rewards.manage``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).add_reward(body)

    @router.post("/redemptions", status_code=201)
    def redeem(body: RedeemBody, ctx: Ctx) -> RedemptionRead:
        """Redeem a reward: points and stock are taken at once (``insufficient_points``...)."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).redeem(
                reward_id=body.reward_id,
                member_id=body.member_id or actor,
                quantity=body.quantity,
                key=body.key,
            )

    @router.get("/me/redemptions")
    def my_redemptions(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> list[RedemptionRead]:
        """The signed-in member's redemptions, newest first."""
        actor = ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).redemptions(member_id=actor, limit=limit, offset=offset)

    @router.get("/leaderboard")
    def leaderboard(
        ctx: Ctx, period: Period = "all", limit: Limit = 20, offset: Offset = 0
    ) -> list[LeaderboardRow]:
        """Members by points earned this week, this month or all time; ties share a rank."""
        ctx.require_actor()
        with ctx.begin() as tx:
            return _points(tx).leaderboard(period, limit=limit, offset=offset)

    @router.get(
        "/entries.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "the entries as CSV"}},
    )
    def export_csv(ctx: Ctx) -> Response:
        """Every entry of the organisation as a CSV download (``points.view``)."""
        ctx.require_actor()
        with ctx.begin() as tx:
            text = _points(tx).export_csv()
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="points-entries.csv"'},
        )

    return router


@hookimpl
def ngo_kit_register_routes(register: Registrar[Routes], kit: Kit) -> None:
    """Contribute the points routes (collect hook of ``ngo_kit.web``)."""
    register(Routes("points", build_router()))


__all__ = ["build_router", "ngo_kit_register_routes"]
