"""The certificate of service hours as a one-page A4 PDF, in Chinese and English.

Every sentence is one whole catalogue message with placeholders (the English message id and its
Chinese translation), never glued from fragments, so each language reads as written. Text is
drawn in runs: characters that Helvetica's encoding lacks (Chinese names and organisations on
the English line too) use reportlab's built-in CID font ``STSong-Light``, so no font file is
needed and nothing shows as a black box. Lines wrap to the page's width; a title that would not
fit shrinks. The QR code is drawn as vector squares from segno's matrix, and only for an absolute
link (``public_base_url``): without one the page tells the reader to ask the organisation about
the certificate's number instead of printing a link that leads nowhere.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ngo_kit.exports import plain_decimal
from ngo_kit.i18n import gettext

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

    from ngo_kit.modules.volunteer.schemas import CertificateRead

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
MM = 72 / 25.4
MARGIN = 22 * MM
#: Chinese punctuation that never begins a line.
NO_LINE_START = set("，。、；：？！）》」』”’…")

# Every message the certificate prints; the Chinese comes from the volunteer catalogue.
TITLE = "Certificate of Service Hours"
BODY = (
    "This certifies that {name} served as a volunteer with {organisation} for a total of {hours}."
)
BODY_PERIOD = (
    "This certifies that {name} served as a volunteer with {organisation} from {start} to {end}, "
    "for a total of {hours}."
)
BODY_SINCE = (
    "This certifies that {name} served as a volunteer with {organisation} from {start} onwards, "
    "for a total of {hours}."
)
BODY_UNTIL = (
    "This certifies that {name} served as a volunteer with {organisation} up to {end}, "
    "for a total of {hours}."
)
HOURS = "{hours} hours"
ONE_HOUR = "{hours} hour"
ISSUED = "Issued on {date}"
NUMBER = "Certificate No. {number}"
SCAN = "Scan to verify"
VERIFY_AT = "Check this certificate at:"
ASK_ORGANISATION = "To verify, ask {organisation} to confirm certificate No. {number}."
SEAL_LABEL = "Issued by {organisation}"


@dataclass(frozen=True)
class CertificateImages:
    """The organisation's logo and seal (公章) as stored image bytes, each optional."""

    logo: bytes | None = None
    seal: bytes | None = None


def hours_text(hours: Decimal, locale: str) -> str:
    """``8 hours`` / ``8 小时``, the number without trailing zeros (``7.5``, never ``8.0000``)."""
    plain = f"{plain_decimal(Decimal(hours)):f}"
    return gettext(ONE_HOUR if Decimal(hours) == 1 else HOURS, locale).format(hours=plain)


def sentences(
    cert: CertificateRead, *, name: str, organisation: str, locale: str
) -> dict[str, str]:
    """The certificate's text in ``locale`` (``en`` or ``zh_CN``), keyed by what each line is."""
    start, end = cert.period_from, cert.period_to
    body = BODY_PERIOD if start and end else BODY_SINCE if start else BODY_UNTIL if end else BODY
    values = {
        "name": name,
        "organisation": organisation,
        "hours": hours_text(cert.hours, locale),
        "start": start.isoformat() if start else "",
        "end": end.isoformat() if end else "",
    }
    text = {
        "title": gettext(TITLE, locale),
        "body": gettext(body, locale).format(**values),
        "issued": gettext(ISSUED, locale).format(date=cert.issued_at.date().isoformat()),
        "number": gettext(NUMBER, locale).format(number=cert.number),
        "signed": gettext(SEAL_LABEL, locale).format(organisation=organisation),
    }
    if cert.verify_url:
        text["scan"] = gettext(SCAN, locale)
        text["verify"] = gettext(VERIFY_AT, locale)
    else:
        text["verify"] = gettext(ASK_ORGANISATION, locale).format(
            organisation=organisation, number=cert.number
        )
    return text


# --- text in runs of one font -----------------------------------------------------------


def _latin(char: str) -> bool:
    """True when Helvetica's encoding (WinAnsi, cp1252) has the character."""
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def runs(text: str, latin: str = LATIN_FONT) -> Iterator[tuple[str, str]]:
    """``text`` split into ``(piece, font)`` runs: ``latin`` where it can, else the CJK font."""
    piece, font = "", ""
    for char in text:
        want = latin if _latin(char) else CJK_FONT
        if want != font and piece:
            yield piece, font
            piece = ""
        piece, font = piece + char, want
    if piece:
        yield piece, font


def text_width(text: str, size: float, latin: str = LATIN_FONT) -> float:
    """How wide ``text`` is when drawn in runs at ``size`` points."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(sum(stringWidth(piece, font, size) for piece, font in runs(text, latin)))


def _tokens(text: str) -> Iterator[str]:
    """Pieces a line may break between: each CJK character, each Latin word with its space."""
    word = ""
    for char in text:
        if _latin(char):
            word += char
            if char == " ":
                yield word
                word = ""
            continue
        if word:
            yield word
            word = ""
        yield char
    if word:
        yield word


def wrap(text: str, size: float, width: float, latin: str = LATIN_FONT) -> list[str]:
    """``text`` in lines no wider than ``width``; a word longer than a line (a link) is cut."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if text_width(line + token.rstrip(), size, latin) <= width:
            line += token
            continue
        if token in NO_LINE_START and line:  # keep the punctuation with its sentence
            line, token = line[:-1], line[-1] + token
        if line.strip():
            lines.append(line.rstrip())
        line = ""
        for char in token:  # only a token wider than the whole line is split
            if line and text_width(line + char, size, latin) > width:
                lines.append(line)
                line = ""
            line += char
        line = line.lstrip()
    if line.strip():
        lines.append(line.rstrip())
    return lines


def draw(pdf: Canvas, x: float, y: float, text: str, size: float, latin: str = LATIN_FONT) -> None:
    """Draw ``text`` from ``x`` in runs, each in the font that has its characters."""
    for piece, font in runs(text, latin):
        pdf.setFont(font, size)
        pdf.drawString(x, y, piece)
        x += text_width(piece, size, latin)


def draw_centred(
    pdf: Canvas, y: float, text: str, size: float, page_width: float, latin: str = LATIN_FONT
) -> float:
    """Draw one centred line, shrunk until it fits between the margins; return the size used."""
    room = page_width - 2 * MARGIN
    while size > 8 and text_width(text, size, latin) > room:
        size -= 0.5
    draw(pdf, (page_width - text_width(text, size, latin)) / 2, y, text, size, latin)
    return size


def draw_block(
    pdf: Canvas, x: float, y: float, text: str, size: float, width: float, leading: float
) -> float:
    """Draw ``text`` wrapped to ``width`` from the top line at ``y``; return the next free y."""
    for line in wrap(text, size, width):
        draw(pdf, x, y, line, size)
        y -= leading
    return y


# --- the page ------------------------------------------------------------------------------


def _image(data: bytes) -> Any:
    from reportlab.lib.utils import ImageReader

    return ImageReader(io.BytesIO(data))


def _draw_image(
    pdf: Canvas, data: bytes, centre_x: float, bottom: float, box_w: float, box_h: float
) -> None:
    """Draw an image as large as fits a ``box_w`` x ``box_h`` box, centred on ``centre_x``."""
    picture = _image(data)
    w, h = picture.getSize()
    scale = min(box_w / w, box_h / h)
    left = centre_x - w * scale / 2
    pdf.drawImage(picture, left, bottom, w * scale, h * scale, mask="auto")


def _draw_qr(pdf: Canvas, url: str, left: float, top: float, size: float) -> None:
    import segno

    qr = segno.make(url, error="m")
    cell = size / (len(qr.matrix) + 8)
    pdf.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(qr.matrix):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(left + (c + 4) * cell, top - (r + 4) * cell, cell, cell, stroke=0, fill=1)


def certificate_pdf(
    cert: CertificateRead,
    *,
    name: str,
    organisation: str,
    images: CertificateImages | None = None,
) -> bytes:
    """A one-page A4 certificate of service hours in Chinese and English.

    ``cert.verify_url`` (absolute, or ``None``) becomes the QR code and the printed link;
    ``images`` adds the organisation's logo at the top and its seal over its name.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    images = images or CertificateImages()
    zh = sentences(cert, name=name, organisation=organisation, locale="zh_CN")
    en = sentences(cert, name=name, organisation=organisation, locale="en")
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=True)
    pdf.setTitle(f"{zh['title']} {en['title']}")
    width, height = A4
    text_width_room = width - 2 * MARGIN
    top = height - MARGIN
    if images.logo:
        _draw_image(pdf, images.logo, width / 2, top - 20 * MM, 70 * MM, 20 * MM)
        top -= 26 * MM
    draw_centred(pdf, top - 14 * MM, zh["title"], 26, width)
    draw_centred(pdf, top - 24 * MM, en["title"], 16, width, latin=LATIN_BOLD)
    y = top - 42 * MM
    y = draw_block(pdf, MARGIN, y, zh["body"], 14, text_width_room, 9 * MM)
    y = draw_block(pdf, MARGIN, y - 4 * MM, en["body"], 12, text_width_room, 7 * MM)
    y -= 6 * MM
    for key in ("issued", "number"):
        draw(pdf, MARGIN, y, f"{zh[key]}    {en[key]}", 11)
        y -= 7 * MM
    # low on the page, as a signature is, unless the text came down that far
    signed_at = min(y - 8 * MM, MARGIN + 90 * MM)
    _draw_signature(pdf, images.seal, zh["signed"], en["signed"], signed_at, width)
    _draw_verification(pdf, cert, zh, en, width)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _draw_signature(
    pdf: Canvas, seal: bytes | None, zh: str, en: str, y: float, width: float
) -> None:
    """The issuing organisation's name at the right, its seal (if any) stamped over it."""
    room = width / 2 - MARGIN
    right = width - MARGIN
    lines = [(line, 12) for line in wrap(zh, 12, room)] + [
        (line, 10) for line in wrap(en, 10, room)
    ]
    if seal:
        box = 40 * MM
        _draw_image(pdf, seal, right - box / 2, y - box + 10 * MM, box, box)
    for line, size in lines:
        draw(pdf, right - text_width(line, size), y, line, size)
        y -= size * 1.5


def _draw_verification(
    pdf: Canvas, cert: CertificateRead, zh: dict[str, str], en: dict[str, str], width: float
) -> None:
    """The QR code and the printed link, or, without a link, how to verify by the number;
    laid out from the bottom margin up so that a long link never runs off the page."""
    room = width - 2 * MARGIN
    size, leading = 9, 4.5 * MM
    if cert.verify_url:
        qr = 40 * MM
        left = width - MARGIN - qr
        top = MARGIN + qr + 6 * MM
        _draw_qr(pdf, cert.verify_url, left, top, qr)
        # a PDF reader opens the same link on a click (and a program can read it back)
        pdf.linkURL(cert.verify_url, (left, top - qr, left + qr, top), relative=0, thickness=0)
        draw(pdf, left + 4 * MM, MARGIN + 4 * MM, f"{zh['scan']} {en['scan']}", size)
        room -= qr + 6 * MM
        lines = wrap(f"{zh['verify']} {en['verify']}", size, room)
        lines += wrap(cert.verify_url, size, room)
    else:
        lines = wrap(zh["verify"], size, room) + wrap(en["verify"], size, room)
    y = MARGIN + (len(lines) - 1) * leading
    for line in lines:
        draw(pdf, MARGIN, y, line, size)
        y -= leading
