"""relief_hub's certificate pages: the public check its QR code opens (valid, revoked,
unknown; in Chinese and English; nothing more than the certificate states) and the staff page
for the logo and seal, lookup by number and revocation."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from PIL import Image
from relief_hub.hub_support import RAINBOW, Browser, Hub

from ngo_kit import SYSTEM


def certificate(hub: Hub) -> Any:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        tx.volunteer.record_hours(hub.people["volunteer"], "8", served_on=dt.date(2026, 3, 1))
        return tx.volunteer.issue_certificate(hub.people["volunteer"])


def image(kind: str = "PNG", size: tuple[int, int] = (240, 120)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 20, 20)).save(out, kind)
    return out.getvalue()


def upload(browser: Browser, lang: str = "en", **files: tuple[str, bytes, str]) -> Any:
    """Post the files and follow the redirect: a refused upload, like every refused form, is
    shown by the page it came from (Post/Redirect/Get), with the refusal's status."""
    page = f"/o/{RAINBOW}/staff/certificates"
    posted = browser.client.post(
        f"{page}/images?lang={lang}",
        data={"csrf_token": browser.token(page)},
        files=files,
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    return browser.client.get(posted.headers["location"], follow_redirects=False)


def test_the_check_says_valid_in_chinese_and_english_with_what_the_certificate_states(
    hub: Hub,
) -> None:
    cert = certificate(hub)
    for lang, label in (("zh", "证明编号"), ("en", "Certificate number")):
        page = hub.browser().get(f"/certificates/verify?token={cert.token}&lang={lang}")
        assert page.status_code == 200
        assert 'data-testid="certificate-valid"' in page.text
        assert "此证明有效" in page.text and "This certificate is valid" in page.text
        assert label in page.text and cert.number in page.text
        assert "李小红" in page.text and "彩虹儿童关爱中心" in page.text
        assert ("8 小时" if lang == "zh" else "8 hours") in page.text
        assert "8.00" not in page.text
        # nothing the paper does not print: no account id, no email address
        assert str(cert.user_id) not in page.text and "@example.org" not in page.text


def test_the_check_says_revoked_or_unknown(hub: Hub) -> None:
    cert = certificate(hub)
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        tx.volunteer.revoke_certificate(cert.id)
    revoked = hub.browser().get(f"/certificates/verify?token={cert.token}")
    assert 'data-testid="certificate-revoked"' in revoked.text
    assert "此证明已被撤销" in revoked.text and "李小红" not in revoked.text
    forged = hub.browser().get(f"/certificates/verify?token={cert.token[:-4]}abcd")
    assert 'data-testid="certificate-unknown"' in forged.text
    assert "无法核实此证明" in forged.text
    assert 'data-testid="certificate-unknown"' in hub.browser().get("/certificates/verify").text


def test_staff_upload_a_logo_and_seal_that_new_pdfs_carry(hub: Hub) -> None:
    cert = certificate(hub)
    staff = hub.browser("staff")
    saved = upload(
        staff,
        logo=("logo.png", image(), "image/png"),
        seal=("seal.jpg", image("JPEG", (300, 300)), "image/jpeg"),
    )
    page = saved  # the page the upload redirected to
    assert 'data-testid="image-logo"' in page.text and 'data-testid="image-seal"' in page.text
    preview = staff.get(f"/o/{RAINBOW}/staff/certificates/seal.img")
    assert preview.headers["content-type"] == "image/jpeg"
    pdf = staff.get(f"/o/{RAINBOW}/me/certificates/{cert.id}.pdf")
    assert pdf.status_code == 200 and pdf.content.count(b"/Subtype /Image") == 2


def test_a_file_that_is_not_a_png_or_jpeg_is_refused_whatever_its_name(hub: Hub) -> None:
    staff = hub.browser("staff")
    refused = upload(
        staff,
        logo=("logo.png", image(), "image/png"),
        seal=("seal.png", image("GIF"), "image/png"),
    )
    assert refused.status_code == 422
    assert 'data-testid="error-seal"' in refused.text
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        assert tx.volunteer.certificate_images() == []  # the good logo was not kept either
    chinese = upload(staff, "zh", seal=("seal.png", b"GIF89a", "image/png"))
    assert "必须是 PNG 或 JPEG 图片" in chinese.text


def test_a_volunteer_cannot_open_the_staff_certificate_page(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    assert volunteer.get(f"/o/{RAINBOW}/staff/certificates").status_code == 403


def test_staff_find_a_certificate_by_its_number_and_revoke_it_only_when_confirmed(
    hub: Hub,
) -> None:
    cert = certificate(hub)
    staff = hub.browser("staff")
    typed = cert.number.replace("-", "").lower()
    page = staff.get(f"/o/{RAINBOW}/staff/certificates?number={typed}")
    assert 'data-testid="found-certificate"' in page.text and cert.number in page.text
    action = f"/o/{RAINBOW}/staff/certificates/revoke"
    lookup = f"/o/{RAINBOW}/staff/certificates?number={cert.number}"
    unconfirmed = staff.submit(lookup, action, {"number": cert.number})
    assert unconfirmed.status_code == 303
    assert (
        hub.browser()
        .get(f"/certificates/verify?token={cert.token}")
        .text.count('data-testid="certificate-valid"')
    )
    done = staff.submit(lookup, action, {"number": cert.number, "confirm": "yes"})
    assert 'data-testid="found-state">Revoked' in staff.follow(done).text
    assert (
        'data-testid="certificate-revoked"'
        in hub.browser().get(f"/certificates/verify?token={cert.token}").text
    )
    unknown = staff.get(f"/o/{RAINBOW}/staff/certificates?number=ZZZZ-ZZZZ-ZZ")
    assert 'data-testid="error-number"' in unknown.text
