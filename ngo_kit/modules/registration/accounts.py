"""Accounts: sign-up, looking members' accounts up, suspension, verifying an email address or a
phone number, and changing them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    Conflict,
    LocalisedText,
    NotFound,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import coerce
from ngo_kit.statements import Row
from ngo_kit.tenancy import Membership
from ngo_kit.tokens import tokens_for

from .base import (
    ACCOUNT_SENDS,
    CHANGE,
    CHANGE_TAKEN,
    CODE_CHANGE_PHONE,
    CODE_VERIFY_PHONE,
    PURPOSE_CHANGE_EMAIL,
    PURPOSE_VERIFY_EMAIL,
    SQL,
    TRIED_TO_REGISTER,
    RegistrationBase,
    _boundary,
    _changed,
    _fingerprint,
    _get,
    _user,
    _uuid,
)
from .errors import (
    JoiningClosed,
    TooManyAttempts,
    TooManyRequests,
)
from .models import (
    Account,
)
from .schemas import (
    RegisterIn,
    UserRead,
    normalise_email,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context


class Accounts(RegistrationBase):
    """``tx.registration``'s accounts: sign-up, look-ups, suspension, verification and changes
    of address or number."""

    @operation(
        "POST /register",
        public=True,
        status=201,
        custom=True,
        errors=(AlreadyExists, JoiningClosed, TokenInvalid, TokenExpired, TokenUsed),
    )
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
        whole = self._service  # a sign-up also records answers, consents and the membership
        spec = coerce(RegisterIn, data, kw)
        org = tx.require_org()
        phone = self._phone(spec.phone) if spec.phone is not None else None
        joining = str(org.settings.get("joining", "open"))
        if not spec.invitation and joining == "invitation" and not tx.is_system:
            raise JoiningClosed(how=LocalisedText("by invitation only"))
        invited = whole._invitation_id(spec.invitation) if spec.invitation else None
        # Hashed before the first statement: on SQLite that statement takes the write lock, which
        # is then not held for the argon2id work (the hash is wasted only on a refusal below).
        password_hash = self.passwords.hash(spec.password) if spec.password else None
        invitation = whole._open_invitation(invited) if spec.invitation else None
        field_rows, document_rows = _split_sign_up_reads(
            SQL(tx, "sign_up_reads").all(tx, o=org.id, f="registration")
        )
        values = whole._validate_fields(
            whole._fields_from(field_rows, "registration"), spec.fields, "fields"
        )
        documents = whole._consent_plan(
            spec.consents, spec.birth_date, spec.guardian, whole._documents_from(document_rows)
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
            whole._use_invitation(invitation, account_id)
            whole._add_member(account_id, invitation.role)
        elif joining == "approval" and not tx.is_system:
            whole._file_join_request(account_id, None)
        else:
            whole._add_member(account_id, "member", added=joined)
        if values:
            whole._store_fields(account_id, "registration", values)
        whole._record_consents(
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

    @operation("GET /me", custom=True)
    def get_user(self, user_id: uuid.UUID | str) -> UserRead:
        """A member of ``tx``'s organisation; ``NotFound`` for anyone else.

        Contact details (email, phone, birth date) are shown to the person, the system actor
        and holders of ``members.view``; others get them as ``None``.
        """
        key = _uuid(user_id, "User")
        if not self._is_member(key):
            raise NotFound("User", user_id)
        return self._mask(self._read(key))

    @operation("GET /users")
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

    @operation(
        "POST /users/lookup", permission="members.view", changes=False, errors=(AlreadyExists,)
    )
    def find_user(self, *, email: str | None = None, phone: str | None = None) -> UserRead:
        """A member found by email or phone (``members.view``); ``NotFound`` otherwise."""
        self.tx.require("members.view")
        e = _boundary("email", normalise_email, email) if email else None
        p = self._phone(phone) if phone else None
        row = self._find_account(e, p)
        if row is None or not self._is_member(row.id):
            raise NotFound("User", email or phone or "")
        return _user(row)

    @operation(not_http="SYSTEM only: accounts span organisations", changes=True)
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

    @operation(
        not_http="SYSTEM only: accounts span organisations", changes=True, errors=(Conflict,)
    )
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

    @operation(
        "POST /me/email-verification",
        own=True,
        status=202,
        custom=True,
        errors=(Conflict, TooManyRequests),
    )
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

    @operation(
        "POST /verify-email",
        public=True,
        custom=True,
        errors=(TokenInvalid, TokenExpired, TokenUsed),
    )
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

    @operation(
        "POST /me/phone-code", own=True, status=202, custom=True, errors=(Conflict, TooManyRequests)
    )
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

    @operation(
        "POST /me/verify-phone",
        own=True,
        custom=True,
        errors=(TokenInvalid, TokenExpired, TokenUsed, TooManyAttempts),
    )
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

    @operation("POST /me/email-change", status=202, errors=(TooManyRequests,))
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

    @operation(
        "POST /email-change",
        public=True,
        errors=(TokenInvalid, TokenExpired, TokenUsed, AlreadyExists),
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

    @operation("POST /me/phone-change", status=202, errors=(TooManyRequests,))
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

    @operation(
        "POST /me/phone-change/confirm",
        errors=(TokenInvalid, TokenExpired, TokenUsed, TooManyAttempts, AlreadyExists),
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

    def _mask(self, user: UserRead) -> UserRead:
        if self._visible(user.id):
            return user
        return user.model_copy(update={"email": None, "phone": None, "birth_date": None})

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


def _only_we_refuse(tx: Context) -> bool:
    """True when this module's own ``ngo_kit_refuse_member`` is the only implementation (it
    lets the module's elevated flows pass, so asking it before a sign-up's join is moot)."""
    impls = tx.kit.pm.hook.ngo_kit_refuse_member.get_hookimpls()
    return all(impl.function.__module__ == __package__ for impl in impls)


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
