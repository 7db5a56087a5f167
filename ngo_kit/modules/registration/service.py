"""``tx.registration``: accounts, verification, sign-in, membership, custom fields, consent and
personal-data rights. The only place with the registration module's rules."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import math
import secrets
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic
import sqlalchemy as sa
from pydantic import AfterValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ngo_kit.db import insert_ignore, new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    LocalisedText,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    ValidationFailed,
)
from ngo_kit.i18n import gettext
from ngo_kit.outbox import OutboxMessage, OutboxRow
from ngo_kit.plugins import PersonalData, Registrar, collect
from ngo_kit.schemas import coerce, no_control_characters, validation_failed
from ngo_kit.statements import Row, Statement, Statements, bind
from ngo_kit.tenancy import Membership, Organisation, OrgRead, Role
from ngo_kit.tokens import tokens_for

from .errors import (
    AccountSuspended,
    JoiningClosed,
    SignInFailed,
    TooManyAttempts,
    TooManyRequests,
    WrongPassword,
)
from .models import (
    Account,
    Consent,
    ConsentDocument,
    FieldDefinition,
    FieldValues,
    Invitation,
    JoinRequest,
    OneTimeCode,
    SignInSession,
    Throttle,
)
from .passwords import Passwords, RegistrationSettings, for_kit, normalise_password
from .schemas import (
    ConsentDocumentIn,
    ConsentDocumentRead,
    ConsentRead,
    FieldIn,
    FieldRead,
    GuardianIn,
    InvitationRead,
    JoinRequestRead,
    NewPasswordIn,
    PurgeResult,
    RegisterIn,
    SignIn,
    SignInIn,
    UserRead,
    normalise_email,
    normalise_phone,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context

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


def _split_sign_up_reads(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``_sign_up_reads``'s rows as field rows and document rows (by purpose and version)."""
    fields, documents = [], []
    for row in rows:
        if row["f_id"] is not None:
            fields.append({k[2:]: v for k, v in row.items() if k.startswith("f_")})
        else:
            documents.append({k[2:]: v for k, v in row.items() if k.startswith("d_")})
    documents.sort(key=lambda d: (d["purpose"], d["version"]))
    return fields, documents


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


class RegistrationService:
    """``tx.registration``: one per transaction; every query is filtered by ``tx``'s organisation
    except those on accounts, which are shared across organisations and reached through a
    membership of ``tx``'s organisation."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx
        self.settings: RegistrationSettings
        self.passwords: Passwords
        self.settings, self.passwords = for_kit(tx.kit)

    # --- accounts ---------------------------------------------------------------------------

    def register(self, data: RegisterIn | dict[str, Any] | None = None, /, **kw: Any) -> UserRead:
        """Register a person in ``tx``'s organisation; returns the account.

        Creates the account when the email / phone is new, and a membership with role
        ``member`` (or the invitation's role). An existing account is joined to this
        organisation only when the system actor or the account itself acts, or (without
        enumeration prevention) the right password is given; otherwise ``AlreadyExists``.

        With ``prevent_enumeration`` (the default), a caller who is neither the system actor
        nor a holder of ``members.view`` never learns that an account has the email or phone:
        the answer is shaped as a new sign-up's (the details given, ``pending``, and a fresh id
        that names no account), nothing is written but an audit entry, and the account's holder
        is sent a notice ("someone tried to register with your address"), in English and
        Chinese, left to the outbox worker as the new sign-up's verification messages are. The
        account itself, signed in, still joins. The organisation's ``joining`` setting
        (``open`` by default, ``approval`` or ``invitation``) decides whether a stranger becomes
        a member at once, files a join request, or needs an invitation token.

        Records consents (current document versions, how, when; a guardian's for a minor),
        validates custom fields, sends verification messages, audits, and fires
        ``ngo_kit_user_registered`` and ``ngo_kit_member_joined``.
        Raises ``ValidationFailed`` naming the field, ``AlreadyExists``, ``JoiningClosed``,
        ``TokenInvalid`` subclasses for a bad invitation.
        """
        tx = self.tx
        spec = coerce(RegisterIn, data, kw)
        org = tx.require_org()
        phone = self._phone(spec.phone) if spec.phone is not None else None
        joining = str(org.settings.get("joining", "open"))
        if not spec.invitation and joining == "invitation" and not tx.is_system:
            raise JoiningClosed(how=LocalisedText("by invitation only"))
        invited = self._invitation_id(spec.invitation) if spec.invitation else None
        # Hashed before the first statement: on SQLite that statement takes the write lock, which
        # is then not held for the argon2id work (the hash is wasted only on a refusal below).
        password_hash = self.passwords.hash(spec.password) if spec.password else None
        invitation = self._open_invitation(invited) if spec.invitation else None
        field_rows, document_rows = _split_sign_up_reads(
            SQL(tx, "sign_up_reads").all(tx, o=org.id, f="registration")
        )
        values = self._validate_fields(
            self._fields_from(field_rows, "registration"), spec.fields, "fields"
        )
        documents = self._consent_plan(
            spec.consents, spec.birth_date, spec.guardian, self._documents_from(document_rows)
        )
        now = utcnow()
        account_id = new_id()
        joins_now = invitation is None and (joining != "approval" or tx.is_system)
        # New accounts are the common case: insert unless the email or phone is taken (one
        # statement, no savepoint), and look the account up only when nothing was inserted.
        existing = None
        inserted, joined = self._insert_account(
            joins_now,
            id=account_id,
            email=spec.email,
            phone=phone,
            display_name=spec.display_name,
            birth_date=spec.birth_date,
            status="pending",
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        if not inserted:
            holders = self._holders(spec.email, phone)
            own = len(holders) == 1 and holders[0].id == tx.actor_id
            if self._prevents_enumeration() and not own:
                return self._registered_already(spec, phone, holders, account_id, now)
            if len(holders) != 1:  # two accounts, or (never) none: never carry on without a row
                raise AlreadyExists("Account", spec.email or phone)
            existing = holders[0]
            account_id = existing.id
            self._may_join_existing(existing, spec.password)
            if self._is_member(account_id):
                raise AlreadyExists("Membership", account_id)
        if invitation is not None:
            self._use_invitation(invitation, account_id)
            self._add_member(account_id, invitation.role)
        elif joining == "approval" and not tx.is_system:
            self._file_join_request(account_id, None)
        else:
            self._add_member(account_id, "member", added=joined)
        if values:
            self._store_fields(account_id, "registration", values)
        self._record_consents(
            account_id, documents, spec.consent_method, spec.guardian, now, audit=False
        )
        tx.audit(  # one record for the registration and the consents given with it
            "user.registered",
            "account",
            account_id,
            "account registered" if existing is None else "existing account registered",
            data={
                "new_account": existing is None,
                "consents": [f"{d.purpose}@{d.version}" for d in documents],
                "guardian": spec.guardian is not None and bool(documents),
                "method": spec.consent_method if documents else None,
            },
        )
        if existing is not None:
            user = self._read(account_id)
        else:
            user = _new_sign_up(account_id, spec, phone, now)
            self._send_verifications(user, deferred=self._prevents_enumeration())
        tx.emit("ngo_kit_user_registered", user=user)
        return user

    def _prevents_enumeration(self) -> bool:
        """True when this caller must not learn whether an account has an address: the
        ``prevent_enumeration`` setting is on and the actor is neither the system actor nor a
        holder of ``members.view`` (staff, who may look members up anyway)."""
        tx = self.tx
        return self.settings.prevent_enumeration and not tx.can("members.view")

    def _holders(self, email: str | None, phone: str | None) -> list[Any]:
        """The accounts that have this email or this phone (none, one, or two)."""
        tx = self.tx
        rows = SQL(tx, "account_by_either").all(tx, e=email, p=phone)
        return [Row(r) for r in rows]

    def _registered_already(
        self,
        spec: RegisterIn,
        phone: str | None,
        holders: list[Any],
        fresh_id: uuid.UUID,
        now: dt.datetime,
    ) -> UserRead:
        """``register``'s answer when accounts have the email or phone and the caller may not
        learn it: each holder is told on what the caller typed that it has (left to the
        worker, as a new sign-up's messages are), the attempt is audited, and the answer is
        shaped as a new sign-up's, with ``fresh_id`` (an id no account has)."""
        tx = self.tx
        org = tx.require_org()
        for holder in holders:
            if spec.email is not None and holder.email == spec.email:
                self._tell("email", spec.email, TRIED_TO_REGISTER, holder.id, org=org.name)
            elif phone is not None and holder.phone == phone:
                self._tell("sms", phone, TRIED_TO_REGISTER, holder.id, org=org.name)
        tx.audit(
            "user.registration_deflected",
            "account",
            holders[0].id if holders else fresh_id,
            "sign-up with an address an account has; its holder was told",
            data={"accounts": len(holders)},
        )
        return _new_sign_up(fresh_id, spec, phone, now)

    def get_user(self, user_id: uuid.UUID | str) -> UserRead:
        """A member of ``tx``'s organisation; ``NotFound`` for anyone else.

        Contact details (email, phone, birth date) are shown to the person, the system actor
        and holders of ``members.view``; others get them as ``None``.
        """
        key = _uuid(user_id, "User")
        if not self._is_member(key):
            raise NotFound("User", user_id)
        return self._mask(self._read(key))

    def users(self, ids: Iterable[uuid.UUID | str]) -> dict[uuid.UUID, UserRead]:
        """The members of ``tx``'s organisation among ``ids`` (others are left out), by id."""
        keys = {_uuid(i, "User") for i in ids}
        if not keys:
            return {}
        rows = self.tx.connection.execute(
            sa.select(Account.__table__)
            .join(Membership, Membership.actor_id == Account.id)
            .where(Membership.org_id == self.tx.org_id, Account.id.in_(keys))
        )
        return {row.id: self._mask(_user(row)) for row in rows}

    def members(self, *, limit: int = 100, offset: int = 0) -> list[UserRead]:
        """The organisation's members, oldest membership first (``members.view``)."""
        self.tx.require("members.view")
        rows = self.tx.connection.execute(
            sa.select(Account.__table__)
            .join(Membership, Membership.actor_id == Account.id)
            .where(Membership.org_id == self.tx.org_id)
            .order_by(Membership.created_at, Account.id)
            .limit(limit)
            .offset(offset)
        )
        return [_user(r) for r in rows]

    def find_user(self, *, email: str | None = None, phone: str | None = None) -> UserRead:
        """A member found by email or phone (``members.view``); ``NotFound`` otherwise."""
        self.tx.require("members.view")
        e = _boundary("email", normalise_email, email) if email else None
        p = self._phone(phone) if phone else None
        row = self._find_account(e, p)
        if row is None or not self._is_member(row.id):
            raise NotFound("User", email or phone or "")
        return _user(row)

    def suspend(self, user_id: uuid.UUID | str) -> UserRead:
        """Suspend an account (system actor only: accounts span organisations); signs it out."""
        self.tx.require_system("registration.suspend")
        key = _uuid(user_id, "User")
        self._account(key)
        self.tx.connection.execute(
            sa.update(Account)
            .where(Account.id == key, Account.status != "erased")
            .values(status="suspended", updated_at=utcnow())
        )
        self._revoke_sessions(key)
        if self.tx.org is not None:
            self.tx.audit("user.suspended", "account", key, "account suspended")
        return self._read(key)

    def reinstate(self, user_id: uuid.UUID | str) -> UserRead:
        """Lift a suspension (system actor only); the account is active again."""
        self.tx.require_system("registration.suspend")
        key = _uuid(user_id, "User")
        self._account(key)
        done = self.tx.connection.execute(
            sa.update(Account)
            .where(Account.id == key, Account.status == "suspended")
            .values(status="active", updated_at=utcnow())
        )
        if _changed(done) != 1:
            raise Conflict("The account is not suspended.")
        if self.tx.org is not None:
            self.tx.audit("user.reinstated", "account", key, "suspension lifted")
        return self._read(key)

    # --- sign-in ------------------------------------------------------------------------------

    def authenticate(self, data: SignInIn | dict[str, Any] | None = None, /, **kw: Any) -> SignIn:
        """Sign in by email or phone with a password, or by phone with a one-time code.

        An email and a phone given together name the account that has both; any other pair
        fails as a wrong password does, whoever has either.

        Returns a ``SignIn`` with an opaque session token (256 random bits; only its SHA-256 is
        stored). Any wrong identifier, password or code raises the same ``SignInFailed`` in
        comparable time (an unknown account is checked against a dummy hash). Throttling:
        ``TooManyAttempts`` once an account has ``account_failures`` (5) failures, whether its
        email or its phone was typed (an identifier with no account has a count of its own),
        or a ``client`` key ``client_failures`` (20), within ``throttle_window_seconds``
        (15 min); the lock lasts ``lockout_seconds`` (15 min). A success clears the account's
        count.
        A hash with old parameters or an old scheme (bcrypt) is replaced on success.
        Needs no organisation; with one, the sign-in is audited there.
        """
        tx = self.tx
        spec = coerce(SignInIn, data, kw)
        phone = None
        if spec.phone is not None:
            try:
                phone = self._phone(spec.phone)
            except ValidationFailed:
                phone = "invalid:" + spec.phone
        identifier = spec.email or phone or ""
        keys = [FAILURES + _digest(identifier)]
        if spec.client:
            keys.append(CLIENT_FAILURES + _digest(spec.client))
        now = utcnow()
        password = normalise_password(spec.password) if spec.password is not None else None
        ahead = self._verify_ahead(keys, spec.email, phone, now, password)
        wait, counted, row = self._sign_in_lookup(keys, spec.email, phone, now)
        if wait is not None:
            raise TooManyAttempts(retry_after=wait)
        new_hash: str | None = None
        if spec.code is not None:
            ok = (
                row is not None
                and phone is not None
                and self._code_matches(row.id, CODE_SIGN_IN, spec.code)
            )
        else:
            assert password is not None
            stored = row.password_hash if row is not None else None
            if ahead is not None and ahead[0] == stored:
                ok, new_hash = ahead[1]
            else:
                ok, new_hash = self.passwords.verify(password, stored)
        if row is not None:  # a known account's failures count under the account
            keys[0] = row.failure_key
        if not ok or row is None:
            self._record_failure(keys, now)
            raise SignInFailed()
        if row.status in ("suspended", "erased"):
            raise AccountSuspended()
        if counted:
            SQL(tx, "throttle_clear").changed(tx, k=FAILURES + _digest(identifier), a=keys[0])
        if new_hash is not None:
            SQL(tx, "rehash").changed(tx, id=row.id, h=new_hash)
        signed_in = self._open_session(_user(row), now)
        if tx.org is not None:
            tx.audit(
                "user.signed_in",
                "account",
                row.id,
                "signed in",
                data={"method": "code" if spec.code else "password", "rehashed": bool(new_hash)},
            )
        return signed_in

    def session_user(self, token: str) -> UserRead:
        """The account a session token belongs to; ``TokenInvalid`` / ``TokenExpired`` if not valid.

        A session ends ``session_days`` after sign-in, or sooner when it has not been used for
        ``session_idle_hours`` (``TokenExpired`` either way). Each use is noted, to the nearest
        few minutes, so a session in use stays open.
        """
        tx = self.tx
        row = tx.connection.execute(
            sa.select(
                SignInSession.id,
                SignInSession.account_id,
                SignInSession.created_at,
                SignInSession.expires_at,
                SignInSession.revoked_at,
                SignInSession.last_used_at,
            ).where(SignInSession.token_hash == _digest(str(token)))
        ).first()
        if row is None or row.revoked_at is not None:
            raise TokenInvalid()
        now = utcnow()
        if row.expires_at <= now:
            raise TokenExpired()
        idle = dt.timedelta(hours=self.settings.session_idle_hours)
        last_used = row.last_used_at or row.created_at
        if idle and last_used + idle <= now:
            raise TokenExpired()
        user = self._read(row.account_id)
        if user.status in ("suspended", "erased"):
            raise TokenInvalid()
        if idle and now - last_used >= SESSION_USE_STEP:
            tx.connection.execute(  # at most once a step: a page view need not write
                sa.update(SignInSession).where(SignInSession.id == row.id).values(last_used_at=now)
            )
        return user

    def sign_out(self, token: str) -> None:
        """Revoke one session (its holder signs out). Unknown tokens are ignored."""
        self.tx.connection.execute(
            sa.update(SignInSession)
            .where(
                SignInSession.token_hash == _digest(str(token)), SignInSession.revoked_at.is_(None)
            )
            .values(revoked_at=utcnow())
        )

    def sign_out_everywhere(self, user_id: uuid.UUID | str | None = None) -> int:
        """Revoke every session of the actor (or, for the system actor, of ``user_id``)."""
        key = self._self_or_system(user_id)
        return self._revoke_sessions(key)

    def purge(self, *, keep_days: int = 30) -> PurgeResult:
        """Delete what no rule reads any more (system actor only, no organisation needed).

        Sessions that expired, went unused past ``session_idle_hours`` or were revoked more
        than ``keep_days`` ago (the newer ones stay for the person's data export), one-time codes that were used or have expired, and
        throttle counts whose window has ended and whose lock has passed (the next attempt would
        start them afresh anyway). Returns how many rows of each went. Run it from a scheduler:
        ``ngo-kit registration purge``.
        """
        tx = self.tx
        tx.require_system("registration.purge")
        if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 0:
            raise ValidationFailed("keep_days", "greater_than_equal", ge=0)
        now = utcnow()
        cutoff = now - dt.timedelta(days=keep_days)
        window = dt.timedelta(
            seconds=max(self.settings.throttle_window_seconds, self.settings.send_window_seconds)
        )
        conn = tx.connection
        ended = [SignInSession.expires_at < cutoff, SignInSession.revoked_at < cutoff]
        if self.settings.session_idle_hours:
            idle_since = cutoff - dt.timedelta(hours=self.settings.session_idle_hours)
            ended.append(
                sa.func.coalesce(SignInSession.last_used_at, SignInSession.created_at) < idle_since
            )
        sessions = conn.execute(sa.delete(SignInSession).where(sa.or_(*ended)))
        codes = conn.execute(
            sa.delete(OneTimeCode).where(
                sa.or_(OneTimeCode.used_at.is_not(None), OneTimeCode.expires_at < now)
            )
        )
        throttles = conn.execute(
            sa.delete(Throttle).where(
                Throttle.window_started_at < now - window,
                sa.or_(Throttle.locked_until.is_(None), Throttle.locked_until < now),
            )
        )
        return PurgeResult(
            sessions=_changed(sessions), codes=_changed(codes), throttles=_changed(throttles)
        )

    def request_sign_in_code(self, phone: str, *, client: str | None = None) -> None:
        """Text a 6-digit sign-in code to ``phone`` if an account has it (says nothing either way).

        A number no account can sign in with is told so instead. The request only counts
        towards the limits and leaves a stand-in message for the outbox worker, which looks the
        number up and issues the code (``_complete_sign_in_code``): the request does the same
        work, in the same time, whether or not an account has the number, and the code is never
        stored in clear. Throttled per number and per ``client`` key (``TooManyRequests``).
        """
        p = self._phone(phone)
        self._count_send([SIGN_IN_CODE + p], client)
        self._send("sms", p, "Sign-in code", "", {"purpose": CODE_REQUEST}, deferred=True)

    def _complete_sign_in_code(self, message: OutboxMessage) -> OutboxMessage:
        """The sign-in code message for a stand-in left by ``request_sign_in_code``.

        Run by the outbox worker as the system actor, just before delivery: issues a code to
        the account with the number (a new code replaces an unused one), or writes the
        bilingual notice that no account that can sign in has it.
        """
        row = self._find_account(None, message.recipient)
        if row is None or row.status in ("suspended", "erased"):
            subject, body = _bilingual(*NOTICES[NO_ACCOUNT_CODE])
            data = {**message.data, "purpose": NO_ACCOUNT_CODE}
            return message.model_copy(update={"subject": subject, "body": body, "data": data})
        code = self._issue_code(row.id, CODE_SIGN_IN, message.recipient)
        body = f"Your sign-in code is {code}. It is valid for {self.settings.code_minutes} minutes."
        data = {"purpose": CODE_SIGN_IN, "code": code, "account": str(row.id)}
        return message.model_copy(update={"body": body, "data": data})

    # --- verification -------------------------------------------------------------------------

    def send_email_verification(
        self, user_id: uuid.UUID | str | None = None, *, client: str | None = None
    ) -> None:
        """Email a verification link to the account's address (the person or the system actor).

        Throttled per account and per ``client`` key (``TooManyRequests``).
        """
        key = self._self_or_system(user_id)
        user = self._read(key)
        if user.email is None or user.email_verified:
            raise Conflict("There is no unverified email address to verify.")
        self._count_send([f"{ACCOUNT_SENDS}{key}"], client)
        self._send_email_link(user)

    def verify_email(self, token: str) -> UserRead:
        """Mark the email verified from a link token; activates a pending account.

        ``TokenExpired`` after ``verify_email_hours``, ``TokenUsed`` once verified or when the
        address has changed since, ``TokenTampered`` / ``TokenWrongPurpose`` for other tokens.
        Fires ``ngo_kit_user_verified(channel="email")``.
        """
        tx = self.tx
        tx.require_org()
        data = tokens_for(tx.kit).load(
            PURPOSE_VERIFY_EMAIL,
            token,
            max_age=dt.timedelta(hours=self.settings.verify_email_hours),
        )
        key = _uuid(_get(data, "a"), "User")
        row = self._account(key)
        if row.email is None or row.email != _get(data, "e") or row.email_verified_at is not None:
            raise TokenUsed()
        return self._mark_verified(key, "email")

    def send_phone_code(
        self, user_id: uuid.UUID | str | None = None, *, client: str | None = None
    ) -> None:
        """Text a 6-digit verification code to the account's phone (valid ``code_minutes``).

        Throttled per account and per ``client`` key (``TooManyRequests``).
        """
        key = self._self_or_system(user_id)
        row = self._account(key)
        if row.phone is None or row.phone_verified_at is not None:
            raise Conflict("There is no unverified phone number to verify.")
        self._count_send([f"{ACCOUNT_SENDS}{key}"], client)
        self._send_phone_code(key, row.phone)

    def verify_phone(self, code: str, user_id: uuid.UUID | str | None = None) -> UserRead:
        """Mark the phone verified with the latest code sent to it.

        ``TokenInvalid`` for a wrong code (each counts; after ``code_attempts`` (5) the code is
        dead: ``TooManyAttempts``), ``TokenExpired`` after ``code_minutes`` (10), ``TokenUsed``
        once used. Fires ``ngo_kit_user_verified(channel="phone")``.
        """
        self.tx.require_org()
        key = self._self_or_system(user_id)
        self._use_code(key, CODE_VERIFY_PHONE, code)
        return self._mark_verified(key, "phone")

    # --- passwords ------------------------------------------------------------------------------

    def request_password_reset(
        self, *, email: str | None = None, phone: str | None = None, client: str | None = None
    ) -> None:
        """Send a reset link (30 minutes, single use) if an account has this email or phone
        (both: if one account has both); the link goes to the email, else to the phone.

        Says nothing about whether one does, throttling included: requests are counted per
        address or number typed in and per ``client`` key, whoever has it (``TooManyRequests``).
        An address or number that names no account that can sign in is told so instead. Either
        message is left to the outbox worker (``deferred``), so the answer and its time are the
        same either way.
        """
        e = _boundary("email", normalise_email, email) if email else None
        p = self._phone(phone) if phone else None
        if e is None and p is None:
            raise ValidationFailed("email", "identifier_required")
        self._count_send([RESET + i for i in (e, p) if i], client)
        row = self._find_account(e, p, both=True)
        recipient = e or p
        assert recipient is not None
        usable = row is not None and row.status not in ("suspended", "erased")
        # The token is signed either way (for an id no account has when none is usable), as
        # sign-in checks an unknown account against a dummy hash: the same work, the same time.
        token = tokens_for(self.tx.kit).sign(
            PURPOSE_RESET,
            {
                "a": str(row.id if usable else new_id()),
                "h": _fingerprint(row.password_hash if usable else None),
            },
        )
        if not usable:
            self._tell("email" if e else "sms", recipient, NO_ACCOUNT_RESET)
            return
        self._send(
            "email" if e else "sms",
            recipient,
            "Reset your password",
            f"Use this link within {self.settings.reset_minutes} minutes to choose a new "
            f"password: {self._link('reset_password', token)}",
            {"purpose": PURPOSE_RESET, "token": token},
            about=row.id,
            deferred=True,
        )

    def reset_password(self, token: str, password: str) -> UserRead:
        """Set a new password from a reset token; signs the account out everywhere.

        The token dies on first use and on any password change (it is bound to the current
        hash): ``TokenUsed``. ``TokenExpired`` after 30 minutes. The person is notified.
        """
        tx = self.tx
        new = coerce(NewPasswordIn, None, {"password": password}).password
        data = tokens_for(tx.kit).load(
            PURPOSE_RESET, token, max_age=dt.timedelta(minutes=self.settings.reset_minutes)
        )
        key = _uuid(_get(data, "a"), "User")
        row = self._account(key)
        if row.status in ("suspended", "erased"):
            raise TokenInvalid()
        new_hash = self.passwords.hash(new)
        done = tx.connection.execute(
            sa.update(Account)
            .where(Account.id == key, _same_hash(row.password_hash, _get(data, "h")))
            .values(password_hash=new_hash, updated_at=utcnow())
        )
        if _changed(done) != 1:
            raise TokenUsed()
        self._revoke_sessions(key)
        self._notify(row, "Your password was changed", "Your password was reset.")
        if tx.org is not None:
            tx.audit("user.password_reset", "account", key, "password reset; signed out everywhere")
        return self._read(key)

    def change_password(
        self, current_password: str, new_password: str, *, keep_session: str | None = None
    ) -> int:
        """The signed-in person changes their password; the current one is needed.

        Every other session of the account is signed out (whoever held the old password may
        hold one of them); ``keep_session``, the token of the session the change is made from,
        stays signed in (the web route passes its own). Without it every session ends. Returns
        how many sessions were signed out. ``WrongPassword`` when the current password is not
        right; ``ValidationFailed`` for a weak new one. The person is notified.

        A wrong current password counts as a failed sign-in of the account (whoever holds a
        session cannot guess the password here instead), and ``TooManyAttempts`` refuses the
        change while the account is locked.
        """
        tx = self.tx
        key = tx.actor_id
        if key is None:
            raise PermissionDenied("registration.change_password")
        new = coerce(NewPasswordIn, None, {"password": new_password}).password
        row = self._account(key)
        failures = row.failure_key
        now = utcnow()
        found = SQL(tx, "throttles").first(tx, k=failures, c=failures)
        until = found["locked_until"] if found is not None else None
        if until is not None and until > now:
            raise TooManyAttempts(retry_after=_seconds(until - now))
        ok, _ = self.passwords.verify(normalise_password(current_password), row.password_hash)
        if not ok:
            self._record_failure([failures], now)
            raise WrongPassword()
        tx.connection.execute(
            sa.update(Account)
            .where(Account.id == key)
            .values(password_hash=self.passwords.hash(new), updated_at=utcnow())
        )
        ended = self._revoke_sessions(key, keep=keep_session)
        self._notify(row, "Your password was changed", "Your password was changed.")
        if tx.org is not None:
            tx.audit(
                "user.password_changed",
                "account",
                key,
                "password changed; other sessions signed out",
                data={"sessions_ended": ended, "kept_current": keep_session is not None},
            )
        return ended

    def request_email_change(self, new_email: str, *, client: str | None = None) -> None:
        """Send a confirmation link to ``new_email``; the address changes when it is followed.

        The old address is told. When another account has the address, its holder is told
        instead of being sent a link, and the answer is the same (nothing says the address is
        taken); both messages are left to the outbox worker (``deferred``).
        Throttled per account, per new address and per ``client`` key (``TooManyRequests``).
        """
        tx = self.tx
        e = _boundary("email", normalise_email, new_email)
        key, row, taken = self._change_asked("email", e, client)
        if taken:
            self._tell("email", e, CHANGE_TAKEN)
        else:
            token = tokens_for(tx.kit).sign(
                PURPOSE_CHANGE_EMAIL, {"a": str(key), "e": e, "h": _fingerprint(row.email)}
            )
            self._send(
                "email",
                e,
                "Confirm your new email address",
                "Follow this link to confirm your new address: "
                f"{self._link('change_email', token)}",
                {"purpose": PURPOSE_CHANGE_EMAIL, "token": token},
                about=key,
                deferred=True,
            )
        self._tell_old(
            row,
            "email",
            "Your email address is being changed",
            "A change of the email address of your account was requested.",
        )

    def confirm_email_change(self, token: str) -> UserRead:
        """Switch to the new address from the link; it counts as verified. Single use."""
        tx = self.tx
        tx.require_org()
        data = tokens_for(tx.kit).load(
            PURPOSE_CHANGE_EMAIL,
            token,
            max_age=dt.timedelta(hours=self.settings.verify_email_hours),
        )
        key = _uuid(_get(data, "a"), "User")
        row = self._account(key)
        if _fingerprint(row.email) != _get(data, "h") or row.status == "erased":
            raise TokenUsed()
        return self._switch(
            row,
            "email",
            str(_get(data, "e")),
            "Your email address was changed",
            "The email address of your account was changed.",
        )

    def request_phone_change(self, new_phone: str, *, client: str | None = None) -> None:
        """Text a code to ``new_phone``; the number changes when the code is confirmed.

        When another account has the number, its holder is told instead of being sent the code,
        and the answer is the same (the code issued then confirms nothing: ``TokenInvalid``);
        both messages are left to the outbox worker (``deferred``).
        Throttled per account, per new number and per ``client`` key (``TooManyRequests``).
        """
        p = self._phone(new_phone)
        key, row, taken = self._change_asked("phone", p, client)
        # a code is issued either way (the same work); for a taken number it names no target
        code = self._issue_code(key, CODE_CHANGE_PHONE, None if taken else p)
        if taken:
            self._tell("sms", p, CHANGE_TAKEN)
        else:
            self._send(
                "sms",
                p,
                "Confirm your new number",
                f"Your confirmation code is {code}.",
                {"purpose": CODE_CHANGE_PHONE, "code": code},
                about=key,
                deferred=True,
            )
        self._tell_old(
            row,
            "phone",
            "Number change requested",
            "A change of your account's phone number was requested.",
        )

    def confirm_phone_change(self, code: str) -> UserRead:
        """Switch to the new number with the code sent to it; it counts as verified."""
        self.tx.require_org()
        key = self._self_or_system(None)
        target = self._use_code(key, CODE_CHANGE_PHONE, code)
        if target is None:  # a change code always names its number: refuse, never blank it
            raise TokenInvalid()
        return self._switch(
            self._account(key),
            "phone",
            target,
            "Number changed",
            "Your account's phone number was changed.",
        )

    def _change_asked(
        self, field: str, new: str, client: str | None
    ) -> tuple[uuid.UUID, Any, bool]:
        """The signed-in account asking to switch its ``field`` (``email`` or ``phone``) to
        ``new``, its row, and whether another account has ``new`` (the caller answers the same
        either way). The request is counted against the account, ``new`` and ``client``
        first."""
        key = self._self_or_system(None)
        self._count_send([f"{ACCOUNT_SENDS}{key}", CHANGE + new], client)
        row = self._account(key)
        email, phone = (new, None) if field == "email" else (None, new)
        holder = self._find_account(email, phone)
        return key, row, holder is not None and holder.id != key

    def _switch(self, row: Any, field: str, new: str, subject: str, body: str) -> UserRead:
        """Set ``row``'s ``field`` (``email`` or ``phone``) to ``new``, verified now; tell the
        old address or number (``subject``, ``body``) and audit."""
        tx = self.tx
        now = utcnow()
        with tx.translate_integrity(AlreadyExists("Account", new)):
            tx.connection.execute(
                sa.update(Account)
                .where(Account.id == row.id)
                .values({field: new, f"{field}_verified_at": now, "updated_at": now})
            )
        self._tell_old(row, field, subject, body)
        what = "email address" if field == "email" else "phone number"
        tx.audit(f"user.{field}_changed", "account", row.id, f"{what} changed")
        return self._mark_verified(row.id, field, already=True)

    def _tell_old(self, row: Any, field: str, subject: str, body: str) -> None:
        """A notice to the account's current ``field`` (``email`` or ``phone``), if it has one."""
        old = getattr(row, field)
        if old:
            channel = "email" if field == "email" else "sms"
            self._send(channel, old, subject, body, {"purpose": "notice"}, about=row.id)

    # --- membership ----------------------------------------------------------------------------

    def invite(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        role: str = "member",
        days: int | None = None,
    ) -> InvitationRead:
        """Invite a person to join with ``role`` (``members.invite``; roles other than member
        and volunteer also need ``members.manage_roles``). Sends the signed link; the returned
        ``InvitationRead.token`` is the same link token."""
        tx = self.tx
        tx.require("members.invite")
        if role not in BASIC_ROLES:
            tx.require("members.manage_roles")
        e = _boundary("email", normalise_email, email) if email else None
        p = self._phone(phone) if phone else None
        if e is None and p is None:
            raise ValidationFailed("email", "identifier_required")
        self._role_exists(role)
        lifetime = days if days is not None else self.settings.invitation_days
        if not 1 <= lifetime <= 90:
            raise ValidationFailed("days", "less_than_equal", le=90)
        now = utcnow()
        inv_id = new_id()
        expires = now + dt.timedelta(days=lifetime)
        tx.connection.execute(
            sa.insert(Invitation).values(
                id=inv_id,
                org_id=tx.org_id,
                email=e,
                phone=p,
                role=role,
                status="pending",
                invited_by=_actor(tx),
                expires_at=expires,
                created_at=now,
            )
        )
        token = tokens_for(tx.kit).sign(PURPOSE_INVITATION, {"i": str(inv_id), "o": str(tx.org_id)})
        org = tx.require_org()
        self._send(
            "email" if e else "sms",
            e or p or "",
            f"Invitation to join {org.name}",
            f"You are invited to join {org.name}. Accept with this link: "
            f"{self._link('invitation', token)}",
            {"purpose": PURPOSE_INVITATION, "token": token},
        )
        tx.audit("member.invited", "invitation", inv_id, f"invited as {role}", data={"role": role})
        return InvitationRead(
            id=inv_id,
            email=e,
            phone=p,
            role=role,
            status="pending",
            expires_at=expires,
            created_at=now,
            token=token,
        )

    def accept_invitation(self, token: str) -> UserRead:
        """The signed-in person accepts an invitation and becomes a member with its role.

        Single use: ``TokenUsed`` the second time; ``TokenExpired`` after its lifetime;
        ``TokenInvalid`` once revoked. Fires ``ngo_kit_member_joined``.
        """
        tx = self.tx
        key = tx.actor_id
        if key is None:
            raise PermissionDenied("registration.accept_invitation")
        invitation = self._open_invitation(self._invitation_id(token))
        self._account(key)
        if self._is_member(key):
            raise AlreadyExists("Membership", key)
        self._use_invitation(invitation, key)
        self._add_member(key, invitation.role)
        return self._read(key)

    def revoke_invitation(self, invitation_id: uuid.UUID | str) -> InvitationRead:
        """Withdraw a pending invitation (``members.invite``)."""
        tx = self.tx
        tx.require("members.invite")
        row = tx.get_owned(Invitation, invitation_id, "Invitation")
        done = tx.connection.execute(
            sa.update(Invitation)
            .where(Invitation.id == row.id, Invitation.status == "pending")
            .values(status="revoked", decided_at=utcnow())
        )
        if _changed(done) != 1:
            raise Conflict("The invitation is no longer pending.")
        tx.audit("member.invitation_revoked", "invitation", row.id, "invitation revoked")
        return _invitation(row, status="revoked")

    def invitations(self, status: str | None = "pending") -> list[InvitationRead]:
        """The organisation's invitations, newest first (``members.invite``)."""
        tx = self.tx
        tx.require("members.invite")
        stmt = sa.select(Invitation.__table__).where(Invitation.org_id == tx.org_id)
        if status is not None:
            stmt = stmt.where(Invitation.status == status)
        rows = tx.connection.execute(stmt.order_by(Invitation.created_at.desc()))
        return [_invitation(r) for r in rows]

    def join(self) -> UserRead:
        """The signed-in person joins an organisation whose ``joining`` setting is ``open``."""
        tx = self.tx
        key = self._signed_in()
        joining = str(tx.require_org().settings.get("joining", "open"))
        if joining != "open":
            how = "by approval" if joining == "approval" else "by invitation only"
            raise JoiningClosed(how=LocalisedText(how))
        if self._is_member(key):
            raise AlreadyExists("Membership", key)
        self._add_member(key, "member")
        return self._read(key)

    def request_to_join(self, message: str | None = None) -> JoinRequestRead:
        """The signed-in person asks to join; an administrator approves or rejects it."""
        tx = self.tx
        key = self._signed_in()
        joining = str(tx.require_org().settings.get("joining", "open"))
        if joining == "invitation":
            raise JoiningClosed(how=LocalisedText("by invitation only"))
        if message is not None:
            message = _boundary("message", no_control_characters, message.strip())[:1000] or None
        if self._is_member(key):
            raise AlreadyExists("Membership", key)
        return self._file_join_request(key, message)

    def join_requests(self, status: str | None = "pending") -> list[JoinRequestRead]:
        """Join requests, oldest first (``members.approve``)."""
        tx = self.tx
        tx.require("members.approve")
        stmt = sa.select(JoinRequest.__table__).where(JoinRequest.org_id == tx.org_id)
        if status is not None:
            stmt = stmt.where(JoinRequest.status == status)
        return [
            JoinRequestRead.model_validate(r)
            for r in tx.connection.execute(stmt.order_by(JoinRequest.created_at))
        ]

    def approve_join(self, request_id: uuid.UUID | str, role: str = "member") -> UserRead:
        """Approve a pending request (``members.approve``): the person becomes a member."""
        tx = self.tx
        tx.require("members.approve")
        if role not in BASIC_ROLES:
            tx.require("members.manage_roles")
        row = self._decide(request_id, "approved")
        self._add_member(row.account_id, role)
        return self._read(row.account_id)

    def reject_join(self, request_id: uuid.UUID | str) -> JoinRequestRead:
        """Reject a pending request (``members.approve``)."""
        self.tx.require("members.approve")
        row = self._decide(request_id, "rejected")
        return JoinRequestRead.model_validate(row).model_copy(update={"status": "rejected"})

    def set_role(self, user_id: uuid.UUID | str, role: str) -> None:
        """Change a member's role (``members.manage_roles``); the last owner stays an owner."""
        tx = self.tx
        tx.require("members.manage_roles")
        key = _uuid(user_id, "User")
        with tx.elevated():
            tx.tenancy.set_role(key, role)

    def leave(self) -> None:
        """The signed-in person ends their membership. Fires ``ngo_kit_member_left``."""
        key = self._signed_in()
        self._end_membership(key)

    def remove_member(self, user_id: uuid.UUID | str) -> None:
        """End someone's membership (``members.remove``). Fires ``ngo_kit_member_left``."""
        self.tx.require("members.remove")
        self._end_membership(_uuid(user_id, "User"))

    # --- custom fields ---------------------------------------------------------------------------

    def define_field(self, data: FieldIn | dict[str, Any] | None = None, /, **kw: Any) -> FieldRead:
        """Add a custom field to one of the organisation's forms (``registration.manage``)."""
        tx = self.tx
        tx.require("registration.manage")
        spec = coerce(FieldIn, data, kw)
        for limit in ("min_value", "max_value"):
            value = getattr(spec, limit)
            if value is not None:
                _check_limit(spec.kind, limit, value)
        if any(f.name == spec.name for f in self._plugin_fields(spec.form)):
            raise AlreadyExists("Field", spec.name)
        with tx.translate_integrity(AlreadyExists("Field", spec.name)):
            tx.connection.execute(
                sa.insert(FieldDefinition).values(
                    id=new_id(), org_id=tx.org_id, created_at=utcnow(), **spec.model_dump()
                )
            )
        tx.audit("field.defined", "field", f"{spec.form}.{spec.name}", f"field {spec.name} added")
        return FieldRead(**spec.model_dump(), source="organisation")

    def remove_field(self, form: str, name: str) -> None:
        """Remove an organisation's field (``registration.manage``); stored answers stay."""
        tx = self.tx
        tx.require("registration.manage")
        done = tx.connection.execute(
            sa.delete(FieldDefinition).where(
                FieldDefinition.org_id == tx.org_id,
                FieldDefinition.form == form,
                FieldDefinition.name == name,
            )
        )
        if _changed(done) != 1:
            raise NotFound("Field", name)
        tx.audit("field.removed", "field", f"{form}.{name}", f"field {name} removed")

    def fields(self, form: str = "registration") -> list[FieldRead]:
        """The fields of ``form``: plugins' (``ngo_kit_register_fields``) and the organisation's."""
        rows = SQL(self.tx, "fields").all(self.tx, o=self.tx.org_id, f=form)
        return self._fields_from(rows, form)

    def _fields_from(self, rows: list[dict[str, Any]], form: str) -> list[FieldRead]:
        """``fields(form)`` from the organisation's rows of that form."""
        own = [
            FieldRead(
                form=r["form"],
                name=r["name"],
                kind=r["kind"],
                required=r["required"],
                label_en=r["label_en"],
                label_zh=r["label_zh"],
                choices=tuple(r["choices"] or ()),
                min_value=r["min_value"],
                max_value=r["max_value"],
                max_length=r["max_length"],
                position=r["position"],
            )
            for r in rows
        ]
        return sorted([*self._plugin_fields(form), *own], key=lambda f: (f.position, f.name))

    def validate_fields(
        self, form: str, values: dict[str, Any] | None, *, prefix: str = "fields"
    ) -> dict[str, Any]:
        """Check answers against ``form``'s fields; return them cleaned and JSON-ready.

        A pydantic model is built from the definitions. Numbers come back as exact decimal
        strings, dates as ``YYYY-MM-DD``, phones in E.164, emails normalised; fields left out
        that are not required are omitted. Errors are ``ValidationFailed`` naming
        ``<prefix>.<field name>``; unknown names are refused (``extra_forbidden``). The
        volunteer module reuses this for its profile form.
        """
        return self._validate_fields(self.fields(form), values, prefix)

    def _validate_fields(
        self, definitions: list[FieldRead], values: dict[str, Any] | None, prefix: str
    ) -> dict[str, Any]:
        """``validate_fields`` against definitions already read."""
        if not isinstance(values, dict):
            if values is None:
                values = {}
            else:
                raise ValidationFailed(prefix, "dict_type", "must be a mapping of field names")
        if not definitions and not values:
            return {}
        model = self._form_model(definitions)
        try:
            checked = model.model_validate(values)
        except pydantic.ValidationError as exc:
            failed = validation_failed(exc)
            problems = [
                ValidationFailed(f"{prefix}.{e.field}", e.rule, **_params(e)) for e in failed.errors
            ]
            first = problems[0]
            raise ValidationFailed(
                first.field, first.rule, errors=problems, **_params(first)
            ) from None
        dumped = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {k: v for k, v in dumped.items() if k in values or v is not None}

    def field_values(self, user_id: uuid.UUID | str, form: str = "registration") -> dict[str, Any]:
        """A member's stored answers to ``form`` (the person, the system or ``members.view``)."""
        key = _uuid(user_id, "User")
        if not self._visible(key):
            raise PermissionDenied("members.view")
        found = self.tx.connection.scalar(
            sa.select(FieldValues.values).where(
                FieldValues.org_id == self.tx.org_id,
                FieldValues.account_id == key,
                FieldValues.form == form,
            )
        )
        return dict(found or {})

    def save_field_values(
        self,
        values: dict[str, Any],
        *,
        user_id: uuid.UUID | str | None = None,
        form: str = "registration",
    ) -> dict[str, Any]:
        """Validate and store the person's answers to ``form`` (the person or the system)."""
        key = self._self_or_system(user_id)
        if not self._is_member(key):
            raise NotFound("User", key)
        cleaned = self.validate_fields(form, values)
        self._store_fields(key, form, cleaned)
        self.tx.audit("fields.saved", "account", key, f"answers to {form} saved")
        return cleaned

    # --- consent -----------------------------------------------------------------------------

    def publish_consent(
        self, data: ConsentDocumentIn | dict[str, Any] | None = None, /, **kw: Any
    ) -> ConsentDocumentRead:
        """Publish the next version of the consent document for a purpose (``registration.manage``)."""
        tx = self.tx
        tx.require("registration.manage")
        spec = coerce(ConsentDocumentIn, data, kw)
        latest = tx.connection.scalar(
            sa.select(sa.func.max(ConsentDocument.version)).where(
                ConsentDocument.org_id == tx.org_id, ConsentDocument.purpose == spec.purpose
            )
        )
        version = int(latest or 0) + 1
        doc_id, now = new_id(), utcnow()
        with tx.translate_integrity(Conflict("Another version was published at the same time.")):
            tx.connection.execute(
                sa.insert(ConsentDocument).values(
                    id=doc_id,
                    org_id=tx.org_id,
                    version=version,
                    created_at=now,
                    **spec.model_dump(),
                )
            )
        tx.audit(
            "consent.published",
            "consent_document",
            doc_id,
            f"{spec.purpose} version {version} published",
        )
        return ConsentDocumentRead(id=doc_id, version=version, created_at=now, **spec.model_dump())

    def consent_documents(self) -> list[ConsentDocumentRead]:
        """The current (newest) version of each purpose's document."""
        return list(self._current_documents().values())

    def give_consent(
        self,
        purpose: str,
        *,
        user_id: uuid.UUID | str | None = None,
        method: str = "web",
        guardian: GuardianIn | dict[str, Any] | None = None,
    ) -> ConsentRead:
        """Record the person's agreement to the current version of ``purpose``'s document."""
        key = self._self_or_system(user_id)
        if not self._is_member(key):
            raise NotFound("User", key)
        docs = self._current_documents()
        if purpose not in docs:
            raise ValidationFailed("purpose", "unknown_consent", purpose=purpose)
        g = coerce(GuardianIn, guardian, {}) if guardian is not None else None
        method = _boundary("method", no_control_characters, method)[:63] or "web"
        self._record_consents(key, [docs[purpose]], method, g, utcnow())
        return [c for c in self.consents(key) if c.purpose == purpose][-1]

    def withdraw_consent(self, purpose: str, *, user_id: uuid.UUID | str | None = None) -> int:
        """Record withdrawal of every active consent to ``purpose``; returns how many."""
        tx = self.tx
        key = self._self_or_system(user_id)
        done = tx.connection.execute(
            sa.update(Consent)
            .where(
                Consent.org_id == tx.org_id,
                Consent.account_id == key,
                Consent.purpose == purpose,
                Consent.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=utcnow())
        )
        count = _changed(done)
        if count:
            tx.audit("consent.withdrawn", "account", key, f"consent to {purpose} withdrawn")
        return count

    def consents(self, user_id: uuid.UUID | str) -> list[ConsentRead]:
        """A person's consent records here, oldest first (the person, system or ``members.view``)."""
        key = _uuid(user_id, "User")
        if not self._visible(key):
            raise PermissionDenied("members.view")
        rows = self.tx.connection.execute(
            sa.select(Consent.__table__)
            .where(Consent.org_id == self.tx.org_id, Consent.account_id == key)
            .order_by(Consent.accepted_at, Consent.id)
        )
        return [ConsentRead.model_validate(r) for r in rows]

    # --- personal data -------------------------------------------------------------------------

    def export_personal_data(self, user_id: uuid.UUID | str) -> dict[str, Any]:
        """Everything the kit holds about a person, as JSON-ready data.

        The person themselves and the system actor get every organisation the person belongs
        to; a holder of ``members.export`` gets the account and this organisation. Each
        module and plugin adds its section through the ``PersonalData`` it registered with
        ``ngo_kit_register_personal_data`` (registration's own is ``registration``).
        """
        tx = self.tx
        key = _uuid(user_id, "User")
        everywhere = tx.is_system or tx.actor_id == key
        if not everywhere:
            tx.require("members.export")
        if not self._is_member(key):
            raise NotFound("User", user_id)
        row = self._account(key)
        sessions = tx.connection.execute(
            sa.select(
                SignInSession.created_at,
                SignInSession.expires_at,
                SignInSession.revoked_at,
                SignInSession.last_used_at,
            )
            .where(SignInSession.account_id == key)
            .order_by(SignInSession.created_at)
        )
        result: dict[str, Any] = {
            "account": {
                "id": str(row.id),
                "email": row.email,
                "phone": row.phone,
                "display_name": row.display_name,
                "birth_date": row.birth_date.isoformat() if row.birth_date else None,
                "status": row.status,
                "created_at": _iso(row.created_at),
                "email_verified_at": _iso(row.email_verified_at),
                "phone_verified_at": _iso(row.phone_verified_at),
                "has_password": row.password_hash is not None,
            },
            "sessions": [
                {
                    "created_at": _iso(c),
                    "expires_at": _iso(e),
                    "revoked_at": _iso(r),
                    "last_used_at": _iso(u),
                }
                for c, e, r, u in sessions
            ],
            "organisations": {},
        }
        orgs = self._orgs_of(key) if everywhere else [tx.require_org()]
        with self._each_org(orgs) as visit:
            for org in visit():
                section: dict[str, Any] = {}
                with tx.elevated():  # this call decided who may ask, for every module's part
                    for part in personal_data_registry(tx.kit):
                        data = part.export(tx, key)
                        if data is not None:
                            section[part.name] = data
                result["organisations"][org.slug] = section
        if tx.org is not None:
            tx.audit("user.exported", "account", key, "personal data exported")
        return result

    def erase(self, user_id: uuid.UUID | str) -> None:
        """Erase (pseudonymise) a person: personal fields removed, ids kept.

        The person themselves or the system actor may erase; a holder of ``members.erase`` may
        when the person belongs to no other organisation (``Conflict`` otherwise). Email,
        phone, name, birth date, password, sessions, codes, custom-field answers, guardian
        names, join-request messages, invitations sent to the person and delivered messages'
        contents are removed; ledgers and the audit chain keep the bare id and stay whole.
        In each organisation the person belongs to, every registered ``PersonalData.erase``
        runs (``ngo_kit_register_personal_data``), then ``ngo_kit_user_erased``.
        """
        tx = self.tx
        key = _uuid(user_id, "User")
        if not (tx.is_system or tx.actor_id == key):
            tx.require("members.erase")
            if not self._is_member(key):
                raise NotFound("User", user_id)
            if any(o.id != tx.org_id for o in self._orgs_of(key)):
                raise Conflict(
                    "The person belongs to other organisations too; remove their membership "
                    "here, or let them (or the system) erase the account."
                )
        row = self._account(key)
        if row.status == "erased":
            return
        now = utcnow()
        identifiers = [i for i in (row.email, row.phone) if i]
        session = tx.connection
        session.execute(
            sa.update(Account)
            .where(Account.id == key)
            .values(
                email=None,
                phone=None,
                display_name=ERASED_NAME,
                birth_date=None,
                password_hash=None,
                email_verified_at=None,
                phone_verified_at=None,
                status="erased",
                updated_at=now,
                erased_at=now,
            )
        )
        session.execute(sa.delete(SignInSession).where(SignInSession.account_id == key))
        session.execute(sa.delete(OneTimeCode).where(OneTimeCode.account_id == key))
        self._erase_answers(key)
        tx.flush_messages()  # messages this unit of work sent are in the outbox, to be erased too
        if identifiers:
            session.execute(
                sa.update(Invitation)
                .where(sa.or_(Invitation.email.in_(identifiers), Invitation.phone.in_(identifiers)))
                .values(email=None, phone=None)
            )
            session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.recipient.in_(identifiers))
                .values(recipient="erased", subject="", body="", data={}, last_error=None)
            )
        # Messages about the account sent elsewhere (a new address, say): found by one scan of
        # the outbox. Their addresses are the person's too, and so are the change requests'
        # throttle counts kept under them.
        about = session.execute(
            sa.select(OutboxRow.id, OutboxRow.recipient).where(
                sa.cast(OutboxRow.data, sa.Text).like(f"%{key}%")
            )
        ).all()
        elsewhere = {r for _, r in about if r not in identifiers and r != "erased"}
        session.execute(  # throttle counts keyed by the person's identifiers (digests)
            sa.delete(Throttle).where(
                Throttle.key.in_(_throttle_keys(row, [*identifiers, *sorted(elsewhere)]))
            )
        )
        if about:
            session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.id.in_([i for i, _ in about]))
                .values(recipient="erased", subject="", body="", data={}, last_error=None)
            )
        with self._each_org(self._orgs_of(key)) as visit:
            for _org in visit():
                with tx.elevated():  # this call decided the erasure and who may ask for it
                    for part in personal_data_registry(tx.kit):
                        part.erase(tx, key)
                tx.audit("user.erased", "account", key, "personal data erased")
                tx.emit("ngo_kit_user_erased", user_id=key)

    # --- internals: accounts --------------------------------------------------------------------

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

    def _insert_account(self, join: bool, **values: Any) -> tuple[bool, bool]:
        """``(inserted, joined)``: insert the account unless its email or phone is taken.

        With ``join``, on PostgreSQL, the ``member`` membership is written by the same
        statement (``joined``: one round trip for both), unless a plugin other than this module
        implements ``ngo_kit_refuse_member``: it must be asked with the account written and the
        membership not. Elsewhere, or when it was not written, ``_add_member`` writes it.
        """
        tx = self.tx
        together = join and tx.connection.dialect.name == "postgresql" and _only_we_refuse(tx)
        if not together:
            return SQL(tx, "insert_account").changed(tx, **values) == 1, False
        member = SQL(tx, "insert_account_and_join").first(
            tx, **values, mid=new_id(), o=tx.org_id, role="member", now=values["created_at"]
        )
        if member is not None:
            return True, True
        return SQL(tx, "account").first(tx, id=values["id"]) is not None, False

    def _may_join_existing(self, existing: Account, password: str | None) -> None:
        tx = self.tx
        if existing.status in ("suspended", "erased"):
            raise AlreadyExists("Account", existing.email or existing.phone or existing.id)
        if tx.is_system or tx.actor_id == existing.id:
            return
        if password is not None and self.passwords.verify(password, existing.password_hash)[0]:
            return
        raise AlreadyExists("Account", existing.email or existing.phone or existing.id)

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

    def _mask(self, user: UserRead) -> UserRead:
        if self._visible(user.id):
            return user
        return user.model_copy(update={"email": None, "phone": None, "birth_date": None})

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

    def _signed_in(self) -> uuid.UUID:
        key = self.tx.actor_id
        if key is None:
            raise PermissionDenied("registration.self")
        self._account(key)
        return key

    def _phone(self, value: str) -> str:
        org = self.tx.org
        region = org.settings.get("phone_region") if org is not None else None
        return _boundary("phone", lambda v: normalise_phone(v, region), value)

    def _mark_verified(self, key: uuid.UUID, channel: str, *, already: bool = False) -> UserRead:
        tx = self.tx
        now = utcnow()
        column = "email_verified_at" if channel == "email" else "phone_verified_at"
        values: dict[str, Any] = {"updated_at": now}
        if not already:
            values[column] = now
        tx.connection.execute(sa.update(Account).where(Account.id == key).values(**values))
        tx.connection.execute(
            sa.update(Account)
            .where(Account.id == key, Account.status == "pending")
            .values(status="active")
        )
        if not already:
            tx.audit("user.verified", "account", key, f"{channel} verified")
        user = self._read(key)
        tx.emit("ngo_kit_user_verified", user=user, channel=channel)
        return user

    def _send_verifications(self, user: UserRead, *, deferred: bool = False) -> None:
        """A new account's verification link and code (``deferred``: left to the worker, as
        the notice a taken address gets instead)."""
        if user.email is not None:
            self._send_email_link(user, deferred=deferred)
        if user.phone is not None:
            self._send_phone_code(user.id, user.phone, deferred=deferred)

    def _link(self, kind: str, token: str) -> str:
        """The app's link for ``token`` (``link_templates``), or the bare token."""
        org = self.tx.org
        return self.settings.link(kind, token, org.slug if org is not None else None)

    def _send_email_link(self, user: UserRead, *, deferred: bool = False) -> None:
        assert user.email is not None
        token = tokens_for(self.tx.kit).sign(
            PURPOSE_VERIFY_EMAIL, {"a": str(user.id), "e": user.email}
        )
        self._send(
            "email",
            user.email,
            "Confirm your email address",
            f"Follow this link to confirm your address: {self._link('verify_email', token)}",
            {"purpose": PURPOSE_VERIFY_EMAIL, "token": token},
            about=user.id,
            deferred=deferred,
        )

    def _send_phone_code(self, key: uuid.UUID, phone: str, *, deferred: bool = False) -> None:
        code = self._issue_code(key, CODE_VERIFY_PHONE, phone)
        self._send(
            "sms",
            phone,
            "Verification code",
            f"Your verification code is {code}. It is valid for "
            f"{self.settings.code_minutes} minutes.",
            {"purpose": CODE_VERIFY_PHONE, "code": code},
            about=key,
            deferred=deferred,
        )

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

    def _notify(self, row: Account, subject: str, body: str) -> None:
        if row.email:
            self._send("email", row.email, subject, body, {"purpose": "notice"}, about=row.id)
        elif row.phone:
            self._send("sms", row.phone, subject, body, {"purpose": "notice"}, about=row.id)

    # --- internals: sessions, throttles, codes -------------------------------------------------

    def _open_session(self, user: UserRead, now: dt.datetime) -> SignIn:
        token = secrets.token_urlsafe(32)
        expires = now + dt.timedelta(days=self.settings.session_days)
        SQL(self.tx, "open_session").changed(
            self.tx,
            id=new_id(),
            account_id=user.id,
            token_hash=_digest(token),
            created_at=now,
            expires_at=expires,
        )
        return SignIn(token=token, user=user, expires_at=expires)

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

    def _verify_ahead(
        self,
        keys: list[str],
        email: str | None,
        phone: str | None,
        now: dt.datetime,
        password: str | None,
    ) -> tuple[str | None, tuple[bool, str | None]] | None:
        """On SQLite, the password verified before the sign-in takes the write lock:
        ``(stored hash, verify's answer)``, which ``authenticate`` reuses if it reads the same
        hash under the lock. ``None`` elsewhere, for a code, or for a throttled key (refused
        under the lock without a verify)."""
        if password is None:
            return None
        with self.tx.read_ahead() as reading:
            if not reading:
                return None
            wait, _counted, row = self._sign_in_lookup(keys, email, phone, now)
        if wait is not None:
            return None
        stored = row.password_hash if row is not None else None
        return stored, self.passwords.verify(password, stored)

    def _sign_in_lookup(
        self, keys: list[str], email: str | None, phone: str | None, now: dt.datetime
    ) -> tuple[int | None, bool, Any]:
        """``(wait, counted, account)`` in one statement: the seconds until the keys' locks end
        (``None``: none is locked), whether the identifier key has failures on record, and the
        account with this email or phone, or with both when both are given (``None``: no such
        account, which answers as a wrong password does)."""
        tx = self.tx
        values = {"k": keys[0], "c": keys[-1], "e": email, "p": phone}
        name = "sign_in_by_phone" if email is None else "sign_in_by_email"
        if email is not None and phone is not None:
            name = "sign_in_by_both"
        row = SQL(tx, name).first(tx, **values)
        assert row is not None  # the lookup has a row even for an unknown identifier
        until, counted = row["locked_until"], bool(row["counted"])
        wait = _seconds(until - now) if until is not None and until > now else None
        return wait, counted, Row(row) if row["id"] is not None else None

    def _record_failure(self, keys: list[str], now: dt.datetime) -> None:
        """Count a failure in this transaction, and again on its own if this one rolls back."""
        limits = {
            k: self.settings.account_failures
            if k.startswith(FAILURES)
            else self.settings.client_failures
            for k in keys
        }
        window = dt.timedelta(seconds=self.settings.throttle_window_seconds)
        lock = dt.timedelta(seconds=self.settings.lockout_seconds)
        statements = {name: SQL(self.tx, name) for name in _FAILURE_STATEMENTS}

        def write(conn: sa.Connection) -> None:
            for key, limit in limits.items():
                _count_failure(statements, conn, key, limit, now, window, lock)

        if self.tx._session is not None:
            self.tx._session.flush()
        write(self.tx.connection)
        engine = self.tx.kit.engine

        def after_rollback() -> None:
            with engine.begin() as conn:
                write(conn)

        self.tx.on_rollback(after_rollback)

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

    def _code_matches(self, key: uuid.UUID, purpose: str, code: str) -> bool:
        """True, and the code used up, when ``code`` is the live one; any failure is False."""
        try:
            self._use_code(key, purpose, code)
        except (TokenInvalid, TooManyAttempts):
            return False
        return True

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

    # --- internals: membership ------------------------------------------------------------------

    def _add_member(self, key: uuid.UUID, role: str, *, added: bool = False) -> None:
        """Make ``key`` a member with ``role`` and fire ``ngo_kit_member_joined``.

        Core's ``tenancy.add_member`` writes the membership, elevated as the module's own flows
        always ran (it asks ``ngo_kit_refuse_member`` and names why nothing was added). With
        ``added`` the sign-up's statement wrote the row with the account already; only this
        module's hook, which lets elevated calls pass, could have refused it (``_insert_account``),
        so what is left is core's bookkeeping for a new member.
        """
        tx = self.tx
        if added:
            tx.forget_permissions()
            tx.audit("member.added", "member", key, f"member added as {role}", data={"role": role})
        else:
            with tx.elevated():
                tx.tenancy.add_member(key, role)
        tx.emit("ngo_kit_member_joined", user_id=key, role=role)

    def _end_membership(self, key: uuid.UUID) -> None:
        tx = self.tx
        if not self._is_member(key):
            raise NotFound("Member", key)
        with tx.elevated():
            tx.tenancy.remove_member(key)
        tx.emit("ngo_kit_member_left", user_id=key)

    def _role_exists(self, role: str) -> None:
        found = self.tx.connection.scalar(
            sa.select(Role.id).where(Role.org_id == self.tx.org_id, Role.name == role)
        )
        if found is None:
            raise NotFound("Role", role)

    def _invitation_id(self, token: str) -> Any:
        """The invitation id a token carries, once its signature, age and organisation check
        out (no database read); ``TokenInvalid`` subclasses otherwise."""
        tx = self.tx
        data = tokens_for(tx.kit).load(PURPOSE_INVITATION, token, max_age=dt.timedelta(days=90))
        if str(_get(data, "o")) != str(tx.org_id):
            raise TokenInvalid()
        return _get(data, "i")

    def _open_invitation(self, invitation_id: Any) -> Invitation:
        """The pending, unexpired invitation ``invitation_id`` (from ``_invitation_id``)."""
        tx = self.tx
        row: Invitation = tx.get_owned(Invitation, invitation_id, "Invitation")
        if row.status == "accepted":
            raise TokenUsed()
        if row.status != "pending":
            raise TokenInvalid()
        if row.expires_at <= utcnow():
            raise TokenExpired()
        return row

    def _use_invitation(self, invitation: Invitation, key: uuid.UUID) -> None:
        tx = self.tx
        done = tx.connection.execute(
            sa.update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.status == "pending")
            .values(status="accepted", accepted_by=key, decided_at=utcnow())
        )
        if _changed(done) != 1:
            raise TokenUsed()
        tx.audit("member.invitation_accepted", "invitation", invitation.id, "invitation accepted")

    def _file_join_request(self, key: uuid.UUID, message: str | None) -> JoinRequestRead:
        tx = self.tx
        pending = tx.connection.scalar(
            sa.select(JoinRequest.id).where(
                JoinRequest.org_id == tx.org_id,
                JoinRequest.account_id == key,
                JoinRequest.status == "pending",
            )
        )
        if pending is not None:
            raise AlreadyExists("JoinRequest", pending)
        req_id, now = new_id(), utcnow()
        tx.connection.execute(
            sa.insert(JoinRequest).values(
                id=req_id,
                org_id=tx.org_id,
                account_id=key,
                message=message,
                status="pending",
                created_at=now,
            )
        )
        tx.audit("member.join_requested", "join_request", req_id, "asked to join")
        return JoinRequestRead(
            id=req_id, account_id=key, message=message, status="pending", created_at=now
        )

    def _decide(self, request_id: uuid.UUID | str, status: str) -> JoinRequest:
        tx = self.tx
        row: JoinRequest = tx.get_owned(JoinRequest, request_id, "JoinRequest")
        done = tx.connection.execute(
            sa.update(JoinRequest)
            .where(JoinRequest.id == row.id, JoinRequest.status == "pending")
            .values(status=status, decided_by=_actor(tx), decided_at=utcnow())
        )
        if _changed(done) != 1:
            raise Conflict("The join request was decided already.")
        tx.audit(f"member.join_{status}", "join_request", row.id, f"join request {status}")
        return row

    def _orgs_of(self, key: uuid.UUID) -> list[OrgRead]:
        rows = self.tx.connection.execute(
            sa.select(Organisation.__table__)
            .join(Membership, Membership.org_id == Organisation.id)
            .where(Membership.actor_id == key)
            .order_by(Organisation.slug)
        )
        return [OrgRead.model_validate(r) for r in rows]

    @contextmanager
    def _each_org(self, orgs: list[OrgRead]) -> Iterator[Callable[[], Iterator[OrgRead]]]:
        """Visit organisations with ``tx`` bound to each; the original binding is restored."""
        tx = self.tx
        original = tx.org

        def visit() -> Iterator[OrgRead]:
            for org in orgs:
                tx.bind_org(org)
                yield org

        try:
            yield visit
        finally:
            if original is not None:
                tx.bind_org(original)
            else:
                tx.org = None
                tx.forget_permissions()

    def _erase_answers(self, key: uuid.UUID) -> None:
        """Remove the person's custom-field answers, guardian names and join-request messages,
        in every organisation (those the person has left too); repeating it changes nothing."""
        connection = self.tx.connection
        connection.execute(sa.delete(FieldValues).where(FieldValues.account_id == key))
        connection.execute(
            sa.update(Consent)
            .where(Consent.account_id == key)
            .values(guardian_name=None, guardian_relationship=None)
        )
        connection.execute(
            sa.update(JoinRequest).where(JoinRequest.account_id == key).values(message=None)
        )

    def _export_here(self, key: uuid.UUID) -> dict[str, Any]:
        tx = self.tx
        member = tx.tenancy.member(key)
        values = {
            form: vals
            for form, vals in tx.connection.execute(
                sa.select(FieldValues.form, FieldValues.values).where(
                    FieldValues.org_id == tx.org_id, FieldValues.account_id == key
                )
            )
        }
        consents = tx.connection.execute(
            sa.select(Consent.__table__).where(
                Consent.org_id == tx.org_id, Consent.account_id == key
            )
        )
        requests = tx.connection.execute(
            sa.select(JoinRequest.__table__).where(
                JoinRequest.org_id == tx.org_id, JoinRequest.account_id == key
            )
        )
        return {
            "membership": {"role": member.role, "joined_at": _iso(member.joined_at)},
            "fields": values,
            "consents": [
                {
                    "purpose": c.purpose,
                    "version": c.version,
                    "given_by": c.given_by,
                    "guardian_name": c.guardian_name,
                    "guardian_relationship": c.guardian_relationship,
                    "method": c.method,
                    "accepted_at": _iso(c.accepted_at),
                    "withdrawn_at": _iso(c.withdrawn_at),
                }
                for c in consents
            ],
            "join_requests": [
                {"message": r.message, "status": r.status, "created_at": _iso(r.created_at)}
                for r in requests
            ],
        }

    # --- internals: fields and consent ---------------------------------------------------------

    def _plugin_fields(self, form: str) -> list[FieldRead]:
        return [f for f in _plugin_field_registry(self.tx.kit) if f.form == form]

    def _form_model(self, definitions: list[FieldRead]) -> type[pydantic.BaseModel]:
        specs: dict[str, Any] = {}
        for i, f in enumerate(definitions):
            annotation = _field_type(f, self.tx)
            default = ... if f.required else None
            specs[f"f{i}"] = (
                annotation if f.required else annotation | None,
                Field(default=default, alias=f.name),
            )
        config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=False)
        return pydantic.create_model("CustomFields", __config__=config, **specs)

    def _store_fields(self, key: uuid.UUID, form: str, values: dict[str, Any]) -> None:
        tx = self.tx
        now = utcnow()
        done = tx.connection.execute(
            sa.update(FieldValues)
            .where(
                FieldValues.org_id == tx.org_id,
                FieldValues.account_id == key,
                FieldValues.form == form,
            )
            .values(values=values, updated_at=now)
        )
        if _changed(done) == 0:
            tx.connection.execute(
                sa.insert(FieldValues).values(
                    id=new_id(),
                    org_id=tx.org_id,
                    account_id=key,
                    form=form,
                    values=values,
                    updated_at=now,
                )
            )

    def _current_documents(self) -> dict[str, ConsentDocumentRead]:
        return self._documents_from(SQL(self.tx, "documents").all(self.tx, o=self.tx.org_id))

    @staticmethod
    def _documents_from(rows: list[dict[str, Any]]) -> dict[str, ConsentDocumentRead]:
        """The current document of each purpose, from rows ordered by purpose and version."""
        latest = {r["purpose"]: r for r in rows}  # ordered by version: the newest wins
        return {p: ConsentDocumentRead.model_validate(r) for p, r in latest.items()}

    def _consent_plan(
        self,
        purposes: list[str],
        birth_date: dt.date | None,
        guardian: GuardianIn | None,
        docs: dict[str, ConsentDocumentRead],
    ) -> list[ConsentDocumentRead]:
        for purpose in purposes:
            if purpose not in docs:
                raise ValidationFailed("consents", "unknown_consent", purpose=purpose)
        for purpose, doc in docs.items():
            if doc.required and purpose not in purposes:
                raise ValidationFailed("consents", "consent_required", purpose=purpose)
        if (
            birth_date is not None
            and _age(birth_date) < self.settings.guardian_age
            and guardian is None
        ):
            raise ValidationFailed("guardian", "guardian_required", age=self.settings.guardian_age)
        return [docs[p] for p in dict.fromkeys(purposes)]

    def _record_consents(
        self,
        key: uuid.UUID,
        documents: list[ConsentDocumentRead],
        method: str,
        guardian: GuardianIn | None,
        now: dt.datetime,
        *,
        audit: bool = True,
    ) -> None:
        if not documents:
            return
        rows = []
        for doc in documents:
            base = {
                "org_id": self.tx.org_id,
                "account_id": key,
                "document_id": doc.id,
                "purpose": doc.purpose,
                "version": doc.version,
                "method": method,
                "accepted_at": now,
            }
            rows.append(
                {
                    **base,
                    "id": new_id(),
                    "given_by": "self",
                    "guardian_name": None,
                    "guardian_relationship": None,
                }
            )
            if guardian is not None:
                rows.append(
                    {
                        **base,
                        "id": new_id(),
                        "given_by": "guardian",
                        "guardian_name": guardian.name,
                        "guardian_relationship": guardian.relationship,
                    }
                )
        self.tx.connection.execute(sa.insert(Consent), rows)
        if not audit:
            return
        self.tx.audit(
            "consent.given",
            "account",
            key,
            "consent recorded",
            data={
                "documents": [f"{d.purpose}@{d.version}" for d in documents],
                "guardian": guardian is not None,
                "method": method,
            },
        )


# --- module-level helpers -------------------------------------------------------------------


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


def _invitation(row: Any, **update: Any) -> InvitationRead:
    read = InvitationRead(
        id=row.id,
        email=row.email,
        phone=row.phone,
        role=row.role,
        status=row.status,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )
    return read.model_copy(update=update) if update else read


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


def _same_hash(current: str | None, fingerprint: str) -> sa.ColumnElement[bool]:
    """A guard that the stored hash is still the one the token was made for."""
    if _fingerprint(current) != fingerprint:
        return sa.false()
    if current is None:
        return Account.password_hash.is_(None)
    return Account.password_hash == current


def _actor(tx: Context) -> str:
    from ngo_kit.audit import actor_label

    return actor_label(tx.actor)


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _age(birth: dt.date, today: dt.date | None = None) -> int:
    today = today or dt.date.today()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _params(error: ValidationFailed) -> dict[str, Any]:
    return {k: v for k, v in error.params.items() if k not in ("field", "rule", "reason")}


def _boundary(field: str, check: Callable[[str], str], value: str) -> str:
    """Run a validator outside a model, raising ``ValidationFailed`` naming ``field``."""
    try:
        return check(value)
    except PydanticCustomError as exc:
        raise ValidationFailed(field, exc.type) from None


_FAILURE_STATEMENTS = ("failure_bump", "failure_restart", "throttle_open", "failure_lock")


def _count_failure(
    sql: dict[str, Statement],
    conn: sa.Connection,
    key: str,
    limit: int,
    now: dt.datetime,
    window: dt.timedelta,
    lock: dt.timedelta,
) -> None:
    """Add one failure to ``key``'s window (starting a new window when the old one ended)."""
    since = now - window
    counted = sql["failure_bump"].changed_on(conn, k=key, since=since)
    if not counted:  # the window ended: start a new one
        counted = sql["failure_restart"].changed_on(conn, k=key, now=now)
    if not counted:  # a new key (or one a concurrent failure is creating): open it, then count
        sql["throttle_open"].changed_on(conn, k=key, now=now)
        sql["failure_bump"].changed_on(conn, k=key, since=since)
    sql["failure_lock"].changed_on(conn, k=key, limit=limit, until=now + lock)


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


def _throttle_keys(row: Any, identifiers: list[str]) -> list[str]:
    """Every throttle key that names this account (``row``) or one of its addresses or numbers."""
    key = row.id
    subjects = [kind + i for i in identifiers for kind in SEND_SUBJECTS]
    return [
        row.failure_key,
        *(FAILURES + _digest(i) for i in identifiers),
        *(SENDS + _digest(x) for x in [f"{ACCOUNT_SENDS}{key}", *subjects]),
    ]


def _only_we_refuse(tx: Context) -> bool:
    """True when this module's own ``ngo_kit_refuse_member`` is the only implementation (it
    lets the module's elevated flows pass, so asking it before a sign-up's join is moot)."""
    impls = tx.kit.pm.hook.ngo_kit_refuse_member.get_hookimpls()
    return all(impl.function.__module__ == __package__ for impl in impls)


def _seconds(delta: dt.timedelta) -> int:
    """Whole seconds, rounded up (a ``Retry-After`` of 0 would invite an instant retry)."""
    return max(1, math.ceil(delta.total_seconds()))


_FIELD_REGISTRIES: weakref.WeakKeyDictionary[Any, list[FieldRead]] = weakref.WeakKeyDictionary()
_PERSONAL_DATA: weakref.WeakKeyDictionary[Any, list[PersonalData]] = weakref.WeakKeyDictionary()

#: The tables registration answers for in a person's export and erasure: the account itself,
#: its sign-in state, and per organisation the membership, answers, consents and requests.
REGISTRATION_TABLES = (
    "registration_account",
    "registration_session",
    "registration_code",
    "registration_field_values",
    "registration_consent",
    "registration_join_request",
    "core_membership",
)


def personal_data_registry(kit: Any) -> list[PersonalData]:
    """What each module and plugin registered through ``ngo_kit_register_personal_data``,
    collected once per kit (a name registered twice is a ``ConfigurationError``)."""
    found = _PERSONAL_DATA.get(kit)
    if found is None:
        registrar: Registrar[PersonalData] = Registrar("personal data", PersonalData, _name)
        found = _PERSONAL_DATA[kit] = collect(
            kit.pm, "ngo_kit_register_personal_data", registrar
        ).values()
    return found


def _name(part: PersonalData) -> str:
    return part.name


def export_registration_data(tx: Context, user_id: uuid.UUID) -> dict[str, Any]:
    """Registration's section of a person's export in ``tx``'s organisation: membership,
    custom-field answers, consents and join requests (the account is at the top level)."""
    service: RegistrationService = tx.registration
    return service._export_here(user_id)


def erase_registration_data(tx: Context, user_id: uuid.UUID) -> None:
    """Registration's part of an erasure beyond the account: answers, guardian names and
    join-request messages (account-wide)."""
    service: RegistrationService = tx.registration
    service._erase_answers(user_id)


REGISTRATION_DATA = PersonalData(
    "registration",
    REGISTRATION_TABLES,
    export=export_registration_data,
    erase=erase_registration_data,
)


def _plugin_field_registry(kit: Any) -> list[FieldRead]:
    """Fields registered through ``ngo_kit_register_fields``, collected once per kit."""
    found = _FIELD_REGISTRIES.get(kit)
    if found is not None:
        return found
    registrar: Registrar[FieldRead] = Registrar("field", FieldRead, lambda f: f"{f.form}.{f.name}")
    collect(kit.pm, "ngo_kit_register_fields", registrar)
    fields = []
    for reg in registrar:
        item = reg.item
        try:
            FieldIn(**item.model_dump(exclude={"source"}))
        except ValidationFailed as exc:
            raise ConfigurationError(
                "registration.E002",
                "plugin '{plugin}' registered an invalid field {name}: {error}",
                plugin=reg.plugin,
                name=item.name,
                error=exc.message_in("en"),
            ) from exc
        fields.append(item.model_copy(update={"source": reg.plugin}))
    _FIELD_REGISTRIES[kit] = fields
    return fields


def _check_limit(kind: str, limit: str, value: str) -> None:
    if kind == "number":
        try:
            Decimal(value)
        except InvalidOperation:
            raise ValidationFailed(limit, "decimal_parsing") from None
    elif kind == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(limit, "date_parsing") from None
    else:
        raise ValidationFailed(limit, "invalid")


def _field_type(f: FieldRead, tx: Context) -> Any:
    """The pydantic type of one custom field, with its limits."""
    if f.kind in ("text", "long_text"):
        length = f.max_length or (200 if f.kind == "text" else 5000)
        checks = [AfterValidator(_one_line)] if f.kind == "text" else []
        return Annotated[str, Field(min_length=1 if f.required else 0, max_length=length), *checks]
    if f.kind == "number":
        return Annotated[
            Decimal,
            Field(
                allow_inf_nan=False,
                ge=Decimal(f.min_value) if f.min_value is not None else None,
                le=Decimal(f.max_value) if f.max_value is not None else None,
                max_digits=18,
                decimal_places=4,
            ),
        ]
    if f.kind == "date":
        return Annotated[
            dt.date,
            Field(
                ge=dt.date.fromisoformat(f.min_value) if f.min_value else None,
                le=dt.date.fromisoformat(f.max_value) if f.max_value else None,
            ),
        ]
    if f.kind == "choice":
        return Literal.__getitem__(tuple(f.choices))
    if f.kind == "multiple_choice":
        return Annotated[
            list[Literal.__getitem__(tuple(f.choices))],  # type: ignore[misc]
            Field(max_length=200),
            AfterValidator(lambda v: list(dict.fromkeys(v))),
        ]
    if f.kind == "phone":
        org = tx.org
        region = org.settings.get("phone_region") if org is not None else None
        return Annotated[
            str, Field(max_length=40), AfterValidator(lambda v: normalise_phone(v, region))
        ]
    if f.kind == "email":
        return Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
    return Annotated[bool, Field(strict=False)]


def _one_line(value: str) -> str:
    return no_control_characters(value)


def _new_sign_up(
    account_id: uuid.UUID, spec: RegisterIn, phone: str | None, now: dt.datetime
) -> UserRead:
    """A new sign-up's answer: the pending account as typed (also the shape of the answer
    that names no account, when an address is taken and the caller may not learn it)."""
    return UserRead(
        id=account_id,
        email=spec.email,
        phone=phone,
        display_name=spec.display_name,
        status="pending",
        created_at=now,
        birth_date=spec.birth_date,
    )
