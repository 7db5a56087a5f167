"""Certificates of service hours: issuing, reading, the PDF, public verification, revocation."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import NotFound, SelfActionRefused, TokenInvalid
from ngo_kit.modules.volunteer.base import HOURS_PLACES, VolunteerBase, _actor
from ngo_kit.modules.volunteer.models import Certificate, HoursEntry
from ngo_kit.modules.volunteer.schemas import CertificateCheck, CertificateRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Day, check
from ngo_kit.tenancy import Organisation, OrgRead
from ngo_kit.tokens import tokens_for

CERTIFICATE_PURPOSE = "volunteer.certificate"
_CERTIFICATE_FIELDS = ("id", "org_id", "user_id", "hours", "period_from", "period_to", "issued_at")


class Certificates(VolunteerBase):
    """Certificates of service hours."""

    @operation(
        "POST /certificates",
        permission="certificates.issue",
        own=True,
        status=201,
        custom=True,
        errors=(SelfActionRefused,),
    )
    def issue_certificate(
        self,
        user_id: uuid.UUID,
        *,
        period_from: dt.date | None = None,
        period_to: dt.date | None = None,
    ) -> CertificateRead:
        """Issue a certificate of service hours for a period (``certificates.issue``; a
        volunteer for themselves too when the organisation's ``self_service_certificates``
        setting is on).

        The hours are the ledger's net total for service dates in the period; the returned
        ``token`` and ``verify_url`` let a third party check it with ``verify_certificate``.
        Staff do not certify themselves (``SelfActionRefused``) unless the organisation allows
        self-action for ``certificates.issue`` or turned ``self_service_certificates`` on.
        """
        tx = self.tx
        period_from = check("period_from", Day | None, period_from)
        period_to = check("period_to", Day | None, period_to)
        if not (user_id == tx.actor_id and self.settings["self_service_certificates"]):
            tx.require_for("certificates.issue", user_id)
        self._service.profile_exists(user_id)
        stmt = sa.select(sa.func.coalesce(sa.func.sum(HoursEntry.hours), 0)).where(
            HoursEntry.org_id == tx.org_id, HoursEntry.user_id == user_id
        )
        if period_from is not None:
            stmt = stmt.where(HoursEntry.served_on >= period_from)
        if period_to is not None:
            stmt = stmt.where(HoursEntry.served_on <= period_to)
        hours = Decimal(str(tx.session.scalar(stmt) or 0)).quantize(HOURS_PLACES)
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "user_id": user_id,
            "hours": hours,
            "period_from": period_from,
            "period_to": period_to,
            "issued_at": utcnow(),
            "issued_by": _actor(tx),
        }
        tx.session.execute(sa.insert(Certificate).values(**values))
        tx.audit("volunteer.certificate_issued", "volunteer", user_id, f"certificate for {hours} h")
        return self._certificate_read(values)

    def _certificate_read(self, values: Mapping[str, Any]) -> CertificateRead:
        token = tokens_for(self.tx.kit).sign(
            CERTIFICATE_PURPOSE, {"c": str(values["id"]), "o": str(values["org_id"])}
        )
        base = str(self.settings["certificate_verify_url"])
        return CertificateRead(
            id=values["id"],
            user_id=values["user_id"],
            hours=Decimal(values["hours"]).quantize(HOURS_PLACES),
            period_from=values["period_from"],
            period_to=values["period_to"],
            issued_at=values["issued_at"],
            token=token,
            verify_url=f"{base}?token={token}",
        )

    @operation("GET /certificates/{certificate_id}", permission="certificates.issue", own=True)
    def certificate(self, certificate_id: uuid.UUID) -> CertificateRead:
        """A certificate issued by this organisation (the holder, or ``certificates.issue``)."""
        row = self.tx.get_owned(Certificate, certificate_id, "Certificate")
        if row.user_id != self.tx.actor_id:
            self.tx.require("certificates.issue")
        return self._certificate_read({c: getattr(row, c) for c in _CERTIFICATE_FIELDS})

    @operation("GET /profiles/{user_id}/certificates", permission="certificates.issue", own=True)
    def certificates(self, user_id: uuid.UUID | None = None) -> list[CertificateRead]:
        """A volunteer's certificates that are not revoked, newest first (their own, or
        anyone's with ``certificates.issue``)."""
        tx = self.tx
        user_id = self._for_self_or(user_id, "certificates.issue")
        rows = tx.session.scalars(
            sa.select(Certificate)
            .where(
                Certificate.org_id == tx.org_id,
                Certificate.user_id == user_id,
                Certificate.revoked_at.is_(None),
            )
            .order_by(Certificate.issued_at.desc(), Certificate.id)
        )
        return [
            self._certificate_read({c: getattr(row, c) for c in _CERTIFICATE_FIELDS})
            for row in rows
        ]

    @operation(
        "GET /certificates/{certificate_id}/pdf",
        permission="certificates.issue",
        own=True,
        custom=True,
    )
    def certificate_pdf(self, certificate_id: uuid.UUID) -> bytes:
        """The certificate as a PDF, in Chinese and English, with a QR code of the link."""
        from ngo_kit.modules.volunteer import files

        cert = self.certificate(certificate_id)
        person = self._person(cert.user_id)
        name = str(getattr(person, "display_name", "") or "")
        return files.certificate_pdf(cert, name=name, organisation=self.tx.require_org().name)

    @operation(
        not_http="served by the public GET /api/certificates/verify (web.py): the token "
        "names its organisation, so the check sits outside any organisation's mount",
        changes=False,
        public=True,
        errors=(TokenInvalid,),
    )
    def verify_certificate(self, token: str) -> CertificateCheck:
        """Check a certificate's token; needs no organisation or actor.

        Returns who, which organisation, how many hours, for which period and when it was
        issued. Raises ``TokenTampered`` (forged or altered), ``TokenWrongPurpose`` or
        ``NotFound`` ("Certificate", also when revoked).
        """
        data = tokens_for(self.tx.kit).load(CERTIFICATE_PURPOSE, token, max_age=None)
        try:
            cert_id, org_id = uuid.UUID(str(data["c"])), uuid.UUID(str(data["o"]))
        except (KeyError, TypeError, ValueError):
            raise TokenInvalid() from None
        session = self.tx.session
        row = session.execute(
            sa.select(Certificate, Organisation.name)
            .join(Organisation, Organisation.id == Certificate.org_id)
            .where(Certificate.id == cert_id, Certificate.org_id == org_id)
        ).first()
        if row is None or row[0].revoked_at is not None:
            raise NotFound("Certificate", cert_id)
        cert, org_name = row
        with self._in_org(cert.org_id):
            person = self._person(cert.user_id)
        return CertificateCheck(
            certificate_id=cert.id,
            user_id=cert.user_id,
            name=str(getattr(person, "display_name", "") or ""),
            organisation=org_name,
            hours=cert.hours,
            period_from=cert.period_from,
            period_to=cert.period_to,
            issued_at=cert.issued_at,
        )

    @contextmanager
    def _in_org(self, org_id: uuid.UUID) -> Iterator[None]:
        """Bind the ``tx`` to ``org_id`` for a block (verification runs without one)."""
        tx = self.tx
        before = tx.org
        if before is not None and before.id == org_id:
            yield
            return
        row = tx.session.get(Organisation, org_id)
        if row is None:
            raise NotFound("Organisation", org_id)
        tx.bind_org(OrgRead.model_validate(row))
        try:
            yield
        finally:
            if before is not None:
                tx.bind_org(before)
            else:
                tx.org = None
                tx.forget_permissions()

    @operation("POST /certificates/{certificate_id}/revoke", permission="certificates.issue")
    def revoke_certificate(self, certificate_id: uuid.UUID) -> None:
        """Withdraw a certificate (``certificates.issue``): verification then refuses it."""
        tx = self.tx
        tx.require("certificates.issue")
        row = tx.get_owned(Certificate, certificate_id, "Certificate")
        tx.session.execute(
            sa.update(Certificate).where(Certificate.id == row.id).values(revoked_at=utcnow())
        )
        tx.audit("volunteer.certificate_revoked", "certificate", row.id, "certificate revoked")
