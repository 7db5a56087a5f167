"""Personal-data rights and retention: consent documents and consents, a person's export and
erasure (PIPL / GDPR), and the purge of what no rule reads any more."""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from ngo_kit.operations import operation
from ngo_kit.outbox import OutboxRow
from ngo_kit.plugins import PersonalData, Registrar, collect
from ngo_kit.schemas import coerce, no_control_characters
from ngo_kit.tenancy import Membership, Organisation, OrgRead

from .base import (
    ACCOUNT_SENDS,
    ERASED_NAME,
    FAILURES,
    SEND_SUBJECTS,
    SENDS,
    SQL,
    RegistrationBase,
    _boundary,
    _changed,
    _digest,
    _uuid,
)
from .models import (
    Account,
    Consent,
    ConsentDocument,
    FieldValues,
    Invitation,
    JoinRequest,
    OneTimeCode,
    SignInSession,
    Throttle,
)
from .schemas import (
    ConsentDocumentIn,
    ConsentDocumentRead,
    ConsentRead,
    GuardianIn,
    PurgeResult,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context


class Privacy(RegistrationBase):
    """``tx.registration``'s consent, export, erasure and purge."""

    @operation(not_http="SYSTEM only: run it from a scheduler", changes=True, cli="purge")
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

    @operation(
        "POST /consent-documents", permission="registration.manage", status=201, errors=(Conflict,)
    )
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

    @operation("GET /consent-documents", public=True)
    def consent_documents(self) -> list[ConsentDocumentRead]:
        """The current (newest) version of each purpose's document."""
        return list(self._current_documents().values())

    @operation("POST /users/{user_id}/consents", own=True, status=201)
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

    @operation("POST /users/{user_id}/consents/{purpose}/withdraw", own=True)
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

    @operation("GET /users/{user_id}/consents", permission="members.view", own=True)
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

    @operation(
        "GET /users/{user_id}/personal-data", permission="members.export", own=True, cli="export"
    )
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

    @operation(
        "POST /users/{user_id}/erase",
        permission="members.erase",
        own=True,
        errors=(Conflict,),
        cli="erase",
    )
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


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _age(birth: dt.date, today: dt.date | None = None) -> int:
    today = today or dt.date.today()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _throttle_keys(row: Any, identifiers: list[str]) -> list[str]:
    """Every throttle key that names this account (``row``) or one of its addresses or numbers."""
    key = row.id
    subjects = [kind + i for i in identifiers for kind in SEND_SUBJECTS]
    return [
        row.failure_key,
        *(FAILURES + _digest(i) for i in identifiers),
        *(SENDS + _digest(x) for x in [f"{ACCOUNT_SENDS}{key}", *subjects]),
    ]


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
    service: Privacy = tx.registration
    return service._export_here(user_id)


def erase_registration_data(tx: Context, user_id: uuid.UUID) -> None:
    """Registration's part of an erasure beyond the account: answers, guardian names and
    join-request messages (account-wide)."""
    service: Privacy = tx.registration
    service._erase_answers(user_id)


REGISTRATION_DATA = PersonalData(
    "registration",
    REGISTRATION_TABLES,
    export=export_registration_data,
    erase=erase_registration_data,
)
