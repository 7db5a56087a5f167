"""Certificates of service hours: issuing, reading, the PDF, public verification, revocation,
their short numbers, their absolute verification link, and the organisation's logo and seal
printed on them."""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import NotFound, SelfActionRefused, TokenInvalid, ValidationFailed
from ngo_kit.modules.volunteer.base import HOURS_PLACES, VolunteerBase, _actor
from ngo_kit.modules.volunteer.certificate_pdf import CertificateImages
from ngo_kit.modules.volunteer.models import Certificate, CertificateImage, HoursEntry
from ngo_kit.modules.volunteer.schemas import (
    CertificateCheck,
    CertificateImageRead,
    CertificateRead,
    CertificateStatus,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Day, check
from ngo_kit.tenancy import Organisation, OrgRead
from ngo_kit.tokens import tokens_for

if TYPE_CHECKING:
    from ngo_kit.context import Context

CERTIFICATE_PURPOSE = "volunteer.certificate"
log = logging.getLogger("ngo_kit.volunteer")

#: Letters and digits nobody confuses when reading aloud or typing: no 0/O, 1/I/L, U.
NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
NUMBER_LENGTH = 10
#: The kinds of image a certificate carries.
IMAGE_KINDS = ("logo", "seal")
IMAGE_MAX_BYTES = 1_000_000
IMAGE_MIN_PIXELS = 32
IMAGE_MAX_PIXELS = 2000
_MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}


def new_number() -> str:
    """A random certificate number of ``NUMBER_LENGTH`` characters grouped ``XK7F-9M2Q-4T``."""
    raw = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_number(text: str) -> str:
    """A number as people type it (lower case, spaces, no dashes) in its printed form."""
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    if len(raw) != NUMBER_LENGTH or any(ch not in NUMBER_ALPHABET for ch in raw):
        raise ValidationFailed("number", "certificate_number", "is not a certificate number")
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def verify_link(base: str | None, path: str, token: str) -> str | None:
    """The absolute verification link for ``token``, or ``None`` when there is no public base.

    ``path`` is the organisation's ``certificate_verify_url``: a path joined to ``base``
    (``public_base_url``), or an absolute http(s) address used as it is. A relative link is
    never returned: printed on paper or in a QR code it leads nowhere.
    """
    if urlsplit(path).scheme in ("http", "https"):
        return f"{path}?token={token}"
    if not base:
        return None
    return f"{base.rstrip('/')}/{path.lstrip('/')}?token={token}"


def checked_image(field: str, data: bytes) -> tuple[str, int, int]:
    """The media type, width and height of a PNG or JPEG upload, judged by its content.

    Raises ``ValidationFailed`` naming ``field`` when it is too big, not a PNG or JPEG (whatever
    its file name says), damaged, or outside ``IMAGE_MIN_PIXELS``..``IMAGE_MAX_PIXELS``.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) > IMAGE_MAX_BYTES:
        raise ValidationFailed(
            field, "image_too_large", "must be at most {limit} KB", limit=IMAGE_MAX_BYTES // 1000
        )
    try:
        with Image.open(io.BytesIO(data)) as picture:
            kind, (width, height) = picture.format or "", picture.size
            if kind not in _MEDIA_TYPES:
                raise UnidentifiedImageError(kind)
            if not (
                min(width, height) >= IMAGE_MIN_PIXELS and max(width, height) <= IMAGE_MAX_PIXELS
            ):
                raise ValidationFailed(
                    field,
                    "image_dimensions",
                    "must be {low} to {high} pixels wide and high",
                    low=IMAGE_MIN_PIXELS,
                    high=IMAGE_MAX_PIXELS,
                )
            picture.load()  # a truncated or damaged file fails here, not in the PDF
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationFailed(field, "image_type", "must be a PNG or JPEG image") from None
    return _MEDIA_TYPES[kind], width, height


_CERTIFICATE_FIELDS = (
    "id",
    "number",
    "org_id",
    "user_id",
    "hours",
    "period_from",
    "period_to",
    "issued_at",
)


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
            "number": new_number(),
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
        return CertificateRead(
            id=values["id"],
            number=values["number"],
            user_id=values["user_id"],
            hours=Decimal(values["hours"]).quantize(HOURS_PLACES),
            period_from=values["period_from"],
            period_to=values["period_to"],
            issued_at=values["issued_at"],
            token=token,
            verify_url=self._verify_link(token),
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
        from ngo_kit.modules.volunteer.certificate_pdf import certificate_pdf

        cert = self.certificate(certificate_id)
        person = self._person(cert.user_id)
        name = str(getattr(person, "display_name", "") or "")
        warn_without_public_url(self.tx)
        org = self.tx.require_org().name
        return certificate_pdf(cert, name=name, organisation=org, images=self._images_for_pdf())

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
            number=cert.number,
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

    def _verify_link(self, token: str) -> str | None:
        base = self.tx.kit.settings.public_base_url
        return verify_link(base, str(self.settings["certificate_verify_url"]), token)

    # --- images ----------------------------------------------------------------------------

    @operation(
        not_http="takes the image file's bytes: relief_hub's staff page and Python callers "
        "upload it (an upload route is still to come)",
        changes=True,
        permission="certificates.issue",
    )
    def set_certificate_image(self, kind: str, data: bytes) -> CertificateImageRead:
        """Store the organisation's ``logo`` or ``seal`` for its certificates (``certificates.issue``).

        ``data`` is a PNG or JPEG file (``checked_image``); it replaces the one stored before.
        Raises ``ValidationFailed`` (field ``kind``, or the kind's name for a refused image).
        """
        tx = self.tx
        tx.require("certificates.issue")
        if kind not in IMAGE_KINDS:
            raise ValidationFailed("kind", "image_kind", "must be logo or seal")
        media_type, width, height = checked_image(kind, bytes(data))
        values = {
            "media_type": media_type,
            "width": width,
            "height": height,
            "data": bytes(data),
            "uploaded_at": utcnow(),
            "uploaded_by": _actor(tx),
        }
        done = tx.session.execute(
            sa.update(CertificateImage)
            .where(CertificateImage.org_id == tx.org_id, CertificateImage.kind == kind)
            .values(**values)
        )
        if not getattr(done, "rowcount", 0):  # no image of this kind yet
            tx.session.execute(
                sa.insert(CertificateImage).values(org_id=tx.org_id, kind=kind, **values)
            )
        tx.audit("volunteer.certificate_image_set", "certificate_image", kind, f"{kind} uploaded")
        return CertificateImageRead(
            kind=kind, media_type=media_type, width=width, height=height, size=len(data)
        )

    @operation("DELETE /certificate-images/{kind}", permission="certificates.issue")
    def remove_certificate_image(self, kind: str) -> None:
        """Stop printing the organisation's ``logo`` or ``seal`` (``certificates.issue``)."""
        tx = self.tx
        tx.require("certificates.issue")
        tx.session.execute(
            sa.delete(CertificateImage).where(
                CertificateImage.org_id == tx.org_id, CertificateImage.kind == kind
            )
        )
        tx.audit(
            "volunteer.certificate_image_removed", "certificate_image", kind, f"{kind} removed"
        )

    @operation("GET /certificate-images")
    def certificate_images(self) -> list[CertificateImageRead]:
        """The images the organisation's certificates carry (anyone in the organisation)."""
        rows = self.tx.session.execute(
            sa.select(
                CertificateImage.kind,
                CertificateImage.media_type,
                CertificateImage.width,
                CertificateImage.height,
                sa.func.length(CertificateImage.data).label("size"),
            )
            .where(CertificateImage.org_id == self.tx.org_id)
            .order_by(CertificateImage.kind)
        )
        return [CertificateImageRead.model_validate(row._mapping) for row in rows]

    @operation(
        not_http="answers an image's bytes: drawn on the certificate PDF and shown by "
        "relief_hub's staff page",
        changes=False,
    )
    def certificate_image(self, kind: str) -> tuple[str, bytes]:
        """The media type and bytes of the organisation's ``logo`` or ``seal``; ``NotFound``."""
        row = self.tx.session.execute(
            sa.select(CertificateImage.media_type, CertificateImage.data).where(
                CertificateImage.org_id == self.tx.org_id, CertificateImage.kind == kind
            )
        ).first()
        if row is None:
            raise NotFound("CertificateImage", kind)
        return str(row.media_type), bytes(row.data)

    def _images_for_pdf(self) -> CertificateImages:
        rows = self.tx.session.execute(
            sa.select(CertificateImage.kind, CertificateImage.data).where(
                CertificateImage.org_id == self.tx.org_id
            )
        )
        found = {row.kind: bytes(row.data) for row in rows}
        return CertificateImages(logo=found.get("logo"), seal=found.get("seal"))

    # --- numbers and status -------------------------------------------------------------------

    @operation("GET /certificates/by-number/{number}", permission="certificates.issue")
    def certificate_by_number(self, number: str) -> CertificateRead:
        """The organisation's certificate with this number (``certificates.issue``): how staff
        answer someone who reads a number aloud. ``NotFound`` when there is none."""
        tx = self.tx
        tx.require("certificates.issue")
        number = normalise_number(number)
        found = tx.session.scalar(
            sa.select(Certificate.id).where(
                Certificate.org_id == tx.org_id, Certificate.number == number
            )
        )
        if found is None:
            raise NotFound("Certificate", number)
        return self.certificate(found)

    @operation(
        not_http="served by the public certificate check page: the token names its "
        "organisation, so the check sits outside any organisation's mount",
        changes=False,
        public=True,
    )
    def certificate_status(self, token: str) -> CertificateStatus:
        """What a verification page shows for a link's ``token``; needs no organisation or actor.

        ``valid`` with what the certificate itself states, ``revoked`` with its number and
        organisation only, ``unknown`` for a forged, altered or foreign token or a certificate
        that does not exist. Never raises for a bad token.
        """
        try:
            check = self.verify_certificate(token)
        except TokenInvalid:
            return CertificateStatus(status="unknown")
        except NotFound:
            return self._revoked_or_unknown(token)
        return CertificateStatus(status="valid", number=check.number, check=check)

    def _revoked_or_unknown(self, token: str) -> CertificateStatus:
        data = tokens_for(self.tx.kit).load(CERTIFICATE_PURPOSE, token, max_age=None)
        row = self.tx.session.execute(
            sa.select(Certificate.number, Certificate.revoked_at, Organisation.name)
            .join(Organisation, Organisation.id == Certificate.org_id)
            .where(
                Certificate.id == uuid.UUID(str(data["c"])),
                Certificate.org_id == uuid.UUID(str(data["o"])),
            )
        ).first()
        if row is None or row.revoked_at is None:
            return CertificateStatus(status="unknown")
        state: Literal["revoked"] = "revoked"
        return CertificateStatus(
            status=state, number=row.number, organisation=row.name, revoked_at=row.revoked_at
        )


def warn_without_public_url(tx: Context) -> None:
    """Log, once per kit, that certificates carry no link because ``public_base_url`` is unset."""
    if tx.kit.settings.public_base_url or tx.kit in _WARNED:
        return
    _WARNED.add(tx.kit)
    log.warning(
        "NGO_KIT_PUBLIC_BASE_URL is not set: certificates print no QR code or link, only their "
        "number for the organisation to confirm (see docs/modules/volunteer.md)"
    )


_WARNED: weakref.WeakSet[Any] = weakref.WeakSet()
