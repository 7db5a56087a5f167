"""The posting engine under every ledger operation: claim the operation row, change the
balances in one lock order, append the chained entries, keep lots and period totals (how this
keeps the ledger exact is told in ``service``'s docstring)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

from ngo_kit import idempotency

# core's compiled-once inserts on the driver cursor (the chain writer), reused for the ledger's
# other hot rows: one way to do a fast insert.
from ngo_kit.audit import append_chained_many
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import Conflict, InsufficientPoints
from ngo_kit.modules.points.base import ACCOUNTS, CHAIN, LOTS, TXNS, PointsBase, _chunks
from ngo_kit.modules.points.models import (
    ENTRY_FIELDS,
    MEMBER,
    PointsAccount,
    PointsEntry,
    PointsLot,
    PointsLotUse,
    PointsRule,
    PointsTxn,
)
from ngo_kit.modules.points.schemas import SettingsRead, TransactionRead
from ngo_kit.statements import insert_rows

if TYPE_CHECKING:
    from ngo_kit.context import Context


@dataclass(slots=True)
class _Leg:
    txn: int
    account_id: uuid.UUID
    amount: int
    kind: str
    guarded: bool = False
    earned: int = 0
    balance_after: int = 0


@dataclass
class _Plan:
    """The operations and legs of one call, posted together."""

    txns: list[dict[str, Any]] = field(default_factory=list)
    legs: list[_Leg] = field(default_factory=list)

    def add_txn(self, values: dict[str, Any]) -> int:
        self.txns.append(values)
        return len(self.txns) - 1


def _actor_label(tx: Context) -> str:
    from ngo_kit.audit import actor_label

    return actor_label(tx.actor)


class Posting(PointsBase):
    """Posting internals used by the ledger, the rules and the rewards."""

    def _claim(self, values: dict[str, Any]) -> bool:
        """Insert an operation row; with a key, False when that key was used already (in its
        scope: the INSERT-or-nothing on ``(org_id, key_scope)`` is the whole check)."""
        if values.get("key_scope") is None:
            insert_rows(self.conn, TXNS, [values])
            return True
        result = self.conn.execute(self.st.claim_txn, values)
        if self.st.claim_returns:
            return result.first() is not None
        return bool(result.rowcount)

    def _new_txn(self, kind: str, **values: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": new_id(),
            "org_id": self.tx.org_id,
            "kind": kind,
            "key": None,
            "key_scope": None,
            "key_fingerprint": None,
            "member_id": None,
            "counterparty_id": None,
            "points": 0,
            "reason": "",
            "reference": "",
            "rule_id": None,
            "reverses_id": None,
            "created_at": utcnow(),
        }
        row.update(values)
        return row

    def _post(self, plan: _Plan, before_entries: Callable[[], None] | None = None) -> None:
        """Change balances (sorted account order, guarded debits), then append the entries.

        ``before_entries`` runs between the two, for rows that must be locked after the
        accounts and before the chain head (a reward's stock).
        """
        deltas: dict[uuid.UUID, list[int]] = {}
        guarded: set[uuid.UUID] = set()
        for leg in plan.legs:
            delta = deltas.setdefault(leg.account_id, [0, 0])
            delta[0] += leg.amount
            delta[1] += leg.earned
            if leg.guarded:
                guarded.add(leg.account_id)
        finals = self._apply_deltas(deltas, guarded)
        if before_entries is not None:
            before_entries()
        running = dict(finals)
        for leg in reversed(plan.legs):
            leg.balance_after = running[leg.account_id]
            running[leg.account_id] -= leg.amount
        actor = _actor_label(self.tx)
        rows = []
        for leg in plan.legs:
            txn = plan.txns[leg.txn]
            rows.append(
                {
                    "id": new_id(),
                    "txn_id": txn["id"],
                    "account_id": leg.account_id,
                    "kind": leg.kind,
                    "amount": leg.amount,
                    "balance_after": leg.balance_after,
                    "reason": txn["reason"],
                    "reference": txn["reference"],
                    "actor": actor,
                    "at": txn["created_at"],
                }
            )
        append_chained_many(self.tx, CHAIN, PointsEntry.__table__, rows, ENTRY_FIELDS)  # type: ignore[arg-type]

    def _apply_deltas(
        self, deltas: dict[uuid.UUID, list[int]], guarded: set[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """Add each delta to its account in ascending id order; guarded debits refuse overdrafts.

        Returns the balances after. Many plain credits go in ``executemany`` runs.
        """
        st = self.st
        finals: dict[uuid.UUID, int] = {}
        plain: list[dict[str, Any]] = []

        def flush() -> None:
            if plain:
                self.conn.execute(st.update, plain)
                plain.clear()

        many = len(deltas) > 4
        for account_id in sorted(deltas):
            delta, earn = deltas[account_id]
            params = {"acc": account_id, "delta": delta, "earn": earn}
            if many and account_id not in guarded:
                plain.append(params)
                continue
            flush()
            guard = account_id in guarded and delta < 0
            if guard:
                params["need"] = -delta
            if st.returning:
                stmt = st.guarded_returning if guard else st.update_returning
                row = self.conn.execute(stmt, params).first()
                if row is None:
                    self._insufficient(account_id, -delta)
                finals[account_id] = int(row[0])  # type: ignore[index]
            elif self.conn.execute(st.guarded if guard else st.update, params).rowcount != 1:
                self._insufficient(account_id, -delta)
        flush()
        missing = [a for a in deltas if a not in finals]
        for chunk in _chunks(missing):
            finals.update(
                self.conn.execute(
                    sa.select(ACCOUNTS.c.id, ACCOUNTS.c.balance).where(
                        self._in(ACCOUNTS.c.id, chunk)
                    )
                ).all()
            )
        return finals

    def _insufficient(self, account_id: uuid.UUID, requested: int) -> None:
        available = self.conn.scalar(
            sa.select(PointsAccount.balance).where(PointsAccount.id == account_id)
        )
        raise InsufficientPoints(requested=requested, available=int(available or 0))

    # --- lots -------------------------------------------------------------------------------

    def _open_lots(
        self,
        account_id: uuid.UUID,
        expires_at: dt.datetime | None,
        amount: int,
        txn_id: uuid.UUID,
        earned_at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "id": new_id(),
            "org_id": self.tx.org_id,
            "account_id": account_id,
            "txn_id": txn_id,
            "amount": amount,
            "remaining": amount,
            "earned_at": earned_at or utcnow(),
            "expires_at": expires_at,
        }

    def _consume(
        self,
        account_id: uuid.UUID,
        amount: int,
        txn_id: uuid.UUID,
        *,
        prefer_txn: uuid.UUID | None = None,
    ) -> list[tuple[dt.datetime | None, int]]:
        """Take ``amount`` from the account's lots, soonest expiry first (call with the account locked).

        Returns the ``(expires_at, amount)`` portions taken.
        """
        lot = PointsLot
        stmt = sa.select(lot.id, lot.remaining, lot.expires_at, lot.txn_id).where(
            lot.account_id == account_id, lot.remaining > 0
        )
        order: list[Any] = []
        if prefer_txn is not None:
            order.append(sa.case((lot.txn_id == prefer_txn, 0), else_=1))
        order += [sa.case((lot.expires_at.is_(None), 1), else_=0), lot.expires_at, lot.id]
        taken: list[tuple[dt.datetime | None, int]] = []
        uses: list[dict[str, Any]] = []
        left = amount
        for lot_id, remaining, expires_at, _ in self.conn.execute(stmt.order_by(*order)):
            if left <= 0:
                break
            take = min(left, int(remaining))
            uses.append({"lot": lot_id, "take": take})
            taken.append((expires_at, take))
            left -= take
        if left > 0:  # lots disagree with the balance: refuse rather than write a wrong ledger
            raise Conflict("The points lots of an account do not cover its balance; run verify.")
        self._use_lots(uses, txn_id)
        return taken

    def _use_lots(self, uses: list[dict[str, Any]], txn_id: uuid.UUID) -> None:
        if not uses:
            return
        c = LOTS.c
        self.conn.execute(
            sa.update(LOTS)
            .where(c.id == sa.bindparam("lot"))
            .values(remaining=c.remaining - sa.bindparam("take")),
            uses,
        )
        org_id = self.tx.org_id
        self.conn.execute(
            sa.insert(PointsLotUse),
            [
                {
                    "id": new_id(),
                    "org_id": org_id,
                    "lot_id": u["lot"],
                    "txn_id": txn_id,
                    "amount": u["take"],
                }
                for u in uses
            ],
        )

    def _restore_lots(self, original: uuid.UUID, account_id: uuid.UUID, txn_id: uuid.UUID) -> None:
        """Give back what ``original`` took from the account's lots (a refund or a reversal)."""
        rows = self.conn.execute(
            sa.select(PointsLotUse.lot_id, sa.func.sum(PointsLotUse.amount))
            .join(PointsLot, PointsLot.id == PointsLotUse.lot_id)
            .where(PointsLotUse.txn_id == original, PointsLot.account_id == account_id)
            .group_by(PointsLotUse.lot_id)
        ).all()
        self._use_lots([{"lot": lot, "take": -int(n)} for lot, n in rows if n], txn_id)

    def _expiry_date(self, settings: SettingsRead, at: dt.datetime) -> dt.datetime | None:
        if not settings.expiry_months:
            return None
        expires: dt.datetime = at + relativedelta(months=settings.expiry_months)
        return expires

    def _tally(self, amounts: list[tuple[uuid.UUID, int, dt.datetime]]) -> None:
        """Add earned points to each member's all-time, month and week totals (one upsert).

        No ordering is needed: a member's totals are only written by a transaction that holds
        the lock on that member's account already.
        """
        totals: dict[tuple[str, uuid.UUID], int] = defaultdict(int)
        periods: dict[dt.datetime, tuple[str, str, str]] = {}
        for member_id, points, at in amounts:
            found = periods.get(at)
            if found is None:
                found = periods[at] = self._periods(at)
            for period in found:
                totals[(period, member_id)] += points
        if not totals:
            return
        org_id = self.tx.org_id
        rows = [
            {"org_id": org_id, "period": p, "member_id": m, "points": n}
            for (p, m), n in totals.items()
        ]
        self.conn.execute(self.st.tally, rows)

    # --- reading operations -------------------------------------------------------------------

    def _txn_read(
        self, txn: dict[str, Any] | sa.Row[Any], balance_after: int | None
    ) -> TransactionRead:
        data = dict(txn._mapping) if isinstance(txn, sa.Row) else txn
        rule = None
        if data.get("rule_id") is not None:
            rule = self.conn.scalar(
                sa.select(PointsRule.name).where(PointsRule.id == data["rule_id"])
            )
        return TransactionRead(
            id=data["id"],
            kind=data["kind"],
            member_id=data["member_id"],
            counterparty_id=data["counterparty_id"],
            points=data["points"],
            balance_after=balance_after,
            reason=data["reason"],
            reference=data["reference"],
            key=data["key"],
            rule=rule,
            reverses_id=data["reverses_id"],
            created_at=data["created_at"],
        )

    def _existing(self, txn: dict[str, Any]) -> TransactionRead:
        """The first result of an operation whose key (in ``txn``'s scope) was used already.

        ``KeyReused`` when that first call had other parameters.
        """
        row = self.conn.execute(
            sa.select(PointsTxn.__table__).where(
                PointsTxn.org_id == self.tx.org_id, PointsTxn.key_scope == txn["key_scope"]
            )
        ).first()
        if row is None:  # pragma: no cover - the INSERT said the key exists
            key = txn["key"]
            raise Conflict("Operation key {key} is taken but its operation is missing.", key=key)
        idempotency.check_same(txn["key"], row.key_fingerprint, txn["key_fingerprint"])
        return self._txn_read(row, self._member_balance_after(row.id, row.member_id))

    def _existing_many(self, keyed: list[dict[str, Any]]) -> dict[str, TransactionRead]:
        """The first results of the operations whose scopes (in ``keyed``) were used, by scope;
        ``KeyReused`` for one used with other parameters."""
        wanted = {k["key_scope"]: k for k in keyed}
        if not wanted:
            return {}
        rows = self.conn.execute(
            sa.select(PointsTxn.__table__).where(
                PointsTxn.org_id == self.tx.org_id, self._in(PointsTxn.key_scope, list(wanted))
            )
        ).all()
        found: dict[str, TransactionRead] = {}
        for row in rows:
            mine = wanted[row.key_scope]
            idempotency.check_same(mine["key"], row.key_fingerprint, mine["key_fingerprint"])
            found[row.key_scope] = self._txn_read(
                row, self._member_balance_after(row.id, row.member_id)
            )
        return found

    def _member_balance_after(self, txn_id: uuid.UUID, member_id: uuid.UUID | None) -> int | None:
        if member_id is None:
            return None
        return self.conn.scalar(
            sa.select(PointsEntry.balance_after)
            .join(PointsAccount, PointsAccount.id == PointsEntry.account_id)
            .where(
                PointsEntry.txn_id == txn_id,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
            .order_by(PointsEntry.seq.desc())
            .limit(1)
        )

    def _earn(
        self,
        member_id: uuid.UUID,
        points: int,
        *,
        reason: str,
        reference: str = "",
        keyed: dict[str, Any],
        rule: PointsRule | None = None,
        check: Callable[[uuid.UUID], None] | None = None,
    ) -> TransactionRead:
        """Post an award. The key is claimed first, so a repeat returns the first result before
        anything is checked; ``check(txn_id)`` runs after the claim (a rule's cap)."""
        txn = self._new_txn(
            "award",
            member_id=member_id,
            points=points,
            reason=reason,
            reference=reference,
            rule_id=rule.id if rule else None,
            **keyed,
        )
        key = txn["key"]
        if not self._claim(txn):
            return self._existing(txn)
        if check is not None:
            check(txn["id"])
        system, members, settings = self._ledger_context([member_id], create=True)
        account = members[member_id]
        plan = _Plan()
        i = plan.add_txn(txn)
        plan.legs.append(_Leg(i, system["issuance"], -points, "award"))
        plan.legs.append(_Leg(i, account, points, "award", earned=points))
        self._post(plan)
        lot = self._open_lots(
            account,
            self._expiry_date(settings, txn["created_at"]),
            points,
            txn["id"],
            txn["created_at"],
        )
        insert_rows(self.conn, LOTS, [lot])
        self._tally([(member_id, points, txn["created_at"])])
        balance = plan.legs[1].balance_after
        self.tx.audit(
            "points.awarded",
            "points_account",
            member_id,
            f"{points} points awarded",
            {"txn": txn["id"], "points": points, "reason": reason, "key": key},
        )
        read = TransactionRead(
            id=txn["id"],
            kind="award",
            member_id=member_id,
            points=points,
            balance_after=balance,
            reason=reason,
            reference=reference,
            key=key,
            rule=rule.name if rule else None,
            created_at=txn["created_at"],
        )
        if settings.recognition:
            self._service._recognise({member_id: points})
        self._emit("ngo_kit_points_awarded", award=read)
        return read

    def _spend(
        self,
        kind: str,
        member_id: uuid.UUID,
        points: int,
        system_kind: str,
        *,
        reason: str,
        reference: str,
        keyed: dict[str, Any] | None = None,
        txn_id: uuid.UUID | None = None,
        before_entries: Callable[[], None] | None = None,
    ) -> TransactionRead:
        txn = self._new_txn(
            kind,
            member_id=member_id,
            points=points,
            reason=reason,
            reference=reference,
            **(keyed or {}),
        )
        key = txn["key"]
        if txn_id is not None:
            txn["id"] = txn_id
        if txn["key_scope"] is not None and not self._claim(txn):
            return self._existing(txn)  # a repeat: before the balance is looked at
        self._precheck(member_id, points)
        if txn["key_scope"] is None:
            self._claim(txn)
        system, members, _ = self._ledger_context([member_id], create=False)
        account = members[member_id]
        plan = _Plan()
        i = plan.add_txn(txn)
        plan.legs.append(_Leg(i, account, -points, kind, guarded=True))
        plan.legs.append(_Leg(i, system[system_kind], points, kind))
        self._post(plan, before_entries)
        self._consume(account, points, txn["id"])
        self.tx.audit(
            f"points.{kind}",
            "points_account",
            member_id,
            f"{points} points {kind}",
            {"txn": txn["id"], "points": points, "reason": reason, "key": key},
        )
        read = self._txn_read(txn, plan.legs[0].balance_after)
        self._emit("ngo_kit_points_spent", spending=read)
        return read

    def _precheck(self, member_id: uuid.UUID, points: int) -> None:
        """Refuse early, before writing anything, when the balance is plainly too low."""
        available = self._balance(member_id)
        if available < points:
            raise InsufficientPoints(requested=points, available=available)
