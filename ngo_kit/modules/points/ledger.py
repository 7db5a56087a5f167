"""The ledger's operations: award, award to many, deduct, transfer, reverse, expire, and the
settings that govern them (expiry, transfers)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from ngo_kit import idempotency
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import InsufficientPoints, KeyReused, SelfActionRefused, ValidationFailed
from ngo_kit.modules.points.base import LOTS, TXNS, _chunks
from ngo_kit.modules.points.errors import LimitReached, NotReversible, TransfersDisabled
from ngo_kit.modules.points.models import (
    MEMBER,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsSettings,
    PointsTxn,
)
from ngo_kit.modules.points.posting import Posting, _Leg, _Plan
from ngo_kit.modules.points.schemas import (
    AwardIn,
    BatchAwardIn,
    DeductIn,
    SettingsIn,
    SettingsRead,
    TransactionRead,
    TransferIn,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Instant, Text, check, coerce
from ngo_kit.statements import insert_rows


def _positional(
    member_id: Any, points: int | None, kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """``award(member, 10, ...)`` and ``award(AwardIn(...))`` / ``award({...})`` alike."""
    if isinstance(member_id, uuid.UUID | str):
        kwargs = {**kwargs, "member_id": member_id}
        if points is not None:
            kwargs["points"] = points
        return None, kwargs
    return member_id, kwargs


class Ledger(Posting):
    """Award, deduct, transfer, reverse and expire points; the points settings."""

    @operation(
        "POST /awards",
        custom=True,
        status=201,
        permission="points.award",
        errors=(LimitReached, KeyReused, SelfActionRefused),
    )
    def award(
        self,
        member_id: uuid.UUID | AwardIn | dict[str, Any] | None = None,
        points: int | None = None,
        /,
        **kwargs: Any,
    ) -> TransactionRead:
        """Award points to a member (``points.award``); opens the member's account on first award.

        ``award(member_id, points, reason=..., key=...)``, or an ``AwardIn`` / dict.

        ``rule`` names an active ``manual`` rule whose caps apply (``LimitReached`` when over).
        ``key`` makes the call idempotent: a repeat by the same actor returns the first result,
        whatever changed since (the rule's cap reached, say); with other parameters it is
        ``KeyReused``. Emits ``ngo_kit_points_awarded``.
        """
        spec = coerce(AwardIn, *_positional(member_id, points, kwargs))
        self.tx.require_for("points.award", spec.member_id)
        self._check_manual_ceiling({spec.member_id: spec.points})
        rule = self._service._rule_by_name(spec.rule) if spec.rule is not None else None

        def check_rule(txn_id: uuid.UUID) -> None:
            if rule is None:
                return
            if rule.rule_type != "manual" or not self._service._rule_live(rule, utcnow()):
                raise ValidationFailed("rule", "invalid", "is not an active manual rule")
            allowed = self._service._cap_left(rule, spec.member_id, besides=txn_id)
            if allowed is not None and spec.points > allowed:
                raise LimitReached(limit=allowed, what=rule.name)

        return self._earn(
            spec.member_id,
            spec.points,
            reason=spec.reason or (rule.reason if rule else ""),
            reference=spec.reference,
            keyed=self._keyed(
                "points.award",
                spec.key,
                member_id=spec.member_id,
                points=spec.points,
                reason=spec.reason,
                reference=spec.reference,
                rule=spec.rule,
            ),
            rule=rule,
            check=check_rule,
        )

    @operation(
        "POST /award-batches",
        status=201,
        permission="points.award",
        errors=(KeyReused, SelfActionRefused),
    )
    def award_many(
        self, data: BatchAwardIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> int:
        """Award points to many members at once (``points.award``): ``awards={member: points}``.

        One operation per member; with ``key`` each is keyed ``<key>:<member>`` so a retried
        batch awards only the members it missed. Returns how many members were awarded now.
        """
        spec = coerce(BatchAwardIn, data, kwargs)
        self.tx.require("points.award")
        awards = dict(spec.awards)
        for member in awards:
            self.tx.refuse_self("points.award", member)
        self._check_manual_ceiling(awards)
        # a retried batch (its note reworded, say) completes: each member's share is the request
        keyed = {
            m: self._keyed(
                "points.award_many", f"{spec.key}:{m}" if spec.key else None, member_id=m, points=p
            )
            for m, p in awards.items()
        }
        if spec.key:
            done = self._used_scopes([k for k in keyed.values() if k["key_scope"]])
            awards = {m: p for m, p in awards.items() if keyed[m]["key_scope"] not in done}
        if not awards:
            return 0
        self._require_members(list(awards), "awards")
        now = utcnow()
        org_id = self.tx.org_id
        txns: list[dict[str, Any]] = [
            {
                "id": new_id(),
                "org_id": org_id,
                "kind": "award",
                **keyed[m],
                "member_id": m,
                "counterparty_id": None,
                "points": p,
                "reason": spec.reason,
                "reference": spec.reference,
                "rule_id": None,
                "reverses_id": None,
                "created_at": now,
            }
            for m, p in awards.items()
        ]
        if spec.key is None:
            insert_rows(self.conn, TXNS, txns)
        else:
            # INSERT-or-nothing each keyed operation: a twin batch racing on another connection
            # keeps the members it claimed first; this one awards the rest. Claimed in key
            # order, so twins never wait for each other's keys in opposite orders (on MySQL a
            # skipped duplicate also locks the gap before it, which crossing inserts deadlock on).
            self.conn.execute(self.st.ignore_txn, sorted(txns, key=lambda t: str(t["key_scope"])))
            mine = self._existing_ids([t["id"] for t in txns])
            txns = [t for t in txns if t["id"] in mine]
            awards = {t["member_id"]: t["points"] for t in txns}
            if not txns:
                return 0
        system = self._system_accounts()
        accounts = self._member_accounts(list(awards), create=True)
        plan = _Plan(txns=txns)
        issuance = system["issuance"]
        for i, txn in enumerate(txns):
            points = txn["points"]
            plan.legs.append(_Leg(i, issuance, -points, "award"))
            plan.legs.append(_Leg(i, accounts[txn["member_id"]], points, "award", earned=points))
        self._post(plan)
        settings = self._settings()
        expires = self._expiry_date(settings, now)
        insert_rows(
            self.conn,
            LOTS,
            [
                self._open_lots(accounts[t["member_id"]], expires, t["points"], t["id"], now)
                for t in txns
            ],
        )
        self._tally([(t["member_id"], t["points"], now) for t in txns])
        total = sum(awards.values())
        self.tx.audit(
            "points.awarded_many",
            "points_batch",
            spec.key or txns[0]["id"],
            f"{total} points awarded to {len(awards)} members",
            {"members": len(awards), "points": total, "reason": spec.reason, "key": spec.key},
        )
        if settings.recognition:
            self._service._recognise(awards)
        if self._has_hook("ngo_kit_points_awarded"):
            for leg in plan.legs[1::2]:
                txn = txns[leg.txn]
                self.tx.emit(
                    "ngo_kit_points_awarded",
                    award=TransactionRead(
                        id=txn["id"],
                        kind="award",
                        member_id=txn["member_id"],
                        points=txn["points"],
                        balance_after=leg.balance_after,
                        reason=spec.reason,
                        reference=spec.reference,
                        key=txn["key"],
                        created_at=now,
                    ),
                )
        return len(awards)

    def _check_manual_ceiling(self, awards: dict[uuid.UUID, int]) -> None:
        """Refuse a person's manual award above ``points_manual_award_max`` (per member)."""
        if self.tx.is_system:
            return
        ceiling = self.tx.kit.settings.points_manual_award_max
        if any(points > ceiling for points in awards.values()):
            raise ValidationFailed("points", "above_manual_award_max", max=ceiling)

    def _existing_ids(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        found: set[uuid.UUID] = set()
        for chunk in _chunks(ids):
            found.update(self.conn.scalars(sa.select(TXNS.c.id).where(self._in(TXNS.c.id, chunk))))
        return found

    def _used_scopes(self, keyed: list[dict[str, Any]]) -> set[str]:
        """The scopes of ``keyed`` used already; ``KeyReused`` when one was used with other
        parameters."""
        wanted = {k["key_scope"]: k for k in keyed}
        used: set[str] = set()
        for chunk in _chunks(list(wanted)):
            for scope, fingerprint in self.conn.execute(
                sa.select(PointsTxn.key_scope, PointsTxn.key_fingerprint).where(
                    PointsTxn.org_id == self.tx.org_id, self._in(PointsTxn.key_scope, chunk)
                )
            ):
                mine = wanted[str(scope)]
                idempotency.check_same(mine["key"], fingerprint, mine["key_fingerprint"])
                used.add(str(scope))
        return used

    @operation(
        "POST /deductions",
        status=201,
        permission="points.adjust",
        errors=(InsufficientPoints, KeyReused),
    )
    def deduct(
        self,
        member_id: uuid.UUID | DeductIn | dict[str, Any] | None = None,
        points: int | None = None,
        /,
        **kwargs: Any,
    ) -> TransactionRead:
        """Take points from a member (``points.adjust``) into the adjustment account.

        Raises ``InsufficientPoints`` when the balance is lower. Emits ``ngo_kit_points_spent``.
        """
        spec = coerce(DeductIn, *_positional(member_id, points, kwargs))
        self.tx.require("points.adjust")
        return self._spend(
            "deduct",
            spec.member_id,
            spec.points,
            "adjustment",
            reason=spec.reason,
            reference=spec.reference,
            keyed=self._keyed(
                "points.deduct",
                spec.key,
                member_id=spec.member_id,
                points=spec.points,
                reason=spec.reason,
                reference=spec.reference,
            ),
        )

    @operation(
        "POST /transfers",
        status=201,
        permission="points.adjust",
        own=True,
        errors=(TransfersDisabled, InsufficientPoints, KeyReused),
    )
    def transfer(
        self, data: TransferIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> TransactionRead:
        """Give points to another member, when the organisation allows transfers.

        The sender must be the actor (or the actor holds ``points.adjust``). The points keep
        their expiry dates. Raises ``TransfersDisabled``, ``InsufficientPoints``.
        """
        spec = coerce(TransferIn, data, kwargs)
        if self.tx.actor_id != spec.from_member:
            self.tx.require("points.adjust")
        txn = self._new_txn(
            "transfer",
            member_id=spec.from_member,
            counterparty_id=spec.to_member,
            points=spec.points,
            reason=spec.reason,
            **self._keyed(
                "points.transfer",
                spec.key,
                from_member=spec.from_member,
                to_member=spec.to_member,
                points=spec.points,
                reason=spec.reason,
            ),
        )
        if txn["key_scope"] is not None and not self._claim(txn):
            return self._existing(txn)  # a repeat: before settings and balance are looked at
        if not self._settings().transfers_allowed:
            raise TransfersDisabled()
        self._precheck(spec.from_member, spec.points)
        if txn["key_scope"] is None:
            self._claim(txn)
        self._require_members([spec.to_member], "to_member")
        accounts = self._member_accounts([spec.from_member, spec.to_member], create=True)
        sender, recipient = accounts[spec.from_member], accounts[spec.to_member]
        plan = _Plan()
        i = plan.add_txn(txn)
        plan.legs.append(_Leg(i, sender, -spec.points, "transfer", guarded=True))
        plan.legs.append(_Leg(i, recipient, spec.points, "transfer"))
        self._post(plan)
        taken = self._consume(sender, spec.points, txn["id"])
        self._mirror_lots(recipient, taken, txn["id"])
        self.tx.audit(
            "points.transferred",
            "points_account",
            spec.from_member,
            f"{spec.points} points transferred",
            {"txn": txn["id"], "to": spec.to_member, "points": spec.points, "key": spec.key},
        )
        read = self._txn_read(txn, plan.legs[0].balance_after)
        self._emit("ngo_kit_points_spent", spending=read)
        return read

    def _mirror_lots(
        self,
        account_id: uuid.UUID,
        portions: list[tuple[dt.datetime | None, int]],
        txn_id: uuid.UUID,
    ) -> None:
        merged: dict[dt.datetime | None, int] = defaultdict(int)
        for expires_at, amount in portions:
            merged[expires_at] += amount
        self.conn.execute(
            sa.insert(PointsLot),
            [self._open_lots(account_id, e, n, txn_id) for e, n in merged.items()],
        )

    @operation(
        "POST /transactions/{txn_id}/reverse",
        permission="points.adjust",
        errors=(NotReversible, InsufficientPoints, KeyReused),
    )
    def reverse(
        self, txn_id: uuid.UUID, *, reason: str = "", key: str | None = None
    ) -> TransactionRead:
        """Write a compensating operation for an award, deduction or transfer (``points.adjust``).

        Nothing is edited: the new operation points at the original. An operation is reversed
        at most once (``NotReversible``); reversing an award the member has spent raises
        ``InsufficientPoints``. Use ``cancel_redemption`` for redemptions.
        """
        self.tx.require("points.adjust")
        reason = check("reason", Text, reason)
        key = check("key", Text | None, key)
        original = self.tx.get_owned(PointsTxn, txn_id, "Points operation")
        if original.kind not in ("award", "deduct", "transfer"):
            raise NotReversible(txn=txn_id, why=original.kind)
        # without a key, the operation's own: one scope whoever reverses it
        keyed = self._keyed(
            "points.reverse",
            key or f"reverse:{original.id}",
            shared=key is None,
            txn_id=original.id,
            reason=reason,
        )
        done = self.conn.scalar(
            sa.select(PointsTxn.key_scope).where(
                PointsTxn.org_id == self.tx.org_id, PointsTxn.reverses_id == original.id
            )
        )
        if done is not None:
            if done == keyed["key_scope"]:
                return self._existing(keyed)
            raise NotReversible(txn=txn_id, why="already reversed")
        legs = self.conn.execute(
            sa.select(PointsEntry.account_id, PointsEntry.amount, PointsAccount.kind)
            .join(PointsAccount, PointsAccount.id == PointsEntry.account_id)
            .where(PointsEntry.txn_id == original.id)
            .order_by(PointsEntry.seq)
        ).all()
        for account_id, amount, kind in legs:
            if kind == MEMBER and amount > 0:
                balance = self.conn.scalar(
                    sa.select(PointsAccount.balance).where(PointsAccount.id == account_id)
                )
                if int(balance or 0) < amount:
                    raise InsufficientPoints(requested=amount, available=int(balance or 0))
        reason = reason or f"reversal of {original.kind}"
        txn = self._new_txn(
            "reverse",
            **keyed,
            member_id=original.member_id,
            counterparty_id=original.counterparty_id,
            points=original.points,
            reason=reason,
            reference=str(original.id),
            reverses_id=original.id,
        )
        try:
            with self.tx.savepoint():
                claimed = self._claim(txn)
        except sa.exc.IntegrityError:  # reversed meanwhile under another key
            raise NotReversible(txn=txn_id, why="already reversed") from None
        if not claimed:
            return self._existing(txn)
        is_award = original.kind == "award"
        plan = _Plan()
        i = plan.add_txn(txn)
        for account_id, amount, kind in legs:
            member = kind == MEMBER
            plan.legs.append(
                _Leg(
                    i,
                    account_id,
                    -amount,
                    "reverse",
                    guarded=member and amount > 0,
                    earned=-amount if (is_award and member) else 0,
                )
            )
        self._post(plan)
        for account_id, amount, kind in legs:
            if kind != MEMBER:
                continue
            if amount > 0:
                self._consume(account_id, amount, txn["id"], prefer_txn=original.id)
            else:
                self._restore_lots(original.id, account_id, txn["id"])
        if is_award and original.member_id is not None:
            self._tally([(original.member_id, -original.points, original.created_at)])
        self.tx.audit(
            "points.reversed",
            "points_txn",
            original.id,
            f"{original.kind} of {original.points} points reversed",
            {"txn": txn["id"], "reverses": original.id, "reason": reason},
        )
        member_leg = next(
            (leg for leg in plan.legs if leg.account_id in self._accounts_of(original.member_id)),
            None,
        )
        return self._txn_read(txn, member_leg.balance_after if member_leg else None)

    def _accounts_of(self, member_id: uuid.UUID | None) -> set[uuid.UUID]:
        if member_id is None:
            return set()
        return set(self._member_accounts([member_id], create=False).values())

    @operation("GET /settings")
    def settings(self) -> SettingsRead:
        """The organisation's points settings."""
        return self._settings()

    @operation("PATCH /settings", permission="points.configure")
    def configure(
        self, data: SettingsIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> SettingsRead:
        """Change the settings (``points.configure``): ``expiry_months`` (0 = never), transfers.

        Expiry applies to points earned from now on.
        """
        spec = coerce(SettingsIn, data, kwargs)
        self.tx.require("points.configure")
        current = self._settings()
        changes = spec.model_dump(exclude_none=True)
        if changes.get("expiry_months") == 0:
            changes["expiry_months"] = None
        merged = current.model_copy(update=changes)
        self._ensure_settings()
        self.conn.execute(
            sa.update(PointsSettings)
            .where(PointsSettings.org_id == self.tx.org_id)
            .values(expiry_months=merged.expiry_months, transfers_allowed=merged.transfers_allowed)
        )
        self.tx.audit(
            "points.configured",
            "points_settings",
            self.tx.org_id,
            "points settings changed",
            merged.model_dump(),
        )
        return merged

    @operation("POST /lots/expire", permission="points.adjust", cli="expire")
    def expire(self, now: dt.datetime | None = None) -> int:
        """Expire every lot whose date has passed (``points.adjust``); returns the points expired.

        Idempotent and safe to run from cron: expired lots are emptied, so a second run finds
        nothing. One ``expire`` operation per member account.
        """
        self.tx.require("points.adjust")
        now = check("now", Instant | None, now) or utcnow()
        due = (
            self.conn.execute(
                sa.select(PointsLot.account_id)
                .where(
                    PointsLot.org_id == self.tx.org_id,
                    PointsLot.expires_at <= now,
                    PointsLot.remaining > 0,
                )
                .distinct()
            )
            .scalars()
            .all()
        )
        if not due:
            return 0
        system = self._system_accounts()
        ids = sorted({*due, system["expiry"]})
        locked = self.conn.execute(
            sa.select(PointsAccount.id, PointsAccount.member_id)
            .where(PointsAccount.id.in_(ids))
            .order_by(PointsAccount.id)
            .with_for_update()
        ).all()
        members = {a: m for a, m in locked if a != system["expiry"]}
        lots = self.conn.execute(
            sa.select(PointsLot.account_id, PointsLot.id, PointsLot.remaining)
            .where(
                PointsLot.org_id == self.tx.org_id,
                PointsLot.account_id.in_(list(members)),
                PointsLot.expires_at <= now,
                PointsLot.remaining > 0,
            )
            .order_by(PointsLot.account_id, PointsLot.id)
        ).all()
        per_account: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = defaultdict(list)
        for account_id, lot_id, remaining in lots:
            per_account[account_id].append((lot_id, int(remaining)))
        plan = _Plan()
        uses: list[tuple[uuid.UUID, list[dict[str, Any]]]] = []
        total = 0
        for account_id in sorted(per_account):
            amount = sum(r for _, r in per_account[account_id])
            txn = self._new_txn(
                "expire",
                member_id=members[account_id],
                points=amount,
                reason="points expired",
                created_at=now if now <= utcnow() else utcnow(),
            )
            i = plan.add_txn(txn)
            plan.legs.append(_Leg(i, account_id, -amount, "expire", guarded=True))
            plan.legs.append(_Leg(i, system["expiry"], amount, "expire"))
            uses.append(
                (txn["id"], [{"lot": lot, "take": r} for lot, r in per_account[account_id]])
            )
            total += amount
        self.conn.execute(sa.insert(PointsTxn), plan.txns)
        self._post(plan)
        for txn_id, lot_uses in uses:
            self._use_lots(lot_uses, txn_id)
        self.tx.audit(
            "points.expired",
            "points_expiry",
            plan.txns[0]["id"],
            f"{total} points expired from {len(per_account)} accounts",
            {"points": total, "accounts": len(per_account), "as_of": now.isoformat()},
        )
        return total
