"""The rewards catalogue, redemptions and their fulfilment or cancellation."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from ngo_kit import idempotency
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    InsufficientPoints,
    InsufficientStock,
    KeyReused,
    ValidationFailed,
)
from ngo_kit.modules.points.errors import LimitReached, RewardUnavailable, WrongStatus
from ngo_kit.modules.points.models import PointsRedemption, PointsReward
from ngo_kit.modules.points.posting import Posting, _Leg, _Plan
from ngo_kit.modules.points.schemas import (
    RedeemIn,
    RedemptionRead,
    RewardIn,
    RewardRead,
    RewardUpdate,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Prose, check, coerce


class Rewards(Posting):
    """The rewards catalogue and redemptions."""

    @operation(
        "POST /rewards",
        custom=True,
        status=201,
        permission="rewards.manage",
        errors=(AlreadyExists,),
    )
    def add_reward(
        self, data: RewardIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> RewardRead:
        """Add a reward to the catalogue (``rewards.manage``); ``AlreadyExists`` for a taken code."""
        spec = coerce(RewardIn, data, kwargs)
        self.tx.require("rewards.manage")
        values = spec.model_dump()
        values.update(id=new_id(), org_id=self.tx.org_id, created_at=utcnow())
        with self.tx.translate_integrity(AlreadyExists("Reward", spec.code)):
            self.conn.execute(sa.insert(PointsReward).values(values))
        self.tx.audit(
            "reward.added",
            "reward",
            values["id"],
            f"reward {spec.code} added",
            spec.model_dump(mode="json"),
        )
        return RewardRead.model_validate(values)

    @operation(
        "PATCH /rewards/{reward_id}", permission="rewards.manage", errors=(InsufficientStock,)
    )
    def update_reward(
        self,
        reward_id: uuid.UUID,
        data: RewardUpdate | dict[str, Any] | None = None,
        /,
        **kwargs: Any,
    ) -> RewardRead:
        """Change a reward (``rewards.manage``); ``add_stock`` adds (or with a negative number removes) stock."""
        spec = coerce(RewardUpdate, data, kwargs)
        self.tx.require("rewards.manage")
        reward = self.tx.get_owned(PointsReward, reward_id, "Reward")
        changes = spec.model_dump(exclude_none=True)
        add = changes.pop("add_stock", None)
        stmt = sa.update(PointsReward).where(PointsReward.id == reward.id)
        if add is not None:
            if reward.stock is None:
                raise ValidationFailed("add_stock", "invalid", "the reward has unlimited stock")
            changes["stock"] = PointsReward.stock + add
            if add < 0:
                stmt = stmt.where(PointsReward.stock >= -add)
        if changes:
            if self.conn.execute(stmt.values(**changes)).rowcount != 1:
                raise InsufficientStock(requested=-int(add or 0), available=reward.stock)
            self.tx.audit(
                "reward.updated",
                "reward",
                reward.id,
                f"reward {reward.code} updated",
                spec.model_dump(mode="json", exclude_none=True),
            )
        self.session.expire(reward)
        return RewardRead.model_validate(self.tx.get_owned(PointsReward, reward_id, "Reward"))

    @operation("GET /rewards", custom=True)
    def rewards(self, *, available_only: bool = False) -> list[RewardRead]:
        """The catalogue; with ``available_only`` only active rewards in their window with stock."""
        stmt = sa.select(PointsReward).where(PointsReward.org_id == self.tx.org_id)
        if available_only:
            now = utcnow()
            stmt = stmt.where(
                PointsReward.active.is_(True),
                sa.or_(PointsReward.stock.is_(None), PointsReward.stock > 0),
                sa.or_(PointsReward.starts_at.is_(None), PointsReward.starts_at <= now),
                sa.or_(PointsReward.ends_at.is_(None), PointsReward.ends_at > now),
            )
        return [
            RewardRead.model_validate(r)
            for r in self.session.scalars(stmt.order_by(PointsReward.code))
        ]

    @operation("GET /rewards/{reward_id}")
    def reward(self, reward_id: uuid.UUID) -> RewardRead:
        """One reward; ``NotFound`` for another organisation's."""
        return RewardRead.model_validate(self.tx.get_owned(PointsReward, reward_id, "Reward"))

    @operation(
        "POST /redemptions",
        custom=True,
        status=201,
        permission="rewards.fulfil",
        own=True,
        errors=(RewardUnavailable, InsufficientPoints, InsufficientStock, LimitReached, KeyReused),
    )
    def redeem(
        self, data: RedeemIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> RedemptionRead:
        """Redeem a reward for a member: points and stock are taken in this transaction.

        The actor must be the member, or hold ``rewards.fulfil``. Raises ``RewardUnavailable``,
        ``InsufficientPoints``, ``InsufficientStock``, ``LimitReached``. A plugin may fulfil it
        at once (``ngo_kit_fulfil_redemption``). Emits ``ngo_kit_points_spent`` and
        ``ngo_kit_reward_redeemed``. With ``key`` a retry returns the first redemption.
        """
        spec = coerce(RedeemIn, data, kwargs)
        if self.tx.actor_id != spec.member_id:
            self.tx.require("rewards.fulfil")
        keyed = self._keyed(
            "points.redeem",
            spec.key,
            reward_id=spec.reward_id,
            member_id=spec.member_id,
            quantity=spec.quantity,
        )
        if spec.key is not None:
            found = self._redemption_by_key(keyed)
            if found is not None:
                return found
        reward = self.tx.get_owned(PointsReward, spec.reward_id, "Reward")
        now = utcnow()
        live = (
            reward.active
            and (reward.starts_at is None or reward.starts_at <= now)
            and (reward.ends_at is None or now < reward.ends_at)
        )
        if not live:
            raise RewardUnavailable(reward=reward.code)
        if reward.stock is not None and reward.stock < spec.quantity:
            raise InsufficientStock(requested=spec.quantity, available=reward.stock)
        points = reward.price * spec.quantity
        self._precheck(spec.member_id, points)
        redemption_id, txn_id = new_id(), new_id()
        row = {
            "id": redemption_id,
            "org_id": self.tx.org_id,
            "reward_id": reward.id,
            "member_id": spec.member_id,
            "quantity": spec.quantity,
            "points": points,
            "status": "requested",
            **keyed,
            "txn_id": txn_id,
            "refund_txn_id": None,
            "note": "",
            "created_at": now,
            "updated_at": now,
        }
        if spec.key is None:
            self.conn.execute(sa.insert(PointsRedemption).values(row))
        elif not self._insert_new(PointsRedemption, row):
            found = self._redemption_by_key(keyed)
            assert found is not None
            return found

        def take_reward() -> None:
            if reward.per_member_limit is not None:
                # The member's account is locked now, so this count cannot race another redemption.
                taken = self.conn.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(PointsRedemption.quantity), 0)).where(
                        PointsRedemption.org_id == self.tx.org_id,
                        PointsRedemption.reward_id == reward.id,
                        PointsRedemption.member_id == spec.member_id,
                        PointsRedemption.status != "cancelled",
                    )
                )
                if int(taken or 0) > reward.per_member_limit:
                    raise LimitReached(limit=reward.per_member_limit, what=reward.code)
            if reward.stock is not None:
                moved = self.conn.execute(
                    sa.update(PointsReward)
                    .where(PointsReward.id == reward.id, PointsReward.stock >= spec.quantity)
                    .values(stock=PointsReward.stock - spec.quantity)
                ).rowcount
                if moved != 1:
                    left = self.conn.scalar(
                        sa.select(PointsReward.stock).where(PointsReward.id == reward.id)
                    )
                    raise InsufficientStock(requested=spec.quantity, available=left)

        self._spend(
            "redeem",
            spec.member_id,
            points,
            "redemption",
            reason=f"redeemed {reward.code}",
            reference=str(redemption_id),
            txn_id=txn_id,
            before_entries=take_reward,
        )
        self.tx.audit(
            "reward.redeemed",
            "redemption",
            redemption_id,
            f"{spec.quantity} x {reward.code} redeemed for {points} points",
            {"reward": reward.id, "member": spec.member_id, "points": points, "key": spec.key},
        )
        read = RedemptionRead.model_validate(row)
        note = self.tx.decide("ngo_kit_fulfil_redemption", tx=self.tx, redemption=read)
        if note is not None:
            read = self._set_status(read, "fulfilled", str(note)[:300])
        self._emit("ngo_kit_reward_redeemed", redemption=read)
        return read

    def _redemption_by_key(self, keyed: dict[str, Any]) -> RedemptionRead | None:
        """The redemption made with ``keyed``'s key in its scope; ``KeyReused`` when that one
        had other parameters."""
        row = idempotency.first_row(self.tx, PointsRedemption, keyed)
        return RedemptionRead.model_validate(row) if row is not None else None

    def _set_status(
        self, read: RedemptionRead, status: str, note: str, refund: uuid.UUID | None = None
    ) -> RedemptionRead:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "note": note, "updated_at": now}
        if refund is not None:
            values["refund_txn_id"] = refund
        done = self.conn.execute(
            sa.update(PointsRedemption)
            .where(PointsRedemption.id == read.id, PointsRedemption.status == "requested")
            .values(**values)
        ).rowcount
        if done != 1:
            current = self.conn.scalar(
                sa.select(PointsRedemption.status).where(PointsRedemption.id == read.id)
            )
            raise WrongStatus(redemption=read.id, status=current, needed="requested")
        return read.model_copy(update=values)

    @operation("GET /redemptions/{redemption_id}", permission="rewards.fulfil", own=True)
    def redemption(self, redemption_id: uuid.UUID) -> RedemptionRead:
        """One redemption (the member's own, or any with ``rewards.fulfil``)."""
        row = self.tx.get_owned(PointsRedemption, redemption_id, "Redemption")
        if self.tx.actor_id != row.member_id:
            self.tx.require("rewards.fulfil")
        return RedemptionRead.model_validate(row)

    @operation("GET /me/redemptions", custom=True, permission="rewards.fulfil", own=True)
    def redemptions(
        self,
        *,
        status: str | None = None,
        member_id: uuid.UUID | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RedemptionRead]:
        """Redemptions, newest first: a member's own, or all with ``rewards.fulfil``."""
        if member_id is None or self.tx.actor_id != member_id:
            self.tx.require("rewards.fulfil")
        stmt = sa.select(PointsRedemption).where(PointsRedemption.org_id == self.tx.org_id)
        if status is not None:
            stmt = stmt.where(PointsRedemption.status == status)
        if member_id is not None:
            stmt = stmt.where(PointsRedemption.member_id == member_id)
        stmt = stmt.order_by(PointsRedemption.created_at.desc(), PointsRedemption.id.desc())
        return [
            RedemptionRead.model_validate(r)
            for r in self.session.scalars(stmt.limit(limit).offset(offset))
        ]

    @operation(
        "POST /redemptions/{redemption_id}/fulfil",
        permission="rewards.fulfil",
        errors=(WrongStatus,),
    )
    def fulfil(self, redemption_id: uuid.UUID, *, note: str = "") -> RedemptionRead:
        """Hand a requested redemption over and mark it fulfilled (``rewards.fulfil``).

        A plugin that hands the goods over (``ngo_kit_hand_over_redemption``, e.g. issuing a
        stock-backed reward from inventory) does so in the same transaction, and its note is
        added to ``note``. ``WrongStatus`` when the redemption is not ``requested``; whatever
        the plugin raises rolls the whole fulfilment back.
        """
        self.tx.require("rewards.fulfil")
        note = check("note", Prose, note)
        read = RedemptionRead.model_validate(
            self.tx.get_owned(PointsRedemption, redemption_id, "Redemption")
        )
        read = self._set_status(read, "fulfilled", note[:300])  # claims the row first
        handed = self.tx.decide("ngo_kit_hand_over_redemption", tx=self.tx, redemption=read)
        if handed is not None:
            combined = "; ".join(part for part in (note, str(handed)) if part)[:300]
            self.conn.execute(
                sa.update(PointsRedemption)
                .where(PointsRedemption.id == read.id)
                .values(note=combined)
            )
            read = read.model_copy(update={"note": combined})
        self.tx.audit(  # the note as kept, with what the plugin handed over
            "reward.fulfilled", "redemption", read.id, "redemption fulfilled", {"note": read.note}
        )
        return read

    @operation(
        "POST /redemptions/{redemption_id}/cancel",
        permission="rewards.fulfil",
        own=True,
        errors=(WrongStatus,),
    )
    def cancel_redemption(self, redemption_id: uuid.UUID, *, note: str = "") -> RedemptionRead:
        """Cancel a requested redemption: refund the points into the same lots and return the stock.

        The member may cancel their own; staff need ``rewards.fulfil``. ``WrongStatus`` when it
        is not ``requested`` any more.
        """
        note = check("note", Prose, note)
        row = self.tx.get_owned(PointsRedemption, redemption_id, "Redemption")
        if self.tx.actor_id != row.member_id:
            self.tx.require("rewards.fulfil")
        read = RedemptionRead.model_validate(row)
        refund = self._new_txn(
            "refund",
            member_id=read.member_id,
            points=read.points,
            reason="redemption cancelled",
            reference=str(read.id),
            reverses_id=read.txn_id,
        )
        read = self._set_status(read, "cancelled", note[:300], refund=refund["id"])
        self._claim(refund)
        system = self._system_accounts()
        account = self._member_accounts([read.member_id], create=False)[read.member_id]
        plan = _Plan()
        i = plan.add_txn(refund)
        plan.legs.append(_Leg(i, account, read.points, "refund"))
        plan.legs.append(_Leg(i, system["redemption"], -read.points, "refund"))

        def return_stock() -> None:
            self.conn.execute(
                sa.update(PointsReward)
                .where(PointsReward.id == read.reward_id, PointsReward.stock.is_not(None))
                .values(stock=PointsReward.stock + read.quantity)
            )

        self._post(plan, return_stock)
        self._restore_lots(read.txn_id, account, refund["id"])
        self.tx.audit(
            "reward.cancelled",
            "redemption",
            read.id,
            f"redemption cancelled, {read.points} points refunded",
            {"refund": refund["id"], "note": note},
        )
        return read
