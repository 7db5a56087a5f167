"""A certificate of service hours as its holder and a stranger checking it meet it, in a real
browser: the volunteer downloads the PDF, the link its QR code carries opens relief_hub's check
saying the certificate is valid (in English and in Chinese), and once staff revoke it, revoked.

The link is read from the PDF's link annotation over the QR code, the same URL the QR encodes.
"""

from __future__ import annotations

import io

import pypdf
from e2e_support import LiveServer, Tab
from playwright.sync_api import expect
from test_relief_hub_in_the_browser import RAINBOW, STAFF, OpenTab, sign_in

VOLUNTEER = ("li.volunteer@rainbow.example.org", "rainbow-volunteer-demo-2024")


def download_a_certificate(volunteer: Tab, server: LiveServer) -> str:
    """Ask for a certificate on the dashboard, fetch its PDF; returns the link of its QR code."""
    volunteer.open(f"/o/{RAINBOW}/me")
    before = volunteer.page.locator('[data-testid^="certificate-pdf-"]').count()
    volunteer.submit(volunteer.by_id("request-certificate"))
    links = volunteer.page.locator('[data-testid^="certificate-pdf-"]')
    expect(links).to_have_count(before + 1)
    href = links.first.get_attribute("href")  # newest first
    assert href is not None
    pdf = volunteer.page.request.get(server.url + href)
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    page = pypdf.PdfReader(io.BytesIO(pdf.body())).pages[0]
    uris = [str(a.get_object()["/A"]["/URI"]) for a in page.get("/Annots", [])]
    assert len(uris) == 1, uris
    return uris[0]


def test_the_qr_code_of_a_downloaded_certificate_opens_its_check_valid_then_revoked(
    open_tab: OpenTab, relief_hub: LiveServer
) -> None:
    volunteer = open_tab()
    sign_in(volunteer, RAINBOW, *VOLUNTEER)
    link = download_a_certificate(volunteer, relief_hub)
    assert link.startswith(f"{relief_hub.url}/certificates/verify?token="), link

    english, chinese = open_tab(locale="en-GB"), open_tab(locale="zh-CN")
    english.open(link)  # a stranger: nobody signed in
    valid = english.by_id("certificate-valid")
    expect(valid).to_contain_text("This certificate is valid")
    expect(valid).to_contain_text("此证明有效")
    expect(english.by_id("certificate-name")).to_have_text("李小红")
    expect(english.by_id("certificate-hours")).to_contain_text("hours")
    expect(english.by_id("certificate-hours")).not_to_contain_text(".00")
    number = english.by_id("certificate-number").inner_text()
    english.shoot("valid-en")
    chinese.open(link)
    expect(chinese.by_id("certificate-valid")).to_contain_text("证明编号")
    expect(chinese.by_id("certificate-hours")).to_contain_text("小时")
    expect(chinese.page.locator("html")).to_have_attribute("lang", "zh-CN")
    chinese.shoot("valid-zh")

    staff = open_tab()
    sign_in(staff, RAINBOW, *STAFF[RAINBOW])
    staff.open(f"/o/{RAINBOW}/staff/certificates?number={number}")
    expect(staff.by_id("found-certificate")).to_contain_text(number)
    staff.submit(staff.by_id("revoke-certificate"))  # not ticked: nothing happens
    expect(staff.by_id("found-state")).to_have_text("Valid")
    staff.by_id("confirm-revoke").check()
    staff.submit(staff.by_id("revoke-certificate"))
    expect(staff.by_id("found-state")).to_have_text("Revoked")
    staff.shoot("revoked-staff")

    english.open(link)
    expect(english.by_id("certificate-revoked")).to_contain_text("This certificate was revoked")
    expect(english.page.get_by_text("李小红")).to_have_count(0)
    english.shoot("revoked-en")
    chinese.open(link)
    expect(chinese.by_id("certificate-revoked")).to_contain_text("此证明已被撤销")
    chinese.shoot("revoked-zh")

    for tab in (volunteer, english, chinese, staff):
        tab.assert_no_problems()
