"""The certificate people read and check: its PDF (fonts, sentences, fitting the page, hours),
its absolute verification link, its short number, the organisation's logo and seal, and what a
verification page is told."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pypdf
import pytest
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from volunteer_helpers import World

from ngo_kit import ConfigurationError, Kit, NotFound, PermissionDenied, ValidationFailed
from ngo_kit.testing import KitFactory

BASE = "https://relief.example.org"
LONG_NAME = "上海市浦东新区彩虹儿童关爱与社区志愿服务发展中心（民办非企业单位）"


@dataclass
class Drawn:
    """One string drawn on the page, in one font."""

    text: str
    font: str
    size: float
    x: float
    y: float

    @property
    def right(self) -> float:
        return self.x + float(stringWidth(self.text, self.font, self.size))


def drawn(pdf: bytes) -> list[Drawn]:
    """Every non-blank string the PDF draws, with its font, size and position."""
    found: list[Drawn] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        text = text.rstrip("\n")
        if text.strip() and font is not None:
            name = str(font.get("/BaseFont", "")).lstrip("/")
            found.append(Drawn(text, name, size, tm[4] + cm[4], tm[5] + cm[5]))

    pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return found


def page_text(pdf: bytes) -> str:
    return "".join(d.text for d in drawn(pdf))


def png(width: int = 200, height: int = 120, kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, kind)
    return out.getvalue()


@pytest.fixture
def linked(kit_factory: KitFactory) -> World:
    """A Chinese organisation with a long name on a kit that knows its public address."""
    kit = kit_factory(modules=["registration", "volunteer"], public_base_url=BASE + "/")
    return World(kit, kit.create_organisation("rainbow", LONG_NAME, timezone="Asia/Shanghai"))


def certified(world: World, hours: str = "8") -> tuple[uuid.UUID, Any]:
    person = world.person("李小红")
    with world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(person, hours, served_on=dt.date(2026, 3, 1))
        return person, tx.volunteer.issue_certificate(person)


def pdf_of(world: World, cert_id: uuid.UUID) -> bytes:
    with world.as_(world.coordinator) as tx:
        pdf: bytes = tx.volunteer.certificate_pdf(cert_id)
    return pdf


# --- the page -------------------------------------------------------------------------------


def test_chinese_names_are_drawn_in_the_cjk_font_on_the_english_line_too(linked: World) -> None:
    _, cert = certified(linked)
    strings = drawn(pdf_of(linked, cert.id))
    cjk = [d for d in strings if re.search(r"[\u3000-\u9fff\uff00-\uffef]", d.text)]
    assert any("李小红" in d.text for d in cjk) and len(cjk) > 4
    assert {d.font for d in cjk} == {"STSong-Light"}
    english = [d for d in strings if "served as a volunteer" in d.text]
    assert english and english[0].font.startswith("Helvetica")


def test_the_chinese_sentence_is_one_sentence_without_stray_spaces(linked: World) -> None:
    _, cert = certified(linked)
    text = page_text(pdf_of(linked, cert.id))
    assert f"兹证明李小红在{LONG_NAME}参加志愿服务" in text
    assert "累计志愿服务时长 8 小时。" in text
    assert "for a total of 8 hours." in text.replace("\n", " ")


def test_hours_are_printed_without_trailing_zeros(linked: World) -> None:
    _, cert = certified(linked, "7.50")
    text = page_text(pdf_of(linked, cert.id))
    assert "7.5 小时" in text and "7.5 hours" in text and "7.50" not in text


def test_every_line_fits_between_the_margins(linked: World) -> None:
    _, cert = certified(linked)
    strings = drawn(pdf_of(linked, cert.id))
    width, _ = A4
    assert strings and all(d.x >= 20 and d.right <= width - 20 for d in strings), [
        (d.text, d.x, d.right) for d in strings if d.x < 20 or d.right > width - 20
    ]
    assert all(d.y >= 20 for d in strings)


def test_the_link_and_qr_code_are_absolute_from_public_base_url(linked: World) -> None:
    _, cert = certified(linked)
    assert cert.verify_url == f"{BASE}/api/certificates/verify?token={cert.token}"
    text = page_text(pdf_of(linked, cert.id))
    assert f"{BASE}/api/certificates/verify?token=" in text
    assert "Scan to verify" in text
    page = pypdf.PdfReader(io.BytesIO(pdf_of(linked, cert.id))).pages[0]
    annotations: list[Any] = list(page["/Annots"])  # type: ignore[call-overload]
    links = [a.get_object()["/A"]["/URI"] for a in annotations]
    assert len(links) == 1 and links[0].startswith(f"{BASE}/api/certificates/verify?token=")
    with linked.kit.begin() as tx:  # the link the QR code encodes, clickable, checks this one
        token = links[0].partition("?token=")[2]
        assert tx.volunteer.verify_certificate(token).certificate_id == cert.id


def test_an_organisation_may_send_verifiers_to_its_own_page(linked: World) -> None:
    own = linked.kit.create_organisation(
        "own",
        "Own Page",
        settings={"volunteer": {"certificate_verify_url": "/certificates/verify"}},
    )
    world = World(linked.kit, own)
    _, cert = certified(world)
    assert cert.verify_url == f"{BASE}/certificates/verify?token={cert.token}"


def test_without_a_public_address_the_certificate_gives_its_number_not_a_dead_link(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    _, cert = certified(world)
    assert cert.verify_url is None
    text = page_text(pdf_of(world, cert.id))
    assert "verify?" not in text and "Scan to verify" not in text
    assert f"confirm certificate No. {cert.number}" in text.replace("\n", " ")
    assert "NGO_KIT_PUBLIC_BASE_URL is not set" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "http://relief.example.org",
        "https://relief.example.org/?next=1",
        "https://relief.example.org/#top",
        "ftp://relief.example.org",
        "relief.example.org",
        "https://user:pw@relief.example.org",
        "https://relief.example.org:port",
    ],
)
def test_a_bad_public_address_stops_the_kit_at_start_up(url: str) -> None:
    from ngo_kit import KitSettings

    with pytest.raises(ConfigurationError) as caught:
        Kit(settings=KitSettings(public_base_url=url), modules=["registration"], autoload=False)
    assert caught.value.check == "core.E022"
    assert "NGO_KIT_PUBLIC_BASE_URL" in str(caught.value)
    chinese = caught.value.message_in("zh_CN")
    assert "NGO_KIT_PUBLIC_BASE_URL" in chinese and re.search(r"[\u4e00-\u9fff]", chinese)


@pytest.mark.parametrize("url", ["http://localhost:8000", "https://ngo.example.org/hub"])
def test_https_and_local_http_addresses_are_accepted(url: str) -> None:
    from ngo_kit import KitSettings

    kit = Kit(settings=KitSettings(public_base_url=url), modules=["registration"], autoload=False)
    assert kit.settings.public_base_url == url
    kit.dispose()


# --- numbers ---------------------------------------------------------------------------------

NUMBER = re.compile(r"^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{2}$")


def test_a_certificate_number_is_short_unambiguous_and_found_as_people_type_it(
    linked: World,
) -> None:
    person, cert = certified(linked)
    with linked.as_(linked.coordinator) as tx:
        second = tx.volunteer.issue_certificate(person)
        typed = cert.number.replace("-", " ").lower()
        assert tx.volunteer.certificate_by_number(typed).id == cert.id
        with pytest.raises(ValidationFailed) as bad:
            tx.volunteer.certificate_by_number("ABCD-EFGH-I1")
    assert NUMBER.match(cert.number) and NUMBER.match(second.number)
    assert cert.number != second.number
    assert bad.value.field == "number"
    assert cert.number in page_text(pdf_of(linked, cert.id))


def test_numbers_are_looked_up_by_staff_of_the_organisation_only(linked: World) -> None:
    person, cert = certified(linked)
    elsewhere = World(linked.kit, linked.kit.create_organisation("other", "Other"))
    with pytest.raises(NotFound), elsewhere.as_(elsewhere.coordinator) as tx:
        tx.volunteer.certificate_by_number(cert.number)
    with pytest.raises(PermissionDenied), linked.as_(person) as tx:
        tx.volunteer.certificate_by_number(cert.number)


# --- status for a verification page ---------------------------------------------------------


def test_status_says_valid_revoked_or_unknown(linked: World) -> None:
    _, cert = certified(linked)
    with linked.kit.begin() as tx:
        valid = tx.volunteer.certificate_status(cert.token)
        forged = tx.volunteer.certificate_status(cert.token[:-3] + "abc")
    with linked.as_(linked.coordinator) as tx:
        tx.volunteer.revoke_certificate(cert.id)
    with linked.kit.begin() as tx:
        revoked = tx.volunteer.certificate_status(cert.token)
    assert valid.status == "valid" and valid.check is not None
    assert (valid.check.name, valid.check.organisation) == ("李小红", LONG_NAME)
    assert valid.check.model_dump(mode="json")["hours"] == "8"
    assert (revoked.status, revoked.number, revoked.check) == ("revoked", cert.number, None)
    assert (forged.status, forged.number) == ("unknown", None)


# --- logo and seal -----------------------------------------------------------------------------


def test_logo_and_seal_are_stored_per_organisation_and_drawn(linked: World) -> None:
    _, cert = certified(linked)
    plain = pdf_of(linked, cert.id)
    with linked.as_(linked.coordinator) as tx:
        logo = tx.volunteer.set_certificate_image("logo", png(300, 100))
        tx.volunteer.set_certificate_image("seal", png(400, 400, "JPEG"))
        kinds = [(i.kind, i.media_type) for i in tx.volunteer.certificate_images()]
    elsewhere = World(linked.kit, linked.kit.create_organisation("other", "Other"))
    with elsewhere.as_(elsewhere.coordinator) as tx:
        assert tx.volunteer.certificate_images() == []
    assert (logo.width, logo.height) == (300, 100)
    assert kinds == [("logo", "image/png"), ("seal", "image/jpeg")]
    with_images = pdf_of(linked, cert.id)
    images = pypdf.PdfReader(io.BytesIO(with_images)).pages[0].images
    assert len(images) == 2 and not pypdf.PdfReader(io.BytesIO(plain)).pages[0].images


Upload = Callable[[], bytes]


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (lambda: png(kind="GIF"), "image_type"),
        (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image_type"),
        (lambda: png()[:60], "image_type"),
        (lambda: png(3000, 40), "image_dimensions"),
        (lambda: png(10, 10), "image_dimensions"),
        (lambda: b"\x89PNG" + b"\0" * 1_000_001, "image_too_large"),
    ],
)
def test_an_image_that_is_not_a_fitting_png_or_jpeg_is_refused(
    linked: World, data: Upload, rule: str
) -> None:
    with pytest.raises(ValidationFailed) as caught, linked.as_(linked.coordinator) as tx:
        tx.volunteer.set_certificate_image("seal", data())
    assert (caught.value.field, caught.value.rule) == ("seal", rule)
    assert caught.value.message_in("zh_CN").startswith("seal")
    with linked.as_(linked.coordinator) as tx:
        assert tx.volunteer.certificate_images() == []


def test_the_refusal_is_explained_in_chinese(linked: World) -> None:
    with pytest.raises(ValidationFailed) as caught, linked.as_(linked.coordinator) as tx:
        tx.volunteer.set_certificate_image("logo", b"GIF89a not really")
    assert "PNG 或 JPEG" in caught.value.message_in("zh_CN")
    assert "must be a PNG or JPEG image" in caught.value.message_in("en")


def test_only_certificate_staff_upload_images(linked: World) -> None:
    person = linked.person("李小红")
    with pytest.raises(PermissionDenied), linked.as_(person) as tx:
        tx.volunteer.set_certificate_image("logo", png())
    with pytest.raises(ValidationFailed) as caught, linked.as_(linked.coordinator) as tx:
        tx.volunteer.set_certificate_image("banner", png())
    assert caught.value.field == "kind"


def test_certificates_issued_before_numbers_get_one_and_their_links_keep_verifying(
    linked: World,
) -> None:
    from ngo_kit import migrations

    _, cert = certified(linked)
    migrations.downgrade(linked.kit, "7c4e2a9d1f06")  # the schema before numbers
    linked.kit.upgrade()
    with linked.kit.begin() as tx:
        check = tx.volunteer.verify_certificate(cert.token)  # a link printed back then
    assert check.certificate_id == cert.id
    assert NUMBER.match(check.number) and check.number != cert.number
