"""Certificate pages: the public check a certificate's QR code opens, and the staff page that
uploads the organisation's logo and seal, finds a certificate by the number someone reads out
and revokes it.

The check answers anyone holding the link in the site's frame, with its verdict in Chinese and
English at once (a verifier may read either), and shows no more than the certificate itself
states. Machines keep the kit's JSON check at ``/api/certificates/verify``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from ngo_kit import errors
from ngo_kit.modules.volunteer.certificate_pdf import hours_text
from ngo_kit.modules.volunteer.certificates import IMAGE_KINDS, IMAGE_MAX_BYTES

from .language import translator
from .pages import CSRF, N_, Field, Page

router = APIRouter(include_in_schema=False)

#: The path relief_hub's organisations set as their ``certificate_verify_url``.
VERIFY_PATH = "/certificates/verify"
Upload = Annotated[UploadFile | None, File()]
VERDICTS = {
    "valid": N_("This certificate is valid"),
    "revoked": N_("This certificate was revoked"),
    "unknown": N_("This certificate cannot be confirmed"),
}


@router.get(VERIFY_PATH)
def verify(request: Request, token: Annotated[str, Query(max_length=2000)] = "") -> Response:
    """Is the certificate behind this link valid, revoked or unknown? No sign-in needed."""
    page = Page(request)
    with page.ctx.kit.begin(locale=page.locale) as tx:
        found = tx.volunteer.certificate_status(token)
    zh, en = translator("zh_CN"), translator("en")
    verdict = VERDICTS[found.status]
    hours = {
        "zh": hours_text(found.check.hours, "zh_CN") if found.check else "",
        "en": hours_text(found.check.hours, "en") if found.check else "",
    }
    return page.render(
        "certificate_verify.html",
        found=found,
        verdict_zh=zh(verdict),
        verdict_en=en(verdict),
        hours=hours["zh" if page.locale == "zh_CN" else "en"],
    )


# --- staff: images, lookup by number, revocation -------------------------------------------


@router.get("/o/{org}/staff/certificates")
def staff_certificates(request: Request, org: str, number: str = "") -> Response:
    """The organisation's logo and seal, and a certificate found by its number."""
    return _staff_page(Page(request, org), number)


def _staff_page(page: Page, number: str = "") -> Response:
    """The staff certificate page (a refused upload's errors are shown by ``page.render``)."""
    found, state, not_found = None, None, None
    with page.begin(require="certificates.issue") as tx:
        images = {i.kind: i for i in tx.volunteer.certificate_images()}
        if number.strip():
            try:
                found = tx.volunteer.certificate_by_number(number)
                state = tx.volunteer.certificate_status(found.token).status
            except (errors.NotFound, errors.ValidationFailed) as error:
                not_found = error
    return page.render(
        "staff/certificates.html",
        images=images,
        kinds=IMAGE_KINDS,
        wanted=number,
        found=found,
        state=state,
        hours=hours_text(found.hours, page.locale) if found else "",
        lookup_error=page.message(not_found) if not_found else None,
    )


@router.get("/o/{org}/staff/certificates/{kind}.img")
def certificate_image(request: Request, org: str, kind: str) -> Response:
    """The stored logo or seal, for the staff page's preview."""
    page = Page(request, org)
    with page.begin(require="certificates.issue") as tx:
        media_type, data = tx.volunteer.certificate_image(kind)
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.post("/o/{org}/staff/certificates/images", dependencies=CSRF)
def upload_images(request: Request, org: str, logo: Upload = None, seal: Upload = None) -> Response:
    """Store the uploaded logo and/or seal; a refused file changes nothing."""
    page = Page(request, org)
    uploads = {
        kind: file.file.read(IMAGE_MAX_BYTES + 1)
        for kind, file in (("logo", logo), ("seal", seal))
        if file is not None and file.filename
    }
    try:
        with page.begin(require="certificates.issue") as tx:
            for kind, data in uploads.items():
                tx.volunteer.set_certificate_image(kind, data)
    except errors.ValidationFailed as error:
        labels = {"logo": N_("Logo"), "seal": N_("Seal")}
        return page.refuse(page.url("staff/certificates"), error, labels=labels)
    if not uploads:
        return page.redirect(page.url("staff/certificates"))
    return page.redirect(page.url("staff/certificates"), N_("The certificate images are saved."))


@router.post("/o/{org}/staff/certificates/images/{kind}/remove", dependencies=CSRF)
def remove_image(request: Request, org: str, kind: str) -> Response:
    """Stop printing the logo or seal on new PDFs."""
    page = Page(request, org)
    with page.begin(require="certificates.issue") as tx:
        tx.volunteer.remove_certificate_image(kind)
    return page.redirect(page.url("staff/certificates"), N_("The image is removed."))


@router.post("/o/{org}/staff/certificates/revoke", dependencies=CSRF)
def revoke(
    request: Request, org: str, number: Field, confirm: Annotated[str, Form()] = ""
) -> Response:
    """Revoke the certificate with this number, once the staff member ticked the confirmation."""
    page = Page(request, org)
    with page.begin(require="certificates.issue") as tx:
        cert = tx.volunteer.certificate_by_number(number)
        if confirm != "yes":  # revoking cannot be undone: a second, deliberate step
            return page.redirect(
                page.url(f"staff/certificates?number={cert.number}"),
                N_("Tick the box to confirm the revocation."),
            )
        tx.volunteer.revoke_certificate(cert.id)
    return page.redirect(
        page.url(f"staff/certificates?number={cert.number}"),
        N_("Certificate {number} is revoked."),
        number=cert.number,
    )
