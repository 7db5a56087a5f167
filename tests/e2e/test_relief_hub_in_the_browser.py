"""relief_hub as people use it, in a real browser: a volunteer's way from registering to a
redeemed reward, staff receiving and issuing a donation that the public transparency page then
shows, and every page of the README's page contract in English and Chinese.

The server is ``examples/relief_hub/demo.py`` on a fresh, seeded database (see ``conftest``);
the demo's staff sign in with the passwords the README lists. Each person browses in a context of
their own (their own cookies). Screenshots land in ``build/screenshots/<test>-<page>.png``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from e2e_support import RELIEF_HUB, LiveServer, Tab
from playwright.sync_api import expect

OpenTab = Callable[..., Tab]

RAINBOW = "rainbow"  # Shanghai time, Chinese content; phone numbers from mainland China
RIVERSIDE = "riverside"  # London time, English content
PASSWORD = "lantern-harbour-47"
STAFF = {
    RAINBOW: ("wang.staff@rainbow.example.org", "rainbow-staff-demo-2024"),
    RIVERSIDE: ("sam.staff@riverside.example.org", "riverside-staff-demo-2024"),
}
VOLUNTEER = {
    RIVERSIDE: ("alex.volunteer@riverside.example.org", "riverside-volunteer-demo-2024"),
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def sign_in(tab: Tab, org: str, login: str, password: str) -> None:
    """Sign in through the sign-in page."""
    tab.open(f"/o/{org}/sign-in")
    form = tab.by_id("sign-in-form")
    form.locator('[name="login"]').fill(login)
    form.locator('[name="password"]').fill(password)
    tab.submit(tab.by_id("sign-in-submit"))
    expect(tab.by_id("signed-in-as")).to_be_visible()


def tomorrow_in(zone: str, hour: int) -> str:
    """``hour`` o'clock tomorrow in ``zone``, as a ``datetime-local`` field wants it."""
    day = dt.datetime.now(ZoneInfo(zone)).date() + dt.timedelta(days=1)
    return f"{day.isoformat()}T{hour:02d}:00"


# --- a volunteer's way ---------------------------------------------------------------------


def staff_create_a_shift(staff: Tab, activity: str) -> str:
    """Staff add an activity and a 3-hour shift of it tomorrow; returns the shift's id."""
    staff.open(f"/o/{RAINBOW}/staff/shifts")
    new_activity = staff.by_id("create-activity-submit").locator("xpath=ancestor::form")
    new_activity.locator('[name="title"]').fill(activity)
    new_activity.locator('[name="place"]').fill("爱心仓库")
    staff.submit(staff.by_id("create-activity-submit"))
    form = staff.by_id("create-shift-form")
    form.locator('[name="activity_id"]').select_option(label=activity)
    form.locator('[name="starts_at"]').fill(tomorrow_in("Asia/Shanghai", 10))
    form.locator('[name="ends_at"]').fill(tomorrow_in("Asia/Shanghai", 13))
    form.locator('[name="capacity"]').fill("3")
    form.locator('[name="place"]').fill("爱心仓库")
    staff.submit(staff.by_id("create-shift-submit"))
    expect(staff.by_id("flash")).to_be_visible()
    staff.shoot("staff-shifts")
    return staff.id_in("shift", activity)


def register_and_verify_the_phone(
    volunteer: Tab, server: LiveServer, name: str, email: str, mobile: str
) -> None:
    """Register with an email and a mobile number, read the code the console channel printed,
    and verify the phone with it."""
    volunteer.open(f"/o/{RAINBOW}/register")
    form = volunteer.by_id("register-form")
    form.locator('[name="display_name"]').fill(name)
    form.locator('[name="email"]').fill(email)
    form.locator('[name="phone"]').fill(mobile)
    form.locator('[name="password"]').fill(PASSWORD)
    volunteer.by_id("consent-privacy").check()
    volunteer.shoot("register")
    volunteer.submit(volunteer.by_id("register-submit"))
    assert volunteer.page.url.endswith(f"/o/{RAINBOW}/verify")
    expect(volunteer.by_id("signed-in-as")).to_have_text(name)
    code = server.verification_code(f"+86{mobile}")
    volunteer.by_id("verify-form").locator('[name="code"]').fill(code)
    volunteer.shoot("verify")
    volunteer.submit(volunteer.by_id("verify-submit"))
    assert volunteer.page.url.endswith(f"/o/{RAINBOW}/me")
    expect(volunteer.by_id("flash")).to_be_visible()


def ask_to_volunteer(volunteer: Tab) -> None:
    """Send the volunteer profile form; the profile waits for staff."""
    volunteer.open(f"/o/{RAINBOW}/shifts")
    form = volunteer.by_id("profile-form")
    form.locator('[name="city"]').fill("上海")
    form.locator('[name="emergency_contact_name"]').fill("陈先生")
    form.locator('[name="emergency_contact_phone"]').fill("13700137000")
    volunteer.submit(volunteer.by_id("profile-submit"))
    expect(volunteer.by_id("profile-status")).to_have_text("applicant")


def approve_the_volunteer(staff: Tab, name: str) -> None:
    """Staff approve the waiting volunteer profile that shows ``name``."""
    staff.open(f"/o/{RAINBOW}/staff/volunteers")
    user_id = staff.id_in("volunteer", name)
    staff.shoot("staff-volunteers")
    staff.submit(staff.by_id(f"approve-{user_id}"))
    expect(staff.by_id(f"volunteer-{user_id}")).to_have_count(0)


def check_in_with_the_pass(staff: Tab, volunteer: Tab, shift_id: str, name: str) -> None:
    """The volunteer opens their pass (a page of their own); staff open the link its QR code
    encodes, see who it is, and confirm."""
    volunteer.open(f"/o/{RAINBOW}/me")
    expect(volunteer.by_id(f"checkin-qr-{shift_id}").locator("svg")).to_be_visible()
    volunteer.shoot("me-with-check-in-pass")
    volunteer.submit(volunteer.by_id(f"pass-link-{shift_id}"))
    qr = volunteer.by_id(f"checkin-qr-{shift_id}")
    expect(qr.get_by_role("img")).to_be_visible()
    link = qr.get_attribute("data-check-in-url")
    assert link is not None and "/staff/check-in?token=" in link, link
    volunteer.shoot("check-in-pass")
    staff.open(link)
    expect(staff.by_id("check-in-volunteer")).to_have_text(name)
    staff.shoot("staff-check-in")
    staff.submit(staff.by_id("confirm-check-in"))
    expect(staff.by_id("flash")).to_contain_text(name)


def test_a_volunteer_registers_serves_a_shift_and_spends_the_points_it_earned(
    open_tab: OpenTab, relief_hub: LiveServer
) -> None:
    tag = uuid.uuid4().hex[:6]
    name, email, mobile = f"陈静 {tag}", f"chen.{tag}@example.org", f"139{int(tag, 16) % 10**8:08d}"
    staff, volunteer = open_tab(), open_tab()
    sign_in(staff, RAINBOW, *STAFF[RAINBOW])
    shift_id = staff_create_a_shift(staff, f"物资分装 {tag}")

    register_and_verify_the_phone(volunteer, relief_hub, name, email, mobile)
    ask_to_volunteer(volunteer)
    approve_the_volunteer(staff, name)

    volunteer.open(f"/o/{RAINBOW}/shifts")
    volunteer.submit(volunteer.by_id(f"sign-up-{shift_id}"))
    expect(volunteer.by_id(f"signed-up-{shift_id}")).to_have_text("confirmed")
    volunteer.shoot("shifts-signed-up")

    check_in_with_the_pass(staff, volunteer, shift_id, name)
    staff.open(f"/o/{RAINBOW}/staff/hours")
    staff.submit(staff.by_id(f"complete-{shift_id}"))
    expect(staff.by_id("warning")).to_be_visible()  # the shift is tomorrow: a second step
    staff.shoot("staff-complete-confirm")
    staff.submit(staff.by_id("confirm-complete"))
    staff.shoot("staff-hours")

    # The 3-hour shift earns 10 points an hour (the seeded rule), through hours_points.
    volunteer.open(f"/o/{RAINBOW}/me")
    expect(volunteer.by_id("hours-total")).to_have_text("3")
    expect(volunteer.by_id("points-balance")).to_have_text("30")
    volunteer.shoot("me-with-points")

    volunteer.open(f"/o/{RAINBOW}/rewards")
    shirt = volunteer.id_in("reward", "Volunteer T-shirt")
    volunteer.submit(volunteer.by_id(f"redeem-{shirt}"))
    volunteer.shoot("redeem-confirm")
    volunteer.submit(volunteer.by_id("confirm-redeem"))
    expect(volunteer.by_id("flash")).to_be_visible()
    expect(volunteer.by_id("points-balance")).to_have_text("0")
    redemptions = volunteer.page.locator('[data-testid^="redemption-"]')
    expect(redemptions).to_have_count(1)
    expect(redemptions).to_contain_text("fulfilled")  # backed by stock: handed over at once
    volunteer.shoot("rewards-redeemed")

    volunteer.open(f"/o/{RAINBOW}/me")
    volunteer.submit(volunteer.by_id("request-certificate"))
    pdf_link = volunteer.page.locator('[data-testid^="certificate-pdf-"]')
    expect(pdf_link).to_have_count(1)
    href = pdf_link.get_attribute("href")
    assert href is not None
    pdf = volunteer.page.request.get(relief_hub.url + href)
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    volunteer.shoot("me-with-certificate")

    staff.assert_no_problems()
    volunteer.assert_no_problems()


# --- goods in, goods out, in public --------------------------------------------------------


def test_a_donation_received_and_issued_shows_on_the_public_transparency_page(
    open_tab: OpenTab,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    donation, lot = f"RB-E2E-{tag}", f"NP-E2E-{tag}"
    # Expiring before the seeded lot, so issuing first-expired-first-out takes from this one.
    expires = dt.date.today() + dt.timedelta(days=30)
    staff, visitor = open_tab(), open_tab()
    sign_in(staff, RAINBOW, *STAFF[RAINBOW])

    staff.open(f"/o/{RAINBOW}/staff/donations")
    form = staff.by_id("receive-form")
    form.locator('[name="item"]').select_option("nutrition-pack")
    form.locator('[name="quantity"]').fill("10")
    form.locator('[name="location"]').select_option("store")
    form.locator('[name="donor"]').fill("爱心企业 E2E")
    form.locator('[name="donation"]').fill(donation)
    form.locator('[name="lot"]').fill(lot)
    form.locator('[name="expires_on"]').fill(expires.isoformat())
    staff.submit(staff.by_id("receive-submit"))
    expect(staff.by_id("flash")).to_be_visible()
    staff.shoot("staff-donations")

    staff.open(f"/o/{RAINBOW}/staff/issue")
    form = staff.by_id("issue-form")
    form.locator('[name="item"]').select_option("nutrition-pack")
    form.locator('[name="quantity"]').fill("4")
    form.locator('[name="location"]').select_option("store")
    form.locator('[name="recipient"]').fill("家庭 E2E")
    form.locator('[name="recipient_kind"]').select_option("household")
    staff.submit(staff.by_id("issue-submit"))
    expect(staff.by_id("flash")).to_be_visible()
    staff.shoot("staff-issue")

    visitor.open(f"/o/{RAINBOW}/transparency")
    report = visitor.by_id(f"donation-{donation}")
    expect(report).to_contain_text("爱心企业 E2E")
    expect(report).to_contain_text(re.compile(r"Received:\s*10\b"))
    expect(report).to_contain_text(re.compile(r"Distributed:\s*4\b"))
    expect(report).to_contain_text(re.compile(r"On hand:\s*6\b"))
    expect(report.locator("svg")).to_be_visible()
    expect(report).not_to_contain_text("家庭 E2E")  # who received goods is not published
    report.scroll_into_view_if_needed()
    visitor.shoot("transparency")

    staff.assert_no_problems()
    visitor.assert_no_problems()


# --- every page of the contract, in both languages -----------------------------------------


def contract_pages(section: str) -> list[str]:
    """The ``GET`` paths of one table of relief_hub's README page contract, query left out."""
    readme = (RELIEF_HUB / "README.md").read_text(encoding="utf-8")
    table = readme.split(f"### {section}", 1)[1].split("\n### ", 1)[0]
    paths = re.findall(r"^\| `GET(?:, POST)? (/[^`?]*)", table, flags=re.MULTILINE)
    assert paths, f"no GET page under '### {section}' in {RELIEF_HUB / 'README.md'}"
    return paths


def tour(tab: Tab, paths: list[str], lang: str) -> dict[str, str]:
    """Visit each page in ``lang`` and screenshot it; returns each page's main text by path.

    ``{org}`` is riverside, whose own content is English: on a Chinese page, Chinese
    characters come from the translation. A PDF path is fetched from the links that name it.
    """
    texts: dict[str, str] = {}
    for template in paths:
        path = template.replace("{org}", RIVERSIDE)
        if path.endswith(".pdf"):
            pdf_pages(tab, path)
            continue
        assert "{" not in path, f"the tour does not know how to reach {template}"
        tab.open(path)
        html_lang = tab.page.locator("html").get_attribute("lang")
        assert html_lang == ("zh-CN" if lang == "zh" else "en"), (path, html_lang)
        main = tab.page.locator("main").inner_text()
        if lang == "zh":
            assert CJK.search(main), f"{path} shows no Chinese: {main[:500]}"
        expect(tab.page.get_by_test_id("error")).to_have_count(0)
        tab.shoot(f"{lang}-{page_name(path)}")
        texts[path] = main
    return texts


def page_name(path: str) -> str:
    """A short name for a page's screenshot: ``/o/riverside/staff/hours`` -> ``staff-hours``."""
    if path == "/":
        return "organisations"
    return path.removeprefix(f"/o/{RIVERSIDE}/").strip("/").replace("/", "-") or "home"


def pdf_pages(tab: Tab, template: str) -> None:
    """Fetch every link on the page before that points at a ``template`` path (the volunteer's
    certificates on their dashboard): each must be a PDF."""
    pattern = re.escape(template.replace("{org}", RIVERSIDE)).replace(r"\{id\}", "[^/]+")
    hrefs = [
        href
        for link in tab.page.locator("a[href]").all()
        if (href := link.get_attribute("href")) and re.fullmatch(pattern, href)
    ]
    assert hrefs, f"no link to {template} on {tab.page.url}"
    for href in hrefs:
        answer = tab.page.request.get(tab.base_url + href)
        assert answer.ok and answer.headers["content-type"] == "application/pdf", href


def switch_language(tab: Tab, path: str, to: str) -> None:
    """Open ``path`` and follow the layout's language switch to ``to``."""
    tab.open(path)
    with tab.page.expect_navigation():
        tab.by_id("lang-switch").click()
    assert tab.page.url.endswith(f"?lang={to}"), tab.page.url


@pytest.mark.parametrize(
    ("section", "who"),
    [("Public and volunteer pages", VOLUNTEER), ("Staff pages", STAFF)],
    ids=["volunteer", "staff"],
)
def test_every_contract_page_in_english_and_chinese(
    open_tab: OpenTab, section: str, who: dict[str, tuple[str, str]]
) -> None:
    paths = contract_pages(section)
    # The browser asks for Chinese; the switch picks English, and the cookie keeps it.
    tab = open_tab(locale="zh-CN")
    sign_in(tab, RIVERSIDE, *who[RIVERSIDE])
    switch_language(tab, paths[-1].replace("{org}", RIVERSIDE), "en")
    english = tour(tab, paths, "en")
    switch_language(tab, paths[0].replace("{org}", RIVERSIDE), "zh")
    chinese = tour(tab, paths, "zh")
    same = [path for path, text in english.items() if chinese[path] == text]
    assert not same, f"pages that read the same in English and Chinese: {same}"
    tab.assert_no_problems()


def test_pages_are_styled_under_their_policy_and_refuse_to_be_framed(open_tab: OpenTab) -> None:
    tab = open_tab()
    tab.open("/o/rainbow/")
    # The stylesheet is a file of the app, which the policy allows: the header is painted.
    header = tab.page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert header == "rgb(15, 107, 98)"
    tab.assert_no_problems()  # the policy blocked nothing the page needs
    # Another site puts the page in a frame: the browser refuses to show it there.
    framer = open_tab()
    with framer.page.expect_response(f"{tab.base_url}/o/rainbow/") as framed:
        # set_content returns once the page and its frame have loaded (or been refused)
        framer.page.set_content(f'<iframe id="hub" src="{tab.base_url}/o/rainbow/"></iframe>')
    assert framed.value.ok  # the app answered; the browser would not show the answer
    assert framer.page.frame_locator("#hub").locator("header").count() == 0


# --- phones, keyboards and screen readers ---------------------------------------------------------

AUDIT = (Path(__file__).parent / "audit.js").read_text(encoding="utf-8")
#: axe-core, vendored (see vendor/README.md); it runs on top of ``audit.js``'s own checks.
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
    resultTypes: ["violations"],
  });
  return result.violations.map((v) =>
    `axe ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")}`);
}"""
#: A desktop and a phone (an iPhone 14's 390 x 844 CSS px).
SCREENS = {"desktop": (1280, 900), "phone": (390, 844)}


def audit(tab: Tab) -> list[str]:
    """The WCAG 2.2 AA violations ``audit.js`` and axe-core find on the tab's page.

    axe is evaluated through the DevTools protocol, which the pages' Content-Security-Policy
    (no inline script) does not govern.
    """
    found: list[str] = tab.page.evaluate(AUDIT)
    if not tab.page.evaluate("typeof axe !== 'undefined'"):
        tab.page.evaluate(AXE)
    found += tab.page.evaluate(AXE_RUN)
    return found


def scrolls_sideways(tab: Tab) -> bool:
    """True when the page is wider than the window (the reader must scroll sideways)."""
    wider: bool = tab.page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    return wider


def with_lang(path: str, lang: str) -> str:
    """``path`` asking for ``lang`` (``en`` or ``zh``)."""
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


@pytest.mark.parametrize(
    ("section", "who"),
    [
        ("Public and volunteer pages", None),
        ("Public and volunteer pages", VOLUNTEER),
        ("Staff pages", STAFF),
    ],
    ids=["visitor", "volunteer", "staff"],
)
def test_every_page_passes_the_audit_and_fits_a_phone_in_both_languages(
    open_tab: OpenTab, section: str, who: dict[str, tuple[str, str]] | None
) -> None:
    tab = open_tab()
    if who is not None:
        sign_in(tab, RIVERSIDE, *who[RIVERSIDE])
    paths = [
        p.replace("{org}", RIVERSIDE)
        for p in contract_pages(section)
        if not p.endswith(".pdf") and "{" not in p.replace("{org}", "")
    ]
    problems: list[str] = []
    for screen, (width, height) in SCREENS.items():
        tab.page.set_viewport_size({"width": width, "height": height})
        for lang in ("en", "zh"):
            for path in paths:
                tab.open(with_lang(path, lang))
                tab.shoot(f"{screen}-{lang}-{page_name(path)}")
                problems += [f"{screen} {lang} {path}: {v}" for v in audit(tab)]
                if scrolls_sideways(tab):
                    problems.append(f"{screen} {lang} {path}: scrolls sideways at {width} px")
    assert not problems, "\n".join(problems)
    tab.assert_no_problems()


def fill_and_submit(tab: Tab, form: str, submit: str, values: dict[str, str]) -> None:
    """Fill ``form``'s inputs by name and submit it; the refusal comes back as a page.

    The browser's own checks (``required``, ``type=email``) are switched off: the test is
    about what the server answers to input that gets past them.
    """
    tab.by_id(form).evaluate("form => { form.noValidate = true; }")
    for name, value in values.items():
        tab.by_id(form).locator(f'[name="{name}"]').first.fill(value)
    with tab.page.expect_navigation():
        tab.by_id(submit).click()


#: Each form, who fills it, and input its rules refuse: (path, form, submit button, values).
REFUSED_FORMS = [
    (None, "register", "register-form", "register-submit", {"email": "not-an-address"}),
    (None, "sign-in", "sign-in-form", "sign-in-submit", {"login": "nobody@example.org"}),
    (None, "verify-email", "verify-email-form", "verify-email-submit", {"token": "forged"}),
    (VOLUNTEER, "me", "claim-form", "claim-submit", {"hours": "-1"}),
    (STAFF, "staff/donations", "receive-form", "receive-submit", {"quantity": "lots"}),
    (STAFF, "staff/issue", "issue-form", "issue-submit", {"quantity": "-2"}),
    (STAFF, "staff/shifts", "create-shift-form", "create-shift-submit", {"starts_at": ""}),
]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_refused_form_ties_its_errors_to_inputs_and_passes_the_audit(
    open_tab: OpenTab, lang: str
) -> None:
    problems: list[str] = []
    for who, path, form, submit, values in REFUSED_FORMS:
        tab = open_tab()
        if who is not None:
            sign_in(tab, RIVERSIDE, *who[RIVERSIDE])
        for screen, (width, height) in SCREENS.items():
            tab.page.set_viewport_size({"width": width, "height": height})
            tab.open(with_lang(f"/o/{RIVERSIDE}/{path}", lang))
            fill_and_submit(tab, form, submit, values)
            # Post/Redirect/Get: the address is the form's page again, not the POST's.
            assert tab.page.url.split("?")[0].endswith(f"/o/{RIVERSIDE}/{path}"), tab.page.url
            expect(tab.by_id("error")).to_be_visible()
            assert tab.page.title().startswith("Error: " if lang == "en" else "错误："), path
            invalid = tab.page.locator("[aria-invalid=true]")
            if invalid.count():  # a field's error: its input has the focus
                focused = tab.page.evaluate("document.activeElement.getAttribute('aria-invalid')")
                assert focused == "true", f"{path}: the first invalid input has no focus"
            tab.shoot(f"{screen}-{lang}-{page_name(f'/o/{RIVERSIDE}/{path}')}-refused")
            problems += [f"{screen} {lang} {path} refused: {v}" for v in audit(tab)]
            if scrolls_sideways(tab):
                problems.append(f"{screen} {lang} {path} refused: scrolls sideways")
            # The language switch leads to the form's page in the other language.
            with tab.page.expect_navigation():
                tab.by_id("lang-switch").click()
            assert "Method Not Allowed" not in tab.page.content()
        tab.assert_no_problems()
    assert not problems, "\n".join(problems)


def test_the_menu_folds_on_a_phone_and_opens_without_javascript(
    browser: Any, relief_hub: LiveServer
) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{relief_hub.url}/o/{RIVERSIDE}/?lang=en")
        rewards = page.locator("header nav").get_by_role("link", name="Rewards")
        expect(rewards).to_be_hidden()
        header = page.locator("header").bounding_box()
        assert header is not None and header["height"] <= 100, header
        page.locator("header summary").click()
        expect(rewards).to_be_visible()
        page.set_viewport_size({"width": 1280, "height": 900})
        page.reload()
        expect(rewards).to_be_visible()  # a wide screen shows the menu without a click
        expect(page.locator("header summary")).to_be_hidden()
    finally:
        context.close()


def test_keyboard_focus_is_drawn_with_enough_contrast(open_tab: OpenTab) -> None:
    tab = open_tab()
    tab.open(f"/o/{RIVERSIDE}/register?lang=en")
    tab.page.keyboard.press("Tab")
    skip = tab.page.evaluate("document.activeElement.textContent")
    assert skip.strip() == "Skip to content"
    weak = []
    for _ in range(12):
        style = tab.page.evaluate(
            """() => { const el = document.activeElement; const s = getComputedStyle(el);
                let bg = null;
                for (let n = el.parentElement; n; n = n.parentElement) {
                  const c = getComputedStyle(n).backgroundColor;
                  if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') { bg = c; break; } }
                return [el.outerHTML.slice(0, 80), s.outlineStyle, parseFloat(s.outlineWidth),
                        s.outlineColor, bg || 'rgb(255, 255, 255)']; }"""
        )
        html, outline, width, colour, behind = style
        if outline == "none" or width < 2 or contrast(colour, behind) < 3:
            weak.append(f"{html}: {outline} {width}px {colour} on {behind}")
        tab.page.keyboard.press("Tab")
    assert not weak, "\n".join(weak)


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two ``rgb(...)`` colours."""

    def luminance(colour: str) -> float:
        values = [int(float(v)) for v in re.findall(r"[\d.]+", colour)[:3]]
        linear = [
            v / 255 / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4
            for v in values
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_audit_finds_each_kind_of_violation_it_checks(open_tab: OpenTab) -> None:
    tab = open_tab()
    tab.page.set_content(
        """<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>h</h1>
        <p style="color: #bbbbbb">faint</p><input id="a"><input id="a" aria-describedby="gone">
        <div><a href="/x" style="display: inline-block; font-size: 8px; line-height: 8px">x</a><a
        href="/y" style="display: inline-block; font-size: 8px; line-height: 8px">y</a></div>
        <table><tr><th></th></tr><tr><td>1</td></tr></table>
        <svg width="20" height="20"><rect width="20" height="20"/></svg>
        <p>彩虹</p><button></button></main></body></html>"""
    )
    found = audit(tab)
    assert any(v.startswith("axe color-contrast") for v in found), found  # axe ran too
    rules = {violation.split(":", 1)[0] for violation in found}
    assert rules >= {
        "color-contrast",
        "label",
        "duplicate-id",
        "aria-reference",
        "target-size",
        "empty-table-header",
        "svg-img-alt",
        "language-of-parts",
        "name",
    }, rules
