"""Certificates of service hours: their short numbers, their absolute verification link, the
organisation's logo and seal printed on them, and the status a verification page shows.

``CertificateExtras`` is a base of ``VolunteerService`` (``tx.volunteer``); the issuing,
listing and revoking of certificates are in ``service.py``.
"""

from __future__ import annotations

import io
import logging
import secrets
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from ngo_kit.db import utcnow
from ngo_kit.errors import NotFound, TokenInvalid, ValidationFailed
from ngo_kit.modules.volunteer.certificate_pdf import CertificateImages
from ngo_kit.modules.volunteer.models import Certificate, CertificateImage
from ngo_kit.modules.volunteer.schemas import (
    CertificateCheck,
    CertificateImageRead,
    CertificateRead,
    CertificateStatus,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context

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


class CertificateExtras:
    """``tx.volunteer``'s certificate images, lookup by number and verification status."""

    tx: Context

    if TYPE_CHECKING:  # provided by VolunteerService

        @property
        def settings(self) -> dict[str, Any]: ...

        def certificate(self, certificate_id: uuid.UUID) -> CertificateRead: ...

        def verify_certificate(self, token: str) -> CertificateCheck: ...

    def _verify_link(self, token: str) -> str | None:
        base = self.tx.kit.settings.public_base_url
        return verify_link(base, str(self.settings["certificate_verify_url"]), token)

    # --- images ----------------------------------------------------------------------------

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
        from ngo_kit.modules.volunteer.service import _actor

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
        from ngo_kit.modules.volunteer.service import CERTIFICATE_PURPOSE
        from ngo_kit.tenancy import Organisation
        from ngo_kit.tokens import tokens_for

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
