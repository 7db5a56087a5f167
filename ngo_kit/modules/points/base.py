"""What every part of ``tx.points`` shares: the context, the Core connection and its
compiled-once statements, the organisation's accounts and settings, and the membership check.

The parts (``posting``, ``ledger``, ``rules``, ``rewards``, ``recognition``, ``standings``)
subclass :class:`PointsBase`; ``service.PointsService`` composes them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ngo_kit import idempotency
from ngo_kit.db import insert_ignore, new_id, utcnow
from ngo_kit.errors import NotFound
from ngo_kit.modules.points.models import (
    MEMBER,
    NO_MEMBER,
    SYSTEM_KINDS,
    PointsAccount,
    PointsLot,
    PointsSettings,
    PointsTally,
    PointsTxn,
)
from ngo_kit.modules.points.schemas import SettingsRead
from ngo_kit.tenancy import Membership

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.points.service import PointsService


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
                # every kind there is, named so that the (org_id, kind, member_id) key serves
                # the look-up: without it both databases scanned the organisation's accounts
                a.org_id == sa.bindparam("org"),
                a.kind.in_([*SYSTEM_KINDS, MEMBER]),
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


def _settings_read(row: Sequence[Any] | None) -> SettingsRead:
    if row is None:
        return SettingsRead(expiry_months=None, transfers_allowed=False, recognition=False)
    return SettingsRead(
        expiry_months=row[0], transfers_allowed=bool(row[1]), recognition=bool(row[2])
    )


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PointsBase:
    """State and helpers shared by the parts of ``tx.points``."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx
        self.conn = tx.connection  # Core statements: the ledger's hot paths
        self.st = _statements(self.conn.dialect)

    @property
    def session(self) -> Session:
        """The ORM session, for the rarely written rich objects (rules, rewards, badges)."""
        return self.tx.session

    @property
    def _service(self) -> PointsService:
        """This object as the composed service, typed: how one part calls another's methods."""
        return cast("PointsService", self)

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

    def _insert_new(self, model: Any, values: dict[str, Any]) -> bool:
        """INSERT unless a unique key clashes; True when the row was inserted.

        (RETURNING where the database has it: psycopg reports no rowcount for ON CONFLICT.)
        """
        stmt = insert_ignore(self.conn, model, **values)
        if self.st.claim_returns:
            returning = stmt.returning(model.__table__.c.id)
            return self.conn.execute(returning).first() is not None
        return bool(self.conn.execute(stmt).rowcount)

    def _keyed(
        self, operation: str, key: str | None, *, shared: bool = False, **params: Any
    ) -> dict[str, Any]:
        """The ``key``, ``key_scope`` and ``key_fingerprint`` of an operation row (for ``_new_txn``)."""
        return idempotency.keyed(self.tx, operation, key, shared=shared, **params)

    def _periods(self, at: dt.datetime) -> tuple[str, str, str]:
        local = at.astimezone(self._zone())
        year, week, _ = local.isocalendar()
        return ("all", f"{local.year:04d}-{local.month:02d}", f"{year:04d}-W{week:02d}")

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.tx.require_org().timezone)

    def _emit(self, hook: str, **kwargs: Any) -> None:
        if getattr(self.tx.kit.pm.hook, hook).get_hookimpls():
            self.tx.emit(hook, **kwargs)

    def _has_hook(self, hook: str) -> bool:
        return bool(getattr(self.tx.kit.pm.hook, hook).get_hookimpls())

    def _in(self, column: Any, values: list[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter instead of
        thousands (20x faster for a 2,000-member chunk)."""
        if self.conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            array = ARRAY(column.type)
            return column == sa.any_(sa.cast(sa.bindparam(None, values, type_=array), array))
        return column.in_(values)

    def _balance(self, member_id: uuid.UUID) -> int:
        value = self.conn.scalar(
            sa.select(PointsAccount.balance).where(
                PointsAccount.org_id == self.tx.org_id,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
        )
        return int(value or 0)

    def _see(self, member_id: uuid.UUID) -> None:
        if self.tx.actor_id != member_id:
            self.tx.require("points.view")
