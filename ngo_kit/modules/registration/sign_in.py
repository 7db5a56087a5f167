"""Signing in: passwords and one-time codes, sessions, throttling of failures, and passwords
forgotten or changed."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    PermissionDenied,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    ValidationFailed,
)
from ngo_kit.operations import operation
from ngo_kit.outbox import OutboxMessage
from ngo_kit.schemas import coerce
from ngo_kit.statements import Row, Statement
from ngo_kit.tokens import tokens_for

from .base import (
    CLIENT_FAILURES,
    CODE_REQUEST,
    CODE_SIGN_IN,
    FAILURES,
    NO_ACCOUNT_CODE,
    NO_ACCOUNT_RESET,
    NOTICES,
    PURPOSE_RESET,
    RESET,
    SESSION_USE_STEP,
    SIGN_IN_CODE,
    SQL,
    RegistrationBase,
    _bilingual,
    _boundary,
    _changed,
    _digest,
    _fingerprint,
    _get,
    _seconds,
    _user,
    _uuid,
)
from .errors import (
    AccountSuspended,
    SignInFailed,
    TooManyAttempts,
    TooManyRequests,
    WrongPassword,
)
from .models import (
    Account,
    SignInSession,
)
from .passwords import normalise_password
from .schemas import (
    NewPasswordIn,
    SignIn,
    SignInIn,
    UserRead,
    normalise_email,
)


class SigningIn(RegistrationBase):
    """``tx.registration``'s sign-in: authentication, sessions, sign-in codes and passwords."""

    @operation(
        "POST /sign-in",
        public=True,
        custom=True,
        errors=(SignInFailed, TooManyAttempts, AccountSuspended),
    )
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

    @operation(
        not_http="the web layer's session_actor hook: a session token is never sent as a parameter",
        changes=True,
        errors=(TokenInvalid, TokenExpired),
    )
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

    @operation("POST /sign-out", status=204, custom=True)
    def sign_out(self, token: str) -> None:
        """Revoke one session (its holder signs out). Unknown tokens are ignored."""
        self.tx.connection.execute(
            sa.update(SignInSession)
            .where(
                SignInSession.token_hash == _digest(str(token)), SignInSession.revoked_at.is_(None)
            )
            .values(revoked_at=utcnow())
        )

    @operation("POST /users/{user_id}/sign-out-everywhere", own=True)
    def sign_out_everywhere(self, user_id: uuid.UUID | str | None = None) -> int:
        """Revoke every session of the actor (or, for the system actor, of ``user_id``)."""
        key = self._self_or_system(user_id)
        return self._revoke_sessions(key)

    @operation(
        "POST /sign-in/code", public=True, status=202, custom=True, errors=(TooManyRequests,)
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

    @operation(
        "POST /password-reset/request",
        public=True,
        status=202,
        custom=True,
        errors=(TooManyRequests,),
    )
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

    @operation(
        "POST /password-reset",
        public=True,
        custom=True,
        errors=(TokenInvalid, TokenExpired, TokenUsed),
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

    @operation(
        "POST /me/password", status=204, custom=True, errors=(WrongPassword, TooManyAttempts)
    )
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

    def _notify(self, row: Account, subject: str, body: str) -> None:
        if row.email:
            self._send("email", row.email, subject, body, {"purpose": "notice"}, about=row.id)
        elif row.phone:
            self._send("sms", row.phone, subject, body, {"purpose": "notice"}, about=row.id)

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

    def _code_matches(self, key: uuid.UUID, purpose: str, code: str) -> bool:
        """True, and the code used up, when ``code`` is the live one; any failure is False."""
        try:
            self._use_code(key, purpose, code)
        except (TokenInvalid, TooManyAttempts):
            return False
        return True


def _same_hash(current: str | None, fingerprint: str) -> sa.ColumnElement[bool]:
    """A guard that the stored hash is still the one the token was made for."""
    if _fingerprint(current) != fingerprint:
        return sa.false()
    if current is None:
        return Account.password_hash.is_(None)
    return Account.password_hash == current


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
