"""``tx.points``: the points ledger, earning rules, rewards, expiry, levels, badges, leaderboards.

How the ledger stays exact:

* every operation inserts one ``points_txn`` row first; with a ``key`` that insert is an
  INSERT-or-nothing on ``(org_id, key)``, so a retry (or a racing twin) writes nothing more and
  returns the first result;
* account balances change by UPDATEs in ascending account-id order (one lock order for every
  operation, so PostgreSQL never deadlocks), member debits guarded by ``balance >= :n``;
* then the entries are appended to the organisation's ``points`` hash chain, then the audit
  row. Entries of one operation sum to zero.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import operator
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from sqlalchemy.orm import Session

from ngo_kit import idempotency

# core's compiled-once inserts on the driver cursor (the chain writer), reused for the ledger's
# other hot rows: one way to do a fast insert.
from ngo_kit.audit import append_chained_many
from ngo_kit.db import insert_ignore, new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    Conflict,
    InsufficientPoints,
    InsufficientStock,
    NotFound,
    ValidationFailed,
)
from ngo_kit.exports import write_csv
from ngo_kit.modules.points.models import (
    ENTRY_FIELDS,
    MEMBER,
    NO_MEMBER,
    SYSTEM_KINDS,
    PointsAccount,
    PointsBadge,
    PointsBadgeAward,
    PointsEntry,
    PointsLevel,
    PointsLot,
    PointsLotUse,
    PointsRedemption,
    PointsReward,
    PointsRule,
    PointsSettings,
    PointsTally,
    PointsTxn,
)
from ngo_kit.modules.points.schemas import (
    MAX_POINTS,
    AwardIn,
    BadgeAwardRead,
    BadgeIn,
    BadgeRead,
    BatchAwardIn,
    DeductIn,
    EntryRead,
    LeaderboardRow,
    LevelIn,
    LevelRead,
    LotRead,
    Period,
    RedeemIn,
    RedemptionRead,
    RewardIn,
    RewardRead,
    RewardUpdate,
    RuleIn,
    RuleRead,
    SettingsIn,
    SettingsRead,
    StandingRead,
    TransactionRead,
    TransferIn,
)
from ngo_kit.plugins import Registrar, collect
from ngo_kit.schemas import Instant, Prose, Text, check, coerce
from ngo_kit.statements import insert_rows
from ngo_kit.tenancy import Membership

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.kit import Kit

CHAIN = "points"
_CHUNK = 2000
ACCOUNTS: sa.Table = PointsAccount.__table__  # type: ignore[assignment]
LOTS: sa.Table = PointsLot.__table__  # type: ignore[assignment]
TALLIES: sa.Table = PointsTally.__table__  # type: ignore[assignment]
TXNS: sa.Table = PointsTxn.__table__  # type: ignore[assignment]
SETTINGS: sa.Table = PointsSettings.__table__  # type: ignore[assignment]
MEMBERSHIPS: sa.Table = Membership.__table__  # type: ignore[assignment]
#: The kind of the rows of ``accounts_and_memberships`` that say "is a member" (never an account's).
MEMBERSHIP = "@membership"


class _Statements:
    """The hot-path statements, built once per dialect (building them cost more than running)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        a, s, t = ACCOUNTS.c, SETTINGS.c, TALLIES.c
        self.accounts = (
            sa.select(
                a.kind, a.member_id, a.id, s.expiry_months, s.transfers_allowed, s.recognition
            )
            .select_from(ACCOUNTS.outerjoin(SETTINGS, SETTINGS.c.org_id == a.org_id))
            .where(
                a.org_id == sa.bindparam("org"),
                a.member_id.in_(sa.bindparam("members", expanding=True)),
            )
        )
        m = MEMBERSHIPS.c
        #: the same, plus a ``MEMBERSHIP`` row for each of the members who is a member of the
        #: organisation: the check that a recipient exists costs no round trip of its own
        self.accounts_and_memberships = self.accounts.union_all(
            sa.select(
                sa.literal(MEMBERSHIP, sa.String(16)),
                m.actor_id,
                m.id,
                sa.null(),
                sa.null(),
                sa.null(),
            ).where(
                m.org_id == sa.bindparam("org"),
                m.actor_id.in_(sa.bindparam("members", expanding=True)),
            )
        )
        change = ACCOUNTS.update().values(
            balance=a.balance + sa.bindparam("delta", type_=sa.BigInteger()),
            earned=a.earned + sa.bindparam("earn", type_=sa.BigInteger()),
        )
        self.update = change.where(a.id == sa.bindparam("acc"))
        self.guarded = change.where(
            a.id == sa.bindparam("acc"), a.balance >= sa.bindparam("need", type_=sa.BigInteger())
        )
        self.returning = dialect.update_returning
        if self.returning:
            self.update_returning = self.update.returning(a.balance)
            self.guarded_returning = self.guarded.returning(a.balance)
        #: PostgreSQL and SQLite say "inserted or not" by RETURNING (psycopg has no rowcount for
        #: ON CONFLICT DO NOTHING); MySQL/MariaDB's INSERT IGNORE by its rowcount.
        self.claim_returns = dialect.name in ("postgresql", "sqlite")
        self.tally: Any
        if dialect.name in ("postgresql", "sqlite"):
            from sqlalchemy.dialects import postgresql, sqlite

            upsert: Any = (postgresql if dialect.name == "postgresql" else sqlite).insert(TALLIES)
            self.tally = upsert.on_conflict_do_update(
                index_elements=["org_id", "period", "member_id"],
                set_={"points": t.points + upsert.excluded.points},
            )
            claim: Any = (postgresql if dialect.name == "postgresql" else sqlite).insert(TXNS)
            self.ignore_txn = claim.on_conflict_do_nothing()
            self.claim_txn = self.ignore_txn.returning(TXNS.c.id)
        else:
            from sqlalchemy.dialects import mysql

            my_upsert: Any = mysql.insert(TALLIES)
            self.tally = my_upsert.on_duplicate_key_update(
                points=t.points + my_upsert.inserted.points
            )
            self.claim_txn = self.ignore_txn = TXNS.insert().prefix_with("IGNORE")


_STATEMENTS: dict[tuple[str, str], _Statements] = {}


def _statements(dialect: sa.Dialect) -> _Statements:
    key = (dialect.name, dialect.driver)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = _Statements(dialect)
    return found


# --- errors -------------------------------------------------------------------------------


class RewardUnavailable(Conflict):
    """The reward is inactive or outside its window."""

    code = "reward_unavailable"
    template = "Reward {reward} is not available now."


class LimitReached(Conflict):
    """A per-member limit (reward limit or rule cap) would be exceeded."""

    code = "points_limit_reached"
    template = "The limit of {limit} for {what} is reached."


class TransfersDisabled(Conflict):
    """The organisation does not allow members to transfer points."""

    code = "transfers_disabled"
    template = "This organisation does not allow points transfers."


class NotReversible(Conflict):
    """The operation cannot be reversed (already reversed, or of a kind that is not)."""

    code = "not_reversible"
    template = "Operation {txn} cannot be reversed: {why}."


class WrongStatus(Conflict):
    """A redemption is not in the state the step needs."""

    code = "redemption_wrong_status"
    template = "Redemption {redemption} is {status}; this needs {needed}."


# --- rule types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleType:
    """A kind of earning rule a plugin offers: the event it listens to and the fields it has.

    ``fields`` are the event fields a rule may use as ``per_unit`` or in a ``formula``.
    """

    name: str
    event: str
    description: str = ""
    fields: tuple[str, ...] = ()


BUILTIN_RULE_TYPES = (
    RuleType("welcome_bonus", "user_registered", "points when an account is registered"),
    RuleType("daily_check_in", "check_in", "points for the first check-in of a day"),
    RuleType("manual", "manual", "manual awards with a reason, within the rule's caps"),
)

_rule_types: weakref.WeakKeyDictionary[Kit, dict[str, RuleType]] = weakref.WeakKeyDictionary()


def rule_types(kit: Kit) -> dict[str, RuleType]:
    """The rule types registered through ``ngo_kit_register_points_rules`` (collected once per kit)."""
    found = _rule_types.get(kit)
    if found is None:
        registrar: Registrar[RuleType] = Registrar("points rule type", RuleType, lambda r: r.name)
        collect(kit.pm, "ngo_kit_register_points_rules", registrar)
        found = _rule_types[kit] = {r.name: r for r in registrar.values()}
    return found


# --- formulas -----------------------------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Decimal, Decimal], Decimal]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Decimal]] = {"min": min, "max": max}


def parse_formula(text: str, names: Iterable[str]) -> ast.Expression:
    """Parse an arithmetic formula over ``names`` (+ - * / // %, min, max, numbers).

    Raises ``ValidationFailed`` (rule ``bad_formula``) for anything else.
    """
    allowed = set(names)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValidationFailed("formula", "bad_formula", detail=exc.msg) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in allowed and node.id not in _FUNCTIONS:
            raise ValidationFailed("formula", "bad_formula", detail=f"unknown name {node.id}")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords
        ):
            raise ValidationFailed("formula", "bad_formula", detail="only min() and max() calls")
        ok = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.USub,
            ast.UAdd,
            ast.Constant,
            ast.Name,
            ast.Load,
            ast.Call,
            *_BINARY,
        )
        if not isinstance(node, ok):
            raise ValidationFailed("formula", "bad_formula", detail=type(node).__name__)
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            raise ValidationFailed("formula", "bad_formula", detail="only numbers")
    return tree


def evaluate_formula(tree: ast.Expression, values: dict[str, Decimal]) -> Decimal:
    """Evaluate a parsed formula with exact decimals."""

    def ev(node: ast.AST) -> Decimal:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return Decimal(str(node.value))
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(type(node).__name__)

    return ev(tree)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        return Decimal(int(bool(value)))
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def _whole(value: Decimal) -> int:
    return max(0, min(MAX_POINTS, int(value.to_integral_value(rounding=ROUND_FLOOR))))


# --- the posting engine -------------------------------------------------------------------


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


class PointsService:
    """``tx.points``: award, deduct, transfer, reverse, redeem, expire, rules, recognition."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx
        self.conn = tx.connection  # Core statements: the ledger's hot paths
        self.st = _statements(self.conn.dialect)

    @property
    def session(self) -> Session:
        """The ORM session, for the rarely written rich objects (rules, rewards, badges)."""
        return self.tx.session

    # --- accounts ---------------------------------------------------------------------------

    def _system_accounts(self) -> dict[str, uuid.UUID]:
        """The organisation's system accounts by kind, created when missing."""
        org_id = self.tx.org_id
        stmt = sa.select(PointsAccount.kind, PointsAccount.id).where(
            PointsAccount.org_id == org_id, PointsAccount.member_id == NO_MEMBER
        )
        found = dict(self.conn.execute(stmt).all())
        if len(found) < len(SYSTEM_KINDS):
            now = utcnow()
            for kind in SYSTEM_KINDS:
                if kind not in found:
                    self.conn.execute(
                        insert_ignore(
                            self.conn,
                            PointsAccount,
                            id=new_id(),
                            org_id=org_id,
                            kind=kind,
                            member_id=NO_MEMBER,
                            balance=0,
                            earned=0,
                            created_at=now,
                        )
                    )
            found = dict(self.conn.execute(stmt).all())
            self._ensure_settings()
        return found

    def _member_accounts(
        self, member_ids: Sequence[uuid.UUID], *, create: bool
    ) -> dict[uuid.UUID, uuid.UUID]:
        """Account ids by member id; with ``create`` missing accounts are opened."""
        org_id = self.tx.org_id
        found: dict[uuid.UUID, uuid.UUID] = {}
        for chunk in _chunks(list(member_ids)):
            found.update(
                self.conn.execute(
                    sa.select(PointsAccount.member_id, PointsAccount.id).where(
                        PointsAccount.org_id == org_id,
                        PointsAccount.kind == MEMBER,
                        self._in(PointsAccount.member_id, chunk),
                    )
                ).all()
            )
        missing = [m for m in dict.fromkeys(member_ids) if m not in found]
        if missing and create:
            now = utcnow()
            if len(missing) == 1:
                self.conn.execute(
                    insert_ignore(
                        self.conn,
                        PointsAccount,
                        id=new_id(),
                        org_id=org_id,
                        kind=MEMBER,
                        member_id=missing[0],
                        balance=0,
                        earned=0,
                        created_at=now,
                    )
                )
            else:
                rows = [
                    {
                        "id": new_id(),
                        "org_id": org_id,
                        "kind": MEMBER,
                        "member_id": m,
                        "balance": 0,
                        "earned": 0,
                        "created_at": now,
                    }
                    for m in missing
                ]
                try:
                    with self.tx.savepoint():
                        self.conn.execute(sa.insert(PointsAccount), rows)
                except sa.exc.IntegrityError:  # another transaction opened some of them
                    for row in rows:
                        self.conn.execute(insert_ignore(self.conn, PointsAccount, **row))
            return self._member_accounts(member_ids, create=False)
        return found

    def _settings(self) -> SettingsRead:
        row = self.conn.execute(
            sa.select(
                PointsSettings.expiry_months,
                PointsSettings.transfers_allowed,
                PointsSettings.recognition,
            ).where(PointsSettings.org_id == self.tx.org_id)
        ).first()
        return _settings_read(row)

    def _members_checked(self) -> bool:
        """True when recipients must be members of the organisation (registration is enabled:
        without it, member ids are the application's own and the kit cannot check them)."""
        return "registration" in self.tx.kit.modules

    def _require_members(self, member_ids: Sequence[uuid.UUID], field_name: str) -> None:
        """``NotFound`` ("Member", naming ``field_name``) for the first id that is not a member
        of the organisation, when registration is enabled."""
        if not self._members_checked():
            return
        found: set[uuid.UUID] = set()
        for chunk in _chunks(list(dict.fromkeys(member_ids))):
            found.update(
                self.conn.scalars(
                    sa.select(Membership.actor_id).where(
                        Membership.org_id == self.tx.org_id, self._in(Membership.actor_id, chunk)
                    )
                )
            )
        self._refuse_strangers(member_ids, found, field_name)

    @staticmethod
    def _refuse_strangers(
        member_ids: Iterable[uuid.UUID], joined: set[uuid.UUID], field_name: str
    ) -> None:
        for member_id in member_ids:
            if member_id not in joined:
                raise NotFound("Member", member_id, field=field_name)

    def _ledger_context(
        self, member_ids: Sequence[uuid.UUID], *, create: bool, field_name: str = "member_id"
    ) -> tuple[dict[str, uuid.UUID], dict[uuid.UUID, uuid.UUID], SettingsRead]:
        """System accounts, the members' accounts and the settings, in one query.

        Opens what is missing (system accounts of an organisation made before the module was
        enabled; with ``create``, the members' accounts). With ``create`` and registration
        enabled the same query says who is a member: ``NotFound`` ("Member", naming
        ``field_name``) for anyone else, so no account is opened for nobody.
        """
        params = {"org": self.tx.org_id, "members": [NO_MEMBER, *member_ids]}
        check = create and self._members_checked()
        stmt = self.st.accounts_and_memberships if check else self.st.accounts
        for _ in range(2):
            rows = self.conn.execute(stmt, params).all()
            if check:
                joined = {member for kind, member, *_ in rows if kind == MEMBERSHIP}
                self._refuse_strangers(member_ids, joined, field_name)
                rows = [r for r in rows if r[0] != MEMBERSHIP]
                check = False
                stmt = self.st.accounts
            system = {kind: acc for kind, member, acc, *_ in rows if member == NO_MEMBER}
            members = {member: acc for kind, member, acc, *_ in rows if kind == MEMBER}
            complete = len(system) == len(SYSTEM_KINDS) and (
                not create or all(m in members for m in member_ids)
            )
            if complete:
                break
            system = self._system_accounts()
            if create:
                members = self._member_accounts(member_ids, create=True)
        settings = _settings_read(rows[0][3:] if rows and rows[0][4] is not None else None)
        return system, members, settings

    def _ensure_settings(self) -> None:
        self.conn.execute(
            insert_ignore(
                self.conn,
                PointsSettings,
                org_id=self.tx.org_id,
                transfers_allowed=False,
                recognition=False,
            )
        )

    # --- posting ----------------------------------------------------------------------------

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

    def _insert_new(self, model: Any, values: dict[str, Any]) -> bool:
        """INSERT unless a unique key clashes; True when the row was inserted.

        (RETURNING where the database has it: psycopg reports no rowcount for ON CONFLICT.)
        """
        stmt = insert_ignore(self.conn, model, **values)
        if self.st.claim_returns:
            returning = stmt.returning(model.__table__.c.id)
            return self.conn.execute(returning).first() is not None
        return bool(self.conn.execute(stmt).rowcount)

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

    def _keyed(
        self, operation: str, key: str | None, *, shared: bool = False, **params: Any
    ) -> dict[str, Any]:
        """The ``key``, ``key_scope`` and ``key_fingerprint`` of an operation row (for ``_new_txn``)."""
        return idempotency.keyed(self.tx, operation, key, shared=shared, **params)

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

    # --- leaderboard tallies ------------------------------------------------------------------

    def _periods(self, at: dt.datetime) -> tuple[str, str, str]:
        local = at.astimezone(self._zone())
        year, week, _ = local.isocalendar()
        return ("all", f"{local.year:04d}-{local.month:02d}", f"{year:04d}-W{week:02d}")

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.tx.require_org().timezone)

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

    def _emit(self, hook: str, **kwargs: Any) -> None:
        if getattr(self.tx.kit.pm.hook, hook).get_hookimpls():
            self.tx.emit(hook, **kwargs)

    def _has_hook(self, hook: str) -> bool:
        return bool(getattr(self.tx.kit.pm.hook, hook).get_hookimpls())

    # --- operations ---------------------------------------------------------------------------

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
        rule = self._rule_by_name(spec.rule) if spec.rule is not None else None

        def check_rule(txn_id: uuid.UUID) -> None:
            if rule is None:
                return
            if rule.rule_type != "manual" or not self._rule_live(rule, utcnow()):
                raise ValidationFailed("rule", "invalid", "is not an active manual rule")
            allowed = self._cap_left(rule, spec.member_id, besides=txn_id)
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
            self._recognise({member_id: points})
        self._emit("ngo_kit_points_awarded", award=read)
        return read

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
            self._recognise(awards)
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

    def _in(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter instead of
        thousands (20x faster for a 2,000-member chunk)."""
        if self.conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            array = ARRAY(column.type)
            return column == sa.any_(sa.cast(sa.bindparam(None, values, type_=array), array))
        return column.in_(values)

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

    # --- earning rules ------------------------------------------------------------------------

    def rule_types(self) -> list[RuleType]:
        """The rule types the enabled plugins registered."""
        return list(rule_types(self.tx.kit).values())

    def add_rule(self, data: RuleIn | dict[str, Any] | None = None, /, **kwargs: Any) -> RuleRead:
        """Configure an earning rule for this organisation (``points.configure``).

        Raises ``ValidationFailed`` for an unknown rule type, a ``per_unit`` field the type
        does not have or a bad formula; ``AlreadyExists`` for a taken name.
        """
        spec = coerce(RuleIn, data, kwargs)
        self.tx.require("points.configure")
        rtype = rule_types(self.tx.kit).get(spec.rule_type)
        if rtype is None:
            raise ValidationFailed("rule_type", "unknown_rule_type", rule_type=spec.rule_type)
        if spec.per_unit is not None and spec.per_unit not in rtype.fields:
            raise ValidationFailed(
                "per_unit", "literal_error", expected=", ".join(rtype.fields) or "(none)"
            )
        if spec.formula is not None:
            parse_formula(spec.formula, rtype.fields)
        rule_id = new_id()
        values = spec.model_dump()
        values.update(id=rule_id, org_id=self.tx.org_id, event=rtype.event, created_at=utcnow())
        with self.tx.translate_integrity(AlreadyExists("Points rule", spec.name)):
            self.conn.execute(sa.insert(PointsRule).values(values))
        self.tx.audit(
            "points.rule_added",
            "points_rule",
            rule_id,
            f"rule {spec.name} added",
            spec.model_dump(mode="json"),
        )
        return RuleRead.model_validate({**values})

    def set_rule_active(self, name: str, active: bool) -> RuleRead:
        """Switch a rule on or off (``points.configure``)."""
        self.tx.require("points.configure")
        rule = self._rule_by_name(name)
        self.conn.execute(
            sa.update(PointsRule).where(PointsRule.id == rule.id).values(active=active)
        )
        self.tx.audit("points.rule_changed", "points_rule", rule.id, f"rule {name} active={active}")
        self.session.expire(rule)
        return RuleRead.model_validate(self._rule_by_name(name))

    def rules(self) -> list[RuleRead]:
        """This organisation's earning rules."""
        rows = self.session.scalars(
            sa.select(PointsRule)
            .where(PointsRule.org_id == self.tx.org_id)
            .order_by(PointsRule.name)
        )
        return [RuleRead.model_validate(r) for r in rows]

    def _rule_by_name(self, name: str) -> PointsRule:
        rule = self.session.scalar(
            sa.select(PointsRule).where(
                PointsRule.org_id == self.tx.org_id, PointsRule.name == name
            )
        )
        if rule is None:
            raise NotFound("Points rule", name)
        return rule

    @staticmethod
    def _rule_live(rule: PointsRule, now: dt.datetime) -> bool:
        return bool(
            rule.active
            and (rule.starts_at is None or rule.starts_at <= now)
            and (rule.ends_at is None or now < rule.ends_at)
        )

    def apply_rules(
        self,
        event: str,
        member_id: uuid.UUID,
        fields: dict[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> list[TransactionRead]:
        """Fire the organisation's active rules for ``event`` for ``member_id``, in this transaction.

        Called by the plugin that owns the event (from its event hook). Each rule's amount is
        its fixed ``points``, ``points`` x the ``per_unit`` field, or its formula over
        ``fields``; caps per day/week/month cut the amount. With ``key``, each rule's award is
        keyed ``<key>:<rule>``, so firing one event twice awards once. Needs ``points.award``:
        a plugin whose own service checked the event calls it inside ``tx.elevated()``.
        Returns the awards made.
        """
        if self.tx.org is None:
            return []
        self.tx.require_for("points.award", member_id)
        return self._fire(event, member_id, fields or {}, key)

    def _fire(
        self, event: str, member_id: uuid.UUID, fields: dict[str, Any], key: str | None
    ) -> list[TransactionRead]:
        now = utcnow()
        rules = self.session.scalars(
            sa.select(PointsRule)
            .where(
                PointsRule.org_id == self.tx.org_id,
                PointsRule.event == event,
                PointsRule.active.is_(True),
            )
            .order_by(PointsRule.name)
        ).all()
        live = [rule for rule in rules if self._rule_live(rule, now)]
        # An event's key is shared (the event is the same whoever reports it), and checked
        # before the caps: a repeated event returns its first awards.
        keyed = {
            rule.name: self._keyed(
                "points.rule_award",
                f"{key}:{rule.name}" if key else None,
                shared=True,
                member_id=member_id,
                rule=rule.name,
            )
            for rule in live
        }
        first = self._existing_many([k for k in keyed.values() if k["key_scope"]]) if key else {}
        made: list[TransactionRead] = []
        for rule in live:
            earlier = first.get(keyed[rule.name]["key_scope"])
            if earlier is not None:
                made.append(earlier)
                continue
            points = self._rule_amount(rule, fields or {})
            left = self._cap_left(rule, member_id)
            if left is not None:
                points = min(points, left)
            if points <= 0:
                continue
            made.append(
                self._earn(
                    member_id,
                    points,
                    reason=rule.reason or rule.name,
                    reference=event,
                    keyed=keyed[rule.name],
                    rule=rule,
                )
            )
        if made:
            self._count_badges(member_id, event)
        return made

    def _rule_amount(self, rule: PointsRule, fields: dict[str, Any]) -> int:
        try:
            if rule.formula:
                rtype = rule_types(self.tx.kit).get(rule.rule_type)
                names = rtype.fields if rtype else tuple(fields)
                tree = parse_formula(rule.formula, names)
                values = {n: _decimal(fields.get(n, 0)) for n in names}
                return _whole(evaluate_formula(tree, values))
            if rule.per_unit:
                return _whole(Decimal(rule.points) * _decimal(fields.get(rule.per_unit, 0)))
        except (InvalidOperation, ArithmeticError, TypeError, ValueError):
            return 0
        return int(rule.points)

    def _cap_left(
        self, rule: PointsRule, member_id: uuid.UUID, *, besides: uuid.UUID | None = None
    ) -> int | None:
        """Points the rule may still award the member now (None: no cap), ``besides`` (an
        operation of this call, claimed already) left out."""
        caps = [
            (rule.cap_day, "day"),
            (rule.cap_week, "week"),
            (rule.cap_month, "month"),
        ]
        left: int | None = None
        for cap, period in caps:
            if cap is None:
                continue
            since = self._period_start(period)
            used = self.conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(PointsTxn.points), 0)).where(
                    PointsTxn.org_id == self.tx.org_id,
                    PointsTxn.rule_id == rule.id,
                    PointsTxn.member_id == member_id,
                    PointsTxn.created_at >= since,
                    *([PointsTxn.id != besides] if besides is not None else []),
                )
            )
            room = max(0, int(cap) - int(used or 0))
            left = room if left is None else min(left, room)
        return left

    def _period_start(self, period: str, now: dt.datetime | None = None) -> dt.datetime:
        local = (now or utcnow()).astimezone(self._zone())
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if period == "week":
            day -= dt.timedelta(days=day.weekday())
        elif period == "month":
            day = day.replace(day=1)
        return day.astimezone(dt.UTC)

    def check_in(self, member_id: uuid.UUID) -> list[TransactionRead]:
        """A member's daily check-in: fires ``check_in`` rules once per local day.

        The actor must be the member or hold ``points.award``. Returns the day's awards; a
        second check-in the same day returns them again and writes nothing.
        """
        if self.tx.actor_id != member_id:
            self.tx.require("points.award")
        today = utcnow().astimezone(self._zone()).date().isoformat()
        return self._fire("check_in", member_id, {}, f"check_in:{member_id}:{today}")

    # --- balances, statements, expiry view ----------------------------------------------------

    def _balance(self, member_id: uuid.UUID) -> int:
        value = self.conn.scalar(
            sa.select(PointsAccount.balance).where(
                PointsAccount.org_id == self.tx.org_id,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
        )
        return int(value or 0)

    def balance(self, member_id: uuid.UUID) -> int:
        """A member's balance (0 before the first award): one indexed row read."""
        self._see(member_id)
        return self._balance(member_id)

    def _see(self, member_id: uuid.UUID) -> None:
        if self.tx.actor_id != member_id:
            self.tx.require("points.view")

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

    # --- settings -----------------------------------------------------------------------------

    def settings(self) -> SettingsRead:
        """The organisation's points settings."""
        return self._settings()

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

    # --- expiry ---------------------------------------------------------------------------------

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

    # --- rewards --------------------------------------------------------------------------------

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

    def reward(self, reward_id: uuid.UUID) -> RewardRead:
        """One reward; ``NotFound`` for another organisation's."""
        return RewardRead.model_validate(self.tx.get_owned(PointsReward, reward_id, "Reward"))

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

    def redemption(self, redemption_id: uuid.UUID) -> RedemptionRead:
        """One redemption (the member's own, or any with ``rewards.fulfil``)."""
        row = self.tx.get_owned(PointsRedemption, redemption_id, "Redemption")
        if self.tx.actor_id != row.member_id:
            self.tx.require("rewards.fulfil")
        return RedemptionRead.model_validate(row)

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

    # --- levels and badges ----------------------------------------------------------------------

    def add_level(
        self, data: LevelIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> LevelRead:
        """Add a level at a lifetime-earned threshold (``points.configure``)."""
        spec = coerce(LevelIn, data, kwargs)
        self.tx.require("points.configure")
        values = {"id": new_id(), "org_id": self.tx.org_id, **spec.model_dump()}
        with self.tx.translate_integrity(AlreadyExists("Level", spec.name)):
            self.conn.execute(sa.insert(PointsLevel).values(values))
        self._need_recognition()
        self.tx.audit(
            "points.level_added",
            "points_level",
            values["id"],
            f"level {spec.name} at {spec.threshold}",
        )
        return LevelRead.model_validate(values)

    def levels(self) -> list[LevelRead]:
        """The organisation's levels, lowest first."""
        rows = self.session.scalars(
            sa.select(PointsLevel)
            .where(PointsLevel.org_id == self.tx.org_id)
            .order_by(PointsLevel.threshold)
        )
        return [LevelRead.model_validate(r) for r in rows]

    def add_badge(
        self, data: BadgeIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> BadgeRead:
        """Define a badge (``points.configure``)."""
        spec = coerce(BadgeIn, data, kwargs)
        self.tx.require("points.configure")
        values = {
            "id": new_id(),
            "org_id": self.tx.org_id,
            "created_at": utcnow(),
            **spec.model_dump(),
        }
        with self.tx.translate_integrity(AlreadyExists("Badge", spec.code)):
            self.conn.execute(sa.insert(PointsBadge).values(values))
        if spec.criteria == "threshold":
            self._need_recognition()
        self.tx.audit(
            "points.badge_added", "points_badge", values["id"], f"badge {spec.code} added"
        )
        return BadgeRead.model_validate(values)

    def badges(self) -> list[BadgeRead]:
        """The organisation's badges."""
        rows = self.session.scalars(
            sa.select(PointsBadge)
            .where(PointsBadge.org_id == self.tx.org_id)
            .order_by(PointsBadge.code)
        )
        return [BadgeRead.model_validate(r) for r in rows]

    def grant_badge(self, code: str, member_id: uuid.UUID, *, evidence: str = "") -> BadgeAwardRead:
        """Award a badge by hand (``points.award``); granting a held badge returns the first award.

        Nobody grants themselves a badge unless the organisation allows self-action for
        ``points.award`` (``SelfActionRefused``).
        """
        self.tx.require_for("points.award", member_id)
        evidence = check("evidence", Prose, evidence)
        badge = self.session.scalar(
            sa.select(PointsBadge).where(
                PointsBadge.org_id == self.tx.org_id, PointsBadge.code == code
            )
        )
        if badge is None:
            raise NotFound("Badge", code)
        self._require_members([member_id], "member_id")
        # Lock the member's account first, as awards do, so the two never wait on each other.
        self.conn.execute(
            sa.select(PointsAccount.id)
            .where(
                PointsAccount.org_id == self.tx.org_id,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
            .with_for_update()
        ).first()
        awarded = self._give_badge(
            badge.id, badge.code, member_id, {"evidence": evidence, "by": "manual"}
        )
        return awarded or self._badge_award(badge.id, member_id)

    def member_badges(self, member_id: uuid.UUID) -> list[BadgeAwardRead]:
        """The badges a member holds, oldest first."""
        self._see(member_id)
        rows = self.conn.execute(
            sa.select(
                PointsBadgeAward.id,
                PointsBadgeAward.badge_id,
                PointsBadge.code,
                PointsBadgeAward.awarded_at,
            )
            .join(PointsBadge, PointsBadge.id == PointsBadgeAward.badge_id)
            .where(
                PointsBadgeAward.org_id == self.tx.org_id, PointsBadgeAward.member_id == member_id
            )
            .order_by(PointsBadgeAward.awarded_at, PointsBadgeAward.id)
        )
        return [
            BadgeAwardRead(id=i, badge_id=b, badge_code=c, member_id=member_id, awarded_at=a)
            for i, b, c, a in rows
        ]

    def _badge_award(self, badge_id: uuid.UUID, member_id: uuid.UUID) -> BadgeAwardRead:
        row = self.conn.execute(
            sa.select(PointsBadgeAward.id, PointsBadgeAward.awarded_at, PointsBadge.code)
            .join(PointsBadge, PointsBadge.id == PointsBadgeAward.badge_id)
            .where(
                PointsBadgeAward.org_id == self.tx.org_id,
                PointsBadgeAward.badge_id == badge_id,
                PointsBadgeAward.member_id == member_id,
            )
        ).one()
        return BadgeAwardRead(
            id=row[0], badge_id=badge_id, badge_code=row[2], member_id=member_id, awarded_at=row[1]
        )

    def _give_badge(
        self, badge_id: uuid.UUID, code: str, member_id: uuid.UUID, evidence: dict[str, Any]
    ) -> BadgeAwardRead | None:
        award_id, now = new_id(), utcnow()
        inserted = self._insert_new(
            PointsBadgeAward,
            {
                "id": award_id,
                "org_id": self.tx.org_id,
                "badge_id": badge_id,
                "member_id": member_id,
                "awarded_at": now,
                "evidence": evidence,
            },
        )
        if not inserted:
            return None
        read = BadgeAwardRead(
            id=award_id, badge_id=badge_id, badge_code=code, member_id=member_id, awarded_at=now
        )
        self.tx.audit(
            "points.badge_awarded",
            "points_badge",
            badge_id,
            f"badge {code} awarded",
            {"member": member_id, **evidence},
        )
        self.tx.emit("ngo_kit_badge_awarded", badge=read)
        return read

    def _need_recognition(self) -> None:
        """Mark that awards must now check levels and threshold badges."""
        self._ensure_settings()
        self.conn.execute(
            sa.update(PointsSettings)
            .where(PointsSettings.org_id == self.tx.org_id)
            .values(recognition=True)
        )

    def _recognise(self, earned: dict[uuid.UUID, int]) -> None:
        """After earning: levels crossed and threshold badges reached, for each member."""
        org_id = self.tx.org_id
        marks = self.conn.execute(
            sa.select(sa.literal("level"), PointsLevel.id, PointsLevel.name, PointsLevel.threshold)
            .where(PointsLevel.org_id == org_id)
            .union_all(
                sa.select(
                    sa.literal("badge"), PointsBadge.id, PointsBadge.code, PointsBadge.threshold
                ).where(PointsBadge.org_id == org_id, PointsBadge.criteria == "threshold")
            )
        ).all()
        if not marks:
            return
        totals: dict[uuid.UUID, int] = {}
        for chunk in _chunks(list(earned)):
            totals.update(
                self.conn.execute(
                    sa.select(PointsAccount.member_id, PointsAccount.earned).where(
                        PointsAccount.org_id == org_id,
                        PointsAccount.kind == MEMBER,
                        self._in(PointsAccount.member_id, chunk),
                    )
                ).all()
            )
        ordered = sorted(marks, key=lambda m: (int(m[3] or 0), m[0]))
        for member_id, points in earned.items():
            new = int(totals.get(member_id, 0))
            old = new - points
            for what, mark_id, name, threshold in ordered:
                if threshold is None or not old < int(threshold) <= new:
                    continue
                if what == "level":
                    self._emit(
                        "ngo_kit_level_reached",
                        member_id=member_id,
                        level=LevelRead(id=mark_id, name=name, threshold=int(threshold)),
                    )
                else:
                    self._give_badge(mark_id, name, member_id, {"by": "threshold", "earned": new})

    def _count_badges(self, member_id: uuid.UUID, event: str) -> None:
        badges = self.conn.execute(
            sa.select(PointsBadge.id, PointsBadge.code, PointsBadge.threshold).where(
                PointsBadge.org_id == self.tx.org_id,
                PointsBadge.criteria == "event_count",
                PointsBadge.event == event,
            )
        ).all()
        if not badges:
            return
        count = int(
            self.conn.scalar(
                sa.select(sa.func.count())
                .select_from(PointsTxn)
                .join(PointsRule, PointsRule.id == PointsTxn.rule_id)
                .where(
                    PointsTxn.org_id == self.tx.org_id,
                    PointsTxn.member_id == member_id,
                    PointsTxn.kind == "award",
                    PointsRule.event == event,
                )
            )
            or 0
        )
        for badge_id, code, threshold in badges:
            if count >= int(threshold or 0):
                self._give_badge(badge_id, code, member_id, {"by": "event_count", "count": count})

    def badge_assertion(self, award_id: uuid.UUID, *, base_url: str) -> dict[str, Any]:
        """An Open Badges 2.0 assertion (hosted verification) for a badge award, as a dict.

        ``base_url`` is where the app serves assertions, e.g. ``https://ngo.example/badges``;
        the assertion's ``id`` (its verification URL) is ``<base_url>/assertions/<id>``. The
        recipient is a salted SHA-256 hash of the member id, so no personal data leaves.
        """
        row = self.tx.get_owned(PointsBadgeAward, award_id, "Badge award")
        badge = self.tx.get_owned(PointsBadge, row.badge_id, "Badge")
        import hashlib

        salt = str(row.id)[:8]
        hashed = hashlib.sha256(f"{row.member_id}{salt}".encode()).hexdigest()
        base = base_url.rstrip("/")
        org = self.tx.require_org()
        return {
            "@context": "https://w3id.org/openbadges/v2",
            "type": "Assertion",
            "id": f"{base}/assertions/{row.id}",
            "recipient": {
                "type": "id",
                "hashed": True,
                "salt": salt,
                "identity": f"sha256${hashed}",
            },
            "issuedOn": row.awarded_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verification": {"type": "hosted"},
            "badge": {
                "type": "BadgeClass",
                "id": f"{base}/badges/{badge.id}",
                "name": badge.name,
                "description": badge.description or badge.name,
                "image": badge.image_url or f"{base}/badges/{badge.id}/image",
                "criteria": {"narrative": _criteria_text(badge)},
                "issuer": {
                    "type": "Profile",
                    "id": f"{base}/issuers/{org.id}",
                    "name": org.name,
                },
            },
        }

    # --- leaderboards ---------------------------------------------------------------------------

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


def _settings_read(row: Sequence[Any] | None) -> SettingsRead:
    if row is None:
        return SettingsRead(expiry_months=None, transfers_allowed=False, recognition=False)
    return SettingsRead(
        expiry_months=row[0], transfers_allowed=bool(row[1]), recognition=bool(row[2])
    )


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


def _criteria_text(badge: PointsBadge) -> str:
    if badge.criteria == "threshold":
        return f"Earned at least {badge.threshold} points."
    if badge.criteria == "event_count":
        return f"{badge.event} at least {badge.threshold} times."
    return "Granted by the organisation."


def _member_cell(member_id: uuid.UUID) -> uuid.UUID | None:
    """The member column of an export: empty for the organisation's own accounts."""
    return None if member_id == NO_MEMBER else member_id


def _actor_label(tx: Context) -> str:
    from ngo_kit.audit import actor_label

    return actor_label(tx.actor)


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def seed_organisation(tx: Context) -> None:
    """Open the organisation's system accounts (called when an organisation is created)."""
    PointsService(tx)._system_accounts()


__all__ = [
    "BUILTIN_RULE_TYPES",
    "LimitReached",
    "NotReversible",
    "PointsService",
    "RewardUnavailable",
    "RuleType",
    "TransfersDisabled",
    "WrongStatus",
    "rule_types",
]
