"""What every part of ``tx.registration`` shares: the transaction, the module's settings and
password hashing, the hot-path statements, the vocabulary of purposes and throttle keys, and the
small helpers several parts call (account lookups, messages, send counts, one-time codes)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import math
import secrets
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from pydantic_core import PydanticCustomError

from ngo_kit.db import insert_ignore, new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    ValidationFailed,
)
from ngo_kit.i18n import gettext
from ngo_kit.statements import Row, Statement, Statements, bind
from ngo_kit.tenancy import Membership, Role

from .errors import (
    TooManyAttempts,
    TooManyRequests,
)
from .models import (
    Account,
    ConsentDocument,
    FieldDefinition,
    OneTimeCode,
    SignInSession,
    Throttle,
)
from .passwords import Passwords, RegistrationSettings, for_kit
from .schemas import (
    UserRead,
    normalise_phone,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context

    from .service import RegistrationService

log = logging.getLogger("ngo_kit.registration")
ERASED_NAME = "(erased)"  # also in checks.ErasureCheck
PURPOSE_VERIFY_EMAIL = "registration.verify-email"
PURPOSE_RESET = "registration.password-reset"
PURPOSE_INVITATION = "registration.invitation"
PURPOSE_CHANGE_EMAIL = "registration.change-email"
CODE_VERIFY_PHONE = "verify-phone"
CODE_SIGN_IN = "sign-in"
#: The ``purpose`` of the stand-in a sign-in code request leaves for the outbox worker.
CODE_REQUEST = "registration.sign-in-code-request"
CODE_CHANGE_PHONE = "change-phone"
BASIC_ROLES = ("member", "volunteer")
#: Throttle key prefixes: sign-in failures per identifier ("a:") and per client ("c:"); codes
#: and links sent per recipient, account or change target ("s:") and per client ("sc:").
FAILURES, CLIENT_FAILURES, SENDS, CLIENT_SENDS = "a:", "c:", "s:", "sc:"
#: Failed sign-ins of a known account are counted under the account, whichever of its email
#: or phone was typed: ``a:account:`` and the id as the database writes it as text (account
#: rows carry it as ``failure_key``).
ACCOUNT_FAILURES = FAILURES + "account:"
#: What messages are counted under (behind ``SENDS``, digested): an address or number asked to
#: receive sign-in codes, reset links or a change's confirmation, and an account asking to
#: change its address or number. Erasure deletes them all (``_throttle_keys``).
SEND_SUBJECTS = SIGN_IN_CODE, RESET, CHANGE = "sign-in-code:", "reset:", "change:"
ACCOUNT_SENDS = "account:"
#: Notices that stand in for a message an account would have been sent, so that an answer and
#: its time never tell whether an account has an address: ``purpose`` -> (subject, body), English
#: message ids translated in the module's catalogue; each goes out in both languages.
NO_ACCOUNT_RESET = "registration.no-account-reset"
NO_ACCOUNT_CODE = "registration.no-account-code"
TRIED_TO_REGISTER = "registration.tried-to-register"
CHANGE_TAKEN = "registration.change-taken"
NOTICES = {
    NO_ACCOUNT_RESET: (
        "Password reset requested",
        "Someone asked to reset the password of an account with this email address or phone "
        "number, but no account that can sign in has it. If it was you, perhaps you signed up "
        "with another address or number. Otherwise you can ignore this message.",
    ),
    NO_ACCOUNT_CODE: (
        "Sign-in code requested",
        "Someone asked for a sign-in code for this phone number, but no account that can sign "
        "in has it. If it was you, perhaps you signed up with another number. Otherwise you "
        "can ignore this message.",
    ),
    TRIED_TO_REGISTER: (
        "Someone tried to register with your address",
        "Someone tried to register at {org} with your email address or phone number, which "
        "your account has already. If it was you, sign in (and join {org} if you have not "
        "yet), or reset your password if you forgot it. Otherwise you can ignore this message: "
        "nothing was changed.",
    ),
    CHANGE_TAKEN: (
        "Change of address refused",
        "Another account asked to change its email address or phone number to this one, which "
        "your account has already. Nothing was changed; you can ignore this message.",
    ),
}
#: how stale a session's ``last_used_at`` may grow before a use writes it again (well inside
#: the shortest idle limit, one hour)
SESSION_USE_STEP = dt.timedelta(minutes=5)


# --- hot-path statements (compiled once per dialect, run on the driver cursor) ------------------
# A sign-up or sign-in is one argon2 hash plus a handful of small statements; building each
# statement per call cost more than running it (see docs/performance.md).

ACCOUNTS: sa.Table = Account.__table__  # type: ignore[assignment]
THROTTLES: sa.Table = Throttle.__table__  # type: ignore[assignment]
SESSIONS: sa.Table = SignInSession.__table__  # type: ignore[assignment]
FIELDS: sa.Table = FieldDefinition.__table__  # type: ignore[assignment]
DOCUMENTS: sa.Table = ConsentDocument.__table__  # type: ignore[assignment]
MEMBERSHIPS: sa.Table = Membership.__table__  # type: ignore[assignment]
ROLES: sa.Table = Role.__table__  # type: ignore[assignment]
NEW_ACCOUNT = (
    "id",
    "email",
    "phone",
    "display_name",
    "birth_date",
    "status",
    "password_hash",
    "created_at",
    "updated_at",
)


def _throttle_open(dialect: str) -> Any:
    """A key's throttle row at zero in a window starting ``now``, unless it has one already.

    On MySQL/MariaDB an existing row is locked for writing at once (an update that changes
    nothing): an INSERT IGNORE would take a shared lock on it, and two requests that then
    upgrade their shared locks to count would deadlock.
    """
    values = {
        "key": bind("k", THROTTLES.c.key),
        "failures": 0,
        "window_started_at": bind("now", THROTTLES.c.window_started_at),
    }
    if dialect in ("postgresql", "sqlite"):
        return insert_ignore(dialect, THROTTLES).values(values)
    from sqlalchemy.dialects.mysql import insert as mysql_insert

    upsert = mysql_insert(THROTTLES).values(values)
    return upsert.on_duplicate_key_update(failures=THROTTLES.c.failures)


def _accounts_where(*conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(ACCOUNTS, _account_key_sql().label("failure_key")).where(*conditions)


def _account_key_sql() -> sa.ColumnElement[str]:
    """The throttle key that counts an account's failed sign-ins (NULL without an account).

    Built by the database, so it is the same text wherever it is compared or stored, however
    the database writes a UUID (dashes or not, native type or not)."""
    return sa.literal(ACCOUNT_FAILURES, sa.String()) + sa.cast(ACCOUNTS.c.id, sa.String(36))


def _sign_in_lookup(on: Callable[[], sa.ColumnElement[bool]]) -> Callable[[str], sa.Select[Any]]:
    """Sign-in's one read: the throttle state of keys ``k`` and ``c`` and of the matched
    account's key (a row even for an unknown identifier) beside the account matched by
    ``on``, if any."""

    def build(dialect: str) -> sa.Select[Any]:
        account_key = _account_key_sql()
        keys = [bind("k", _T.key), bind("c", _T.key), account_key]
        locked = sa.select(sa.func.max(_T.locked_until)).where(_T.key.in_(keys))
        counted = sa.exists().where(_T.key.in_([bind("k", _T.key), account_key]))
        probe = sa.select(sa.literal_column("1").label("one")).subquery("probe")
        return sa.select(
            *ACCOUNTS.c,
            account_key.label("failure_key"),
            locked.scalar_subquery().label("locked_until"),
            counted.label("counted"),
        ).select_from(probe.outerjoin(ACCOUNTS, on()))

    return build


def _sign_up_reads(dialect: str) -> sa.CompoundSelect[Any]:
    """Sign-up's one read: the organisation's fields of form ``f`` and its consent documents.

    One round trip instead of two: a ``UNION ALL`` of rows of one shape, each table's columns
    under its prefix (``f_`` a field, ``d_`` a document) and typed NULLs for the other's.
    """

    def part(own: sa.Table, prefix: str, other: sa.Table, other_prefix: str) -> list[Any]:
        mine = {c.name: c.label(prefix + c.name) for c in own.c}
        blank = {
            c.name: sa.type_coerce(sa.null(), c.type).label(other_prefix + c.name) for c in other.c
        }
        return (
            [*mine.values(), *blank.values()]
            if prefix == "f_"
            else [*blank.values(), *mine.values()]
        )

    fields = sa.select(*part(FIELDS, "f_", DOCUMENTS, "d_")).where(
        FIELDS.c.org_id == bind("o", FIELDS.c.org_id), FIELDS.c.form == bind("f", FIELDS.c.form)
    )
    documents = sa.select(*part(DOCUMENTS, "d_", FIELDS, "f_")).where(
        DOCUMENTS.c.org_id == bind("o", DOCUMENTS.c.org_id)
    )
    return sa.union_all(fields, documents)


def _insert_account_and_join(dialect: str) -> Any:
    """PostgreSQL: the new account and its ``member`` membership in one statement (a
    data-modifying CTE); returns the membership's ``actor_id``, or no row when the account
    was not inserted (its email or phone is taken) or the role is missing."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    m = MEMBERSHIPS.c
    account = (
        pg_insert(ACCOUNTS)
        .values({c: bind(c, ACCOUNTS.c[c]) for c in NEW_ACCOUNT})
        .on_conflict_do_nothing()
        .returning(ACCOUNTS.c.id)
        .cte("new_account")
    )
    role = sa.and_(
        ROLES.c.org_id == bind("o", ROLES.c.org_id), ROLES.c.name == bind("role", ROLES.c.name)
    )
    rows = sa.select(
        bind("mid", m.id), ROLES.c.org_id, account.c.id, ROLES.c.id, bind("now", m.created_at)
    ).select_from(account.join(ROLES, role))
    return (
        pg_insert(MEMBERSHIPS)
        .from_select(["id", "org_id", "actor_id", "role_id", "created_at"], rows)
        .on_conflict_do_nothing()
        .returning(m.actor_id)
    )


def _throttle_update(*conditions: sa.ColumnElement[bool], **values: Any) -> sa.Update:
    return (
        THROTTLES.update()
        .where(THROTTLES.c.key == bind("k", THROTTLES.c.key), *conditions)
        .values(**values)
    )


_T = THROTTLES.c
SQL = Statements(
    {
        "account": lambda d: _accounts_where(ACCOUNTS.c.id == bind("id", ACCOUNTS.c.id)),
        "account_by_email": lambda d: _accounts_where(
            ACCOUNTS.c.email == bind("e", ACCOUNTS.c.email)
        ),
        "account_by_phone": lambda d: _accounts_where(
            ACCOUNTS.c.phone == bind("p", ACCOUNTS.c.phone)
        ),
        "account_by_either": lambda d: _accounts_where(
            sa.or_(
                ACCOUNTS.c.email == bind("e", ACCOUNTS.c.email),
                ACCOUNTS.c.phone == bind("p", ACCOUNTS.c.phone),
            )
        ),
        "account_by_both": lambda d: _accounts_where(
            ACCOUNTS.c.email == bind("e", ACCOUNTS.c.email),
            ACCOUNTS.c.phone == bind("p", ACCOUNTS.c.phone),
        ),
        "insert_account": lambda d: insert_ignore(d, ACCOUNTS).values(
            {c: bind(c, ACCOUNTS.c[c]) for c in NEW_ACCOUNT}
        ),
        "insert_account_and_join": _insert_account_and_join,
        "sign_up_reads": _sign_up_reads,
        "fields": lambda d: sa.select(FIELDS).where(
            FIELDS.c.org_id == bind("o", FIELDS.c.org_id), FIELDS.c.form == bind("f", FIELDS.c.form)
        ),
        "documents": lambda d: (
            sa.select(DOCUMENTS)
            .where(DOCUMENTS.c.org_id == bind("o", DOCUMENTS.c.org_id))
            .order_by(DOCUMENTS.c.purpose, DOCUMENTS.c.version)
        ),
        "rehash": lambda d: (
            ACCOUNTS.update()
            .where(ACCOUNTS.c.id == bind("id", ACCOUNTS.c.id))
            .values(password_hash=bind("h", ACCOUNTS.c.password_hash))
        ),
        "open_session": lambda d: SESSIONS.insert().values(
            {
                **{
                    c: bind(c, SESSIONS.c[c])
                    for c in ("id", "account_id", "token_hash", "created_at", "expires_at")
                },
                "last_used_at": bind("created_at", SESSIONS.c.last_used_at),
            }
        ),
        # throttles: ``k`` a key, ``c`` a second key (the client's, or ``k`` again)
        "throttles": lambda d: sa.select(
            _T.key, _T.failures, _T.window_started_at, _T.locked_until
        ).where(_T.key.in_([bind("k", _T.key), bind("c", _T.key)])),
        "sign_in_by_email": _sign_in_lookup(
            lambda: ACCOUNTS.c.email == bind("e", ACCOUNTS.c.email)
        ),
        "sign_in_by_phone": _sign_in_lookup(
            lambda: ACCOUNTS.c.phone == bind("p", ACCOUNTS.c.phone)
        ),
        # an email and a phone given together name an account only when it has both
        "sign_in_by_both": _sign_in_lookup(
            lambda: sa.and_(
                ACCOUNTS.c.email == bind("e", ACCOUNTS.c.email),
                ACCOUNTS.c.phone == bind("p", ACCOUNTS.c.phone),
            )
        ),
        # ``k`` an identifier's key, ``a`` the account's
        "throttle_clear": lambda d: THROTTLES.delete().where(
            _T.key.in_([bind("k", _T.key), bind("a", _T.key)])
        ),
        "throttle_open": _throttle_open,
        # a failure: counted in the open window, or the first of a new one; locked at the limit
        "failure_bump": lambda d: _throttle_update(
            _T.window_started_at > bind("since", _T.window_started_at), failures=_T.failures + 1
        ),
        "failure_restart": lambda d: _throttle_update(
            failures=1, window_started_at=bind("now", _T.window_started_at), locked_until=None
        ),
        "failure_lock": lambda d: _throttle_update(
            _T.failures >= bind("limit", _T.failures), locked_until=bind("until", _T.locked_until)
        ),
        # a message sent: counted while the open window is under the limit, or the first of a new one
        "send_bump": lambda d: _throttle_update(
            _T.window_started_at > bind("since", _T.window_started_at),
            _T.failures < bind("limit", _T.failures),
            failures=_T.failures + 1,
        ),
        "send_restart": lambda d: _throttle_update(
            _T.window_started_at <= bind("since", _T.window_started_at),
            failures=1,
            window_started_at=bind("now", _T.window_started_at),
            locked_until=None,
        ),
    }
)


class RegistrationBase:
    """What the parts of ``RegistrationService`` share: ``tx``, the module's settings and
    password hashing, and the helpers more than one part calls."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx
        self.settings: RegistrationSettings
        self.passwords: Passwords
        self.settings, self.passwords = for_kit(tx.kit)

    @property
    def _service(self) -> RegistrationService:
        """This object as the whole service, for a part that calls into another part (sign-up
        records consents, answers and the membership)."""
        return cast("RegistrationService", self)

    def _read(self, key: uuid.UUID) -> UserRead:
        return _user(self._account(key))

    def _account(self, key: uuid.UUID) -> Any:
        row = SQL(self.tx, "account").first(self.tx, id=key)
        if row is None:
            raise NotFound("User", key)
        return Row(row)

    def _find_account(self, email: str | None, phone: str | None, *, both: bool = False) -> Any:
        """The account with this email or phone (``both``: with this email and phone), or
        ``None``; ``AlreadyExists`` when an email and a phone belong to two accounts."""
        tx = self.tx
        if email is not None and phone is not None:
            name = "account_by_both" if both else "account_by_either"
            rows = SQL(tx, name).all(tx, e=email, p=phone)
        elif email is not None:
            rows = SQL(tx, "account_by_email").all(tx, e=email)
        elif phone is not None:
            rows = SQL(tx, "account_by_phone").all(tx, p=phone)
        else:
            return None
        if len(rows) > 1:
            raise AlreadyExists("Account", email or phone or "")
        return Row(rows[0]) if rows else None

    def _is_member(self, key: uuid.UUID) -> bool:
        return (
            self.tx.connection.scalar(
                sa.select(Membership.id).where(
                    Membership.org_id == self.tx.org_id, Membership.actor_id == key
                )
            )
            is not None
        )

    def _visible(self, key: uuid.UUID) -> bool:
        tx = self.tx
        return tx.is_system or tx.actor_id == key or tx.can("members.view")

    def _self_or_system(self, user_id: uuid.UUID | str | None) -> uuid.UUID:
        tx = self.tx
        if user_id is None:
            if tx.actor_id is None:
                raise PermissionDenied("registration.self")
            return tx.actor_id
        key = _uuid(user_id, "User")
        if tx.actor_id != key and not tx.is_system:
            raise PermissionDenied("registration.self")
        return key

    def _phone(self, value: str) -> str:
        org = self.tx.org
        region = org.settings.get("phone_region") if org is not None else None
        return _boundary("phone", lambda v: normalise_phone(v, region), value)

    def _link(self, kind: str, token: str) -> str:
        """The app's link for ``token`` (``link_templates``), or the bare token."""
        org = self.tx.org
        return self.settings.link(kind, token, org.slug if org is not None else None)

    def _send(
        self,
        channel: str,
        recipient: str,
        subject: str,
        body: str,
        data: dict[str, Any],
        *,
        about: uuid.UUID | None = None,
        deferred: bool = False,
    ) -> None:
        """Record a message in the outbox; ``about`` tags it with the account, for erasure.

        ``deferred`` leaves it to the outbox worker: messages that go out only when an account
        has (or has not) an address must not make the request slower (``tx.send``)."""
        if about is not None:
            data = {**data, "account": str(about)}
        self.tx.send(channel, recipient, subject, body, data=data, deferred=deferred)

    def _tell(
        self,
        channel: str,
        recipient: str,
        kind: str,
        about: uuid.UUID | None = None,
        **params: str,
    ) -> None:
        """Send notice ``kind`` (a key of ``NOTICES``) to ``recipient``, in English and Chinese
        (the caller's locale need not be the recipient's), left to the worker: it stands in
        for a message that goes out only when an account has (or has not) an address."""
        subject, body = _bilingual(*NOTICES[kind], **params)
        self._send(channel, recipient, subject, body, {"purpose": kind}, about=about, deferred=True)

    def _revoke_sessions(self, key: uuid.UUID, *, keep: str | None = None) -> int:
        """Sign the account out of every session but ``keep`` (a token); how many ended."""
        stmt = sa.update(SignInSession).where(
            SignInSession.account_id == key, SignInSession.revoked_at.is_(None)
        )
        if keep is not None:
            stmt = stmt.where(SignInSession.token_hash != _digest(str(keep)))
        done = self.tx.connection.execute(stmt.values(revoked_at=utcnow()))
        return _changed(done)

    def _count_send(self, subjects: list[str], client: str | None) -> None:
        """Count a request for a code or link against each subject's budget and the client's.

        A subject is what the request names: an address or number typed in
        (``reset:<email>``), a signed-in account (``account:<id>``) or a change's new address;
        never anything looked up, so an address with no account behaves like one with an
        account. Each subject may have ``send_limit`` requests, a client key
        ``client_send_limit``, within ``send_window_seconds`` from the first. When one budget
        is spent the request is refused with ``TooManyRequests`` (its ``retry_after`` the
        seconds until that window ends) and counts nowhere. A counted request stays counted
        when the call fails afterwards (a taken address, say): failing must not be free.
        """
        tx, s = self.tx, self.settings
        budgets = [(SENDS + _digest(x), s.send_limit) for x in subjects]
        if client:
            budgets.append((CLIENT_SENDS + _digest(client), s.client_send_limit))
        now = utcnow()
        window = dt.timedelta(seconds=s.send_window_seconds)
        sql = {name: SQL(tx, name) for name in _SEND_STATEMENTS}
        if tx._session is not None:
            tx._session.flush()
        for key, limit in budgets:
            if not _count_send(sql, tx.connection, key, limit, now, window):
                started = sql["throttles"].first(tx, k=key, c=key)
                ends = (started["window_started_at"] if started else now) + window
                raise TooManyRequests(retry_after=_seconds(ends - now))
        engine = tx.kit.engine

        def after_rollback() -> None:
            with engine.begin() as conn:
                for key, limit in budgets:
                    _count_send(sql, conn, key, limit, now, window)

        tx.on_rollback(after_rollback)

    def _issue_code(self, key: uuid.UUID, purpose: str, target: str | None) -> str:
        now = utcnow()
        self.tx.connection.execute(
            sa.update(OneTimeCode)
            .where(
                OneTimeCode.account_id == key,
                OneTimeCode.purpose == purpose,
                OneTimeCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        code = f"{secrets.randbelow(10**6):06d}"
        code_id = new_id()
        self.tx.connection.execute(
            sa.insert(OneTimeCode).values(
                id=code_id,
                account_id=key,
                purpose=purpose,
                target=target,
                code_hash=self._code_hash(code_id, code, 0),
                attempts=0,
                created_at=now,
                expires_at=now + dt.timedelta(minutes=self.settings.code_minutes),
            )
        )
        return code

    def _code_hash(self, code_id: uuid.UUID, code: str, key_index: int) -> str:
        secret = self.tx.kit.settings.secret_keys[key_index].get_secret_value()
        return hmac.new(secret.encode(), f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def _latest_code(self, key: uuid.UUID, purpose: str) -> Any:
        return self.tx.connection.execute(
            sa.select(OneTimeCode.__table__)
            .where(OneTimeCode.account_id == key, OneTimeCode.purpose == purpose)
            .order_by(OneTimeCode.created_at.desc(), OneTimeCode.id.desc())
            .limit(1)
        ).first()

    def _use_code(self, key: uuid.UUID, purpose: str, code: str) -> str | None:
        """Check and use up the latest code; returns its target. Wrong codes are counted."""
        row = self._latest_code(key, purpose)
        if row is None:
            raise TokenInvalid()
        if row.used_at is not None:
            raise TokenUsed()
        if row.expires_at <= utcnow():
            raise TokenExpired()
        if row.attempts >= self.settings.code_attempts:
            raise TooManyAttempts()
        code = str(code).strip()
        keys = range(len(self.tx.kit.settings.secret_keys))
        if not any(
            hmac.compare_digest(self._code_hash(row.id, code, i), row.code_hash) for i in keys
        ):
            self._count_wrong_code(row.id)
            raise TokenInvalid()
        done = self.tx.connection.execute(
            sa.update(OneTimeCode)
            .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None))
            .values(used_at=utcnow())
        )
        if _changed(done) != 1:
            raise TokenUsed()
        target: str | None = row.target
        return target

    def _count_wrong_code(self, code_id: uuid.UUID) -> None:
        stmt = (
            sa.update(OneTimeCode)
            .where(OneTimeCode.id == code_id)
            .values(attempts=OneTimeCode.attempts + 1)
        )
        self.tx.connection.execute(stmt)
        engine = self.tx.kit.engine

        def after_rollback() -> None:
            with engine.begin() as conn:
                conn.execute(stmt)

        self.tx.on_rollback(after_rollback)


def _user(row: Any) -> UserRead:
    """A read model from an account row."""
    return UserRead(
        id=row.id,
        email=row.email,
        phone=row.phone,
        display_name=row.display_name,
        status=row.status,
        created_at=row.created_at,
        birth_date=row.birth_date,
        email_verified=row.email_verified_at is not None,
        phone_verified=row.phone_verified_at is not None,
    )


def _bilingual(subject: str, body: str, **params: str) -> tuple[str, str]:
    """``subject`` and ``body`` (English message ids) in English and Chinese, in one message."""
    zh_subject, zh_body = _chinese(subject, body)
    return (
        f"{subject.format(**params)} / {zh_subject.format(**params)}",
        f"{body.format(**params)}\n\n{zh_body.format(**params)}",
    )


@functools.lru_cache(maxsize=64)
def _chinese(subject: str, body: str) -> tuple[str, str]:
    """A notice's Chinese texts, looked up once: a notice stands in for another message, and
    must cost no more to write than it."""
    return gettext(subject, "zh_CN"), gettext(body, "zh_CN")


def _changed(result: Any) -> int:
    """Rows an UPDATE or DELETE changed."""
    return int(getattr(result, "rowcount", 0) or 0)


def _uuid(value: uuid.UUID | str | Any, kind: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(kind, value) from None


def _get(data: Any, key: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise TokenInvalid()
    return data[key]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _fingerprint(value: str | None) -> str:
    return _digest("fp:" + (value or ""))[:32]


def _boundary(field: str, check: Callable[[str], str], value: str) -> str:
    """Run a validator outside a model, raising ``ValidationFailed`` naming ``field``."""
    try:
        return check(value)
    except PydanticCustomError as exc:
        raise ValidationFailed(field, exc.type) from None


_SEND_STATEMENTS = ("send_bump", "send_restart", "throttle_open", "throttles")


def _count_send(
    sql: dict[str, Statement],
    conn: sa.Connection,
    key: str,
    limit: int,
    now: dt.datetime,
    window: dt.timedelta,
) -> bool:
    """Count one request in ``key``'s open window, or start a new window; False at the limit."""
    since = now - window
    for attempt in range(2):
        if sql["send_bump"].changed_on(conn, k=key, since=since, limit=limit):
            return True
        if sql["send_restart"].changed_on(conn, k=key, since=since, now=now):
            return True
        if attempt == 0:  # a new key (or one a concurrent request is creating): open it
            sql["throttle_open"].changed_on(conn, k=key, now=now)
    return False


def _seconds(delta: dt.timedelta) -> int:
    """Whole seconds, rounded up (a ``Retry-After`` of 0 would invite an instant retry)."""
    return max(1, math.ceil(delta.total_seconds()))
