"""relief_hub's forms and error pages as people meet them: a refused form comes back through a
redirect with every error beside its field, the language switch keeps the address, error pages
keep the site's frame, and the volunteer's pass is a page the volunteer may open."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

import pytest
from relief_hub.hub_support import Browser, Hub

from ngo_kit import SYSTEM


def lang_switch(page: str) -> str:
    """Where the layout's language switch leads."""
    found = re.search(r'<a [^>]*data-testid="lang-switch" href="([^"]+)"', page)
    assert found is not None, page[:2000]
    return html.unescape(found.group(1))


def title(page: str) -> str:
    """The page's ``<title>``."""
    found = re.search(r"<title>([^<]*)</title>", page)
    assert found is not None
    return html.unescape(found.group(1))


# --- Post/Redirect/Get ---------------------------------------------------------------------


def test_a_refused_form_redirects_to_its_page_which_shows_the_errors_once(hub: Hub) -> None:
    staff = hub.browser("staff")
    refused = staff.submit(
        "/o/rainbow/staff/issue",
        data={"item": "comfort-kit", "quantity": "lots", "location": "store", "recipient": ""},
    )
    assert refused.status_code == 303
    assert refused.headers["location"] == "/o/rainbow/staff/issue"
    shown = staff.follow(refused)
    assert shown.status_code == 422
    assert 'data-testid="error-quantity"' in shown.text
    assert 'value="lots"' in shown.text  # what was typed is kept
    # The language switch now leads to the form's page, not to a POST-only address.
    switched = staff.get(lang_switch(shown.text))
    assert switched.status_code == 200
    assert 'data-testid="error-quantity"' not in switched.text  # kept for one render only


def test_a_refused_sign_in_keeps_the_login_and_where_to_go_next(browser: Browser) -> None:
    page = "/o/rainbow/sign-in?next=/o/rainbow/shifts"
    refused = browser.submit(
        page,
        "/o/rainbow/sign-in",
        {"login": "staff@example.org", "password": "wrong", "next": "/o/rainbow/shifts"},
    )
    assert refused.status_code == 303
    assert refused.headers["location"] == "/o/rainbow/sign-in?next=%2Fo%2Frainbow%2Fshifts"
    shown = browser.follow(refused)
    assert shown.status_code == 401
    assert 'value="staff@example.org"' in shown.text
    assert 'name="next" value="/o/rainbow/shifts"' in shown.text
    assert 'data-testid="error"' in shown.text


def test_the_language_switch_keeps_the_path_and_the_query(browser: Browser) -> None:
    page = browser.get("/o/rainbow/sign-in?next=/o/rainbow/shifts&lang=en")
    assert lang_switch(page.text) == "/o/rainbow/sign-in?next=%2Fo%2Frainbow%2Fshifts&lang=zh"
    chinese = browser.get(lang_switch(page.text))
    assert 'name="next" value="/o/rainbow/shifts"' in chinese.text
    assert 'lang="zh-CN"' in chinese.text


def test_a_kept_form_cannot_be_forged(browser: Browser) -> None:
    browser.client.cookies.set("relief_hub_form", '{"path": "/o/rainbow/sign-in"}')
    page = browser.get("/o/rainbow/sign-in")
    assert page.status_code == 200 and 'data-testid="error"' not in page.text


# --- error pages -----------------------------------------------------------------------------


def test_an_error_page_keeps_the_organisation_and_who_is_signed_in(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    refused = volunteer.get("/o/rainbow/staff/", headers={"Accept-Language": "en"})
    assert refused.status_code == 403
    assert "彩虹儿童关爱中心" in refused.text  # the organisation's header
    assert 'data-testid="signed-in-as">李小红<' in refused.text
    assert "attendance.record" not in refused.text and "volunteer.view" not in refused.text
    assert "This page is for the organisation&#39;s staff." in refused.text


def test_an_unknown_page_is_an_html_page_in_the_sites_frame(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    missing = volunteer.get("/o/rainbow/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert 'data-testid="signed-in-as">李小红<' in missing.text
    malformed = volunteer.get("/o/rainbow/me/passes/not-an-id")
    assert malformed.status_code == 404 and malformed.headers["content-type"].startswith("text/")
    api = volunteer.get("/api/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/")


def test_opening_a_form_address_again_is_a_page_not_json(hub: Hub) -> None:
    staff = hub.browser("staff")
    answer = staff.get("/o/rainbow/staff/claims/00000000-0000-0000-0000-000000000000/approve")
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert 'data-testid="signed-in-as">王老师<' in answer.text


def test_a_non_member_hears_that_the_page_is_for_members(hub: Hub) -> None:
    other = hub.browser("other-staff", org="riverside")
    answer = other.get("/o/rainbow/staff/", headers={"Accept-Language": "en"})
    assert answer.status_code == 404
    assert "This page is for members of 彩虹儿童关爱中心." in answer.text
    assert "Organisation rainbow was not found" not in answer.text


# --- the volunteer's check-in pass -------------------------------------------------------------


def test_the_volunteers_pass_link_opens_a_page_the_volunteer_may_use(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    shift = hub.shifts["rainbow"]
    volunteer.submit("/o/rainbow/shifts", f"/o/rainbow/shifts/{shift}/sign-up")
    me = volunteer.get("/o/rainbow/me")
    links = re.findall(r'<a [^>]*href="([^"]+)"', me.text)
    assert not [link for link in links if "/staff/" in link]  # no staff page for volunteers
    found = re.search(rf'data-testid="pass-link-{shift}" href="([^"]+)"', me.text)
    assert found is not None
    shown = volunteer.get(found.group(1))
    assert shown.status_code == 200
    assert re.search(r'<svg role="img" aria-label="[^"]+"', shown.text)
    assert f'data-testid="checkin-qr-{shift}"' in shown.text


# --- errors that speak to people ---------------------------------------------------------------


def visible_text(page: str) -> str:
    """What a reader sees: the page without its tags (and their attributes)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page.split("<body>", 1)[1]))


def test_every_field_error_shows_at_once_under_its_translated_label(hub: Hub) -> None:
    staff = hub.browser("staff")
    staff.get("/o/rainbow/?lang=zh")
    refused = staff.submit(
        "/o/rainbow/staff/shifts",
        data={"activity_id": "", "starts_at": "soon", "ends_at": "later", "capacity": "many"},
    )
    shown = staff.follow(refused)
    errors = dict(re.findall(r'data-testid="error-(\w+)">([^<]+)<', shown.text))
    assert {"starts_at", "ends_at", "capacity"} <= set(errors), errors
    assert errors["starts_at"].startswith("开始时间：")
    assert not [m for m in errors.values() if re.search(r"starts_at|ends_at|capacity", m)]
    # Each error is tied to its input, and the first invalid input takes the focus.
    assert re.search(
        r'id="starts_at" aria-invalid="true" aria-describedby="error-starts_at"', shown.text
    )
    assert shown.text.count(" autofocus") == 1
    assert title(shown.text).startswith("错误：")


def test_stock_shows_names_and_quantities_without_trailing_zeros(hub: Hub) -> None:
    staff = hub.browser("staff")
    page = staff.get("/o/rainbow/staff/issue?lang=zh")
    text = visible_text(page.text)
    assert "安慰包" in text and "仓库" in text
    assert "comfort-kit" not in text and "store" not in text
    assert "20.0000" not in text and re.search(r"\b20\b", text)
    refused = staff.submit(
        "/o/rainbow/staff/issue",
        data={"item": "comfort-kit", "quantity": "21", "location": "store", "recipient": "家庭"},
    )
    assert "安慰包库存不足：需要 21，现有 20。" in staff.follow(refused).text


# --- what a screen reader and a keyboard meet ----------------------------------------------------


def test_an_applicant_sees_a_disabled_sign_up_awaiting_approval(hub: Hub) -> None:
    browser = hub.browser()
    browser.submit(
        "/o/rainbow/register",
        data={"display_name": "周杰", "email": "zhou@example.org", "password": "long walk home 7"},
    )
    browser.submit("/o/rainbow/shifts", "/o/rainbow/profile", {"city": "上海"})
    page = browser.get("/o/rainbow/shifts?lang=en").text
    shift = hub.shifts["rainbow"]
    button = re.search(rf'<button [^>]*data-testid="sign-up-{shift}"[^>]*>', page)
    assert button is not None and " disabled" in button.group(0)
    assert "awaiting approval" in page


def test_tables_have_no_empty_header_and_sentences_are_whole(hub: Hub) -> None:
    visitor = hub.browser()
    staff = hub.browser("staff")
    pages = [
        visitor.get("/o/rainbow/shifts?lang=zh"),
        visitor.get("/o/rainbow/rewards"),
        staff.get("/o/rainbow/staff/hours"),
        staff.get("/o/rainbow/staff/shifts"),
        staff.get("/o/rainbow/staff/issue"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert not re.search(r"<th[^>]*>\s*</th>", page.text), page.url
    assert "登录</a>或<a" in pages[0].text and "后即可报名班次。" in pages[0].text


def test_names_in_the_other_language_and_the_language_link_carry_lang(hub: Hub) -> None:
    page = hub.browser("volunteer").get("/o/rainbow/?lang=en").text
    assert '<a href="/o/rainbow/" lang="zh-CN">彩虹儿童关爱中心</a>' in page
    assert '<span lang="zh-CN" data-testid="signed-in-as">李小红</span>' in page
    assert re.search(r'<a [^>]*data-testid="lang-switch"[^>]* lang="zh-CN"[^>]*>中文</a>', page)
    assert '<a class="skip" href="#content">' in page and '<main id="content"' in page


def test_the_register_form_says_what_each_field_autocompletes(browser: Browser) -> None:
    page = browser.get("/o/rainbow/register").text
    for field, token in (("display_name", "name"), ("email", "email"), ("phone", "tel")):
        tag = re.search(rf'<input [^>]*id="{field}"[^>]*>', page)
        assert tag is not None and f'autocomplete="{token}"' in tag.group(0), field


# --- one-click actions that cannot be undone ---------------------------------------------------


def test_completing_a_shift_and_redeeming_take_a_confirmation_step(hub: Hub) -> None:
    staff = hub.browser("staff")
    shift = hub.shifts["rainbow"]
    hours = staff.get("/o/rainbow/staff/hours?lang=en").text
    assert f'<form method="post" action="/o/rainbow/staff/shifts/{shift}/complete"' not in hours
    confirm = staff.get(f"/o/rainbow/staff/shifts/{shift}/complete")
    assert confirm.status_code == 200
    assert 'data-testid="warning"' in confirm.text  # the shift is two days ahead
    assert 'data-testid="confirm-complete"' in confirm.text
    with hub.kit.begin(org="rainbow", actor=SYSTEM) as tx:
        gift = tx.points.add_reward(code="gift", name="Gift", price=5)
    volunteer = hub.browser("volunteer")
    rewards = volunteer.get("/o/rainbow/rewards").text
    assert f'action="/o/rainbow/rewards/{gift.id}/redeem"' not in rewards
    step = volunteer.get(f"/o/rainbow/rewards/{gift.id}/redeem?lang=en")
    assert step.status_code == 200 and "It costs 5 points." in step.text
    assert f'action="/o/rainbow/rewards/{gift.id}/redeem"' in step.text


def test_staff_check_in_by_name_from_todays_roster(hub: Hub) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=30)
    with hub.kit.begin(org="rainbow", actor=SYSTEM) as tx:
        activity = tx.volunteer.create_activity(title="今日分装", place="仓库")
        today = tx.volunteer.create_shift(
            activity_id=activity.id,
            starts_at=start,
            ends_at=start + dt.timedelta(hours=1),
            capacity=5,
        )
    if today.starts_at.astimezone(ZoneInfo("Asia/Shanghai")).date() != (
        dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    ):
        pytest.skip("half an hour from now is tomorrow in Shanghai")
    volunteer = hub.browser("volunteer")
    volunteer.submit("/o/rainbow/shifts", f"/o/rainbow/shifts/{today.id}/sign-up")
    staff = hub.browser("staff")
    page = staff.get("/o/rainbow/staff/check-in").text
    button = f'data-testid="check-in-{today.id}-{hub.people["volunteer"]}"'
    assert button in page and "李小红" in page
    done = staff.submit(
        "/o/rainbow/staff/check-in",
        f"/o/rainbow/staff/shifts/{today.id}/check-in/{hub.people['volunteer']}",
    )
    assert "李小红 is checked in." in staff.follow(done).text
    assert button not in staff.get("/o/rainbow/staff/check-in").text


def test_the_transparency_page_names_the_date_and_goods_and_shows_no_zero_rows(hub: Hub) -> None:
    with hub.kit.begin(org="rainbow", actor=SYSTEM) as tx:
        tx.inventory.issue(item="comfort-kit", quantity=2, from_="store", recipient="家庭 C")
    staff = hub.browser("staff")
    page = staff.get("/o/rainbow/transparency?lang=zh")
    assert page.status_code == 200
    text = visible_text(page.text)
    assert re.search(r"接收日期：\d{4}-\d\d-\d\d", text)
    assert "已报损：0" not in text and "报损：0" not in text
    english = visible_text(staff.get("/o/rainbow/transparency?lang=en").text)
    assert "Scrapped: 0" not in english and "Returned: 0" not in english
    assert re.search(r"Received on: \d{4}-\d\d-\d\d", english)
    assert "Beneficiaries" in english  # a group's name, not the recorded word "beneficiary"
    assert "Goods: Comfort kit" in english
    chart = re.search(r'<svg [^>]*data-testid="chart-D-RB-1".*?</svg>', page.text, re.S)
    assert chart is not None and ": " not in chart.group(0)  # Chinese legends: full-width colon


def test_a_refused_permission_is_said_in_words_not_by_its_code(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    missing = "00000000-0000-0000-0000-000000000000"
    refused = volunteer.submit("/o/rainbow/me", f"/o/rainbow/staff/claims/{missing}/approve")
    shown = volunteer.follow(refused)
    assert shown.status_code == 403
    assert "You are not allowed to do this here." in shown.text
    assert "hours.approve" not in shown.text
