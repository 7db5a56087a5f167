"""relief_hub's layout, language switch, registration, phone verification, sign-in and sign-out."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi.testclient import TestClient
from relief_hub.hub_support import PASSWORD, RAINBOW, Browser, Hub

from examples.relief_hub.app import MODULES, PLUGINS, create_relief_hub
from ngo_kit import SYSTEM
from ngo_kit.testing import KitFactory, MessageCatcher
from ngo_kit.web import SESSION_COOKIE

NEW_PERSON = {
    "display_name": "张伟",
    "email": "zhang.wei@example.org",
    "phone": "13800138001",
    "password": PASSWORD,
}


def _accounts(hub: Hub) -> int:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        return len(tx.registration.members())


def test_the_start_page_lists_each_organisation(browser: Browser) -> None:
    page = browser.get("/")
    assert page.status_code == 200
    assert 'data-testid="org-rainbow" href="/o/rainbow/"' in page.text
    assert "Riverside Flood Relief" in page.text


def test_the_organisation_home_page_names_it(browser: Browser) -> None:
    page = browser.get("/o/rainbow/")
    assert page.status_code == 200
    assert "彩虹儿童关爱中心" in page.text


def test_an_unknown_organisation_is_a_404_page(browser: Browser) -> None:
    page = browser.get("/o/nowhere/")
    assert page.status_code == 404
    assert 'data-code="not_found"' in page.text


def test_the_language_follows_accept_language_then_the_switch_and_stays(browser: Browser) -> None:
    assert "Sign in</a>" in browser.get("/o/rainbow/").text
    chinese = browser.get("/o/rainbow/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录</a>" in chinese.text
    switched = browser.get("/o/rainbow/?lang=zh")
    assert '<html lang="zh-CN">' in switched.text
    assert 'data-testid="lang-switch" href="/o/rainbow/?lang=en"' in switched.text
    cookie = switched.headers["set-cookie"]
    assert "relief_hub_lang=zh" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "登录</a>" in browser.get("/o/rainbow/register").text  # remembered in the cookie
    assert "Sign in</a>" in browser.get("/o/rainbow/?lang=en").text


def test_registering_signs_in_texts_a_code_and_verifying_it_succeeds(
    hub: Hub, browser: Browser
) -> None:
    answer = browser.submit("/o/rainbow/register", data=NEW_PERSON)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/o/rainbow/verify"
    session = browser.client.cookies.get(SESSION_COOKIE)
    assert session
    cookie_line = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie_line and "SameSite=lax" in cookie_line and "Secure" in cookie_line
    page = browser.follow(answer)
    assert "We sent a 6-digit code to your phone." in page.text
    assert 'data-testid="signed-in-as">张伟' in page.text
    wrong = browser.follow(browser.submit("/o/rainbow/verify", data={"code": "000000"}))
    assert wrong.status_code == 422
    assert 'data-testid="error-code"' in wrong.text
    code = hub.latest_code("+8613800138001")
    done = browser.submit("/o/rainbow/verify", data={"code": code})
    assert done.headers["location"] == "/o/rainbow/me"
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        user = tx.registration.find_user(email="zhang.wei@example.org")
    assert user.phone_verified


def test_asking_for_too_many_codes_says_so_on_the_verify_page(browser: Browser) -> None:
    browser.submit("/o/rainbow/register", data=NEW_PERSON)  # the first code
    resend = "/o/rainbow/verify/resend"
    answers = [browser.submit("/o/rainbow/verify", action=resend) for _ in range(6)]
    assert {a.status_code for a in answers[:4]} == {303}
    refused = browser.follow(answers[-1])
    assert refused.status_code == 429
    assert 'data-testid="error-code"' in refused.text
    assert "try again later" in refused.text


def test_the_page_sign_in_also_signs_in_the_api(browser: Browser) -> None:
    browser.submit("/o/rainbow/register", data=NEW_PERSON)
    me = browser.client.get("/api/orgs/rainbow/registration/me")
    assert me.status_code == 200
    assert me.json()["email"] == "zhang.wei@example.org"


def test_bad_registration_shows_the_field_error_and_writes_nothing(
    hub: Hub, browser: Browser
) -> None:
    before = _accounts(hub)
    answer = browser.submit(
        "/o/rainbow/register", data={**NEW_PERSON, "email": "not-an-address", "password": "x"}
    )
    assert answer.headers["location"] == "/o/rainbow/register"
    assert _accounts(hub) == before
    answer = browser.follow(answer)
    assert answer.status_code == 422
    assert 'data-testid="error-email"' in answer.text
    assert 'value="张伟"' in answer.text  # what was typed stays in the form
    assert _accounts(hub) == before
    assert SESSION_COOKIE not in browser.client.cookies


def test_a_common_password_is_refused_in_the_page_language(browser: Browser) -> None:
    browser.get("/o/rainbow/?lang=zh")
    answer = browser.submit("/o/rainbow/register", data={**NEW_PERSON, "password": "password123"})
    answer = browser.follow(answer)
    assert answer.status_code == 422
    found = re.search(r'data-testid="error-password">([^<]+)<', answer.text)
    assert found is not None and "常见" in found.group(1)


def test_a_required_consent_must_be_ticked(hub: Hub, browser: Browser) -> None:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        tx.registration.publish_consent(
            purpose="privacy", title="隐私政策", body="我们如何使用您的信息", required=True
        )
    form = browser.get("/o/rainbow/register")
    assert 'name="consent" value="privacy" data-testid="consent-privacy"' in form.text
    refused = browser.follow(browser.submit("/o/rainbow/register", data=NEW_PERSON))
    assert refused.status_code == 422
    assert 'data-testid="error-consents"' in refused.text
    accepted = browser.submit("/o/rainbow/register", data={**NEW_PERSON, "consent": "privacy"})
    assert accepted.status_code == 303


def test_sign_in_with_a_wrong_password_says_so_without_a_session(browser: Browser) -> None:
    answer = browser.submit(
        "/o/rainbow/sign-in", data={"login": "volunteer@example.org", "password": "wrong pass 1"}
    )
    assert SESSION_COOKIE not in browser.client.cookies
    answer = browser.follow(answer)
    assert answer.status_code == 401
    assert 'data-testid="error"' in answer.text
    assert SESSION_COOKIE not in browser.client.cookies


def test_sign_in_goes_to_next_inside_the_organisation_only(browser: Browser) -> None:
    login = {"login": "volunteer@example.org", "password": PASSWORD}
    inside = browser.submit("/o/rainbow/sign-in", data={**login, "next": "/o/rainbow/rewards"})
    assert inside.headers["location"] == "/o/rainbow/rewards"
    other = browser.submit(
        "/o/rainbow/sign-in", data={**login, "next": "https://evil.example/o/rainbow/"}
    )
    assert other.headers["location"] == "/o/rainbow/me"


def test_a_page_that_needs_a_member_sends_to_sign_in(browser: Browser) -> None:
    answer = browser.get("/o/rainbow/verify")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/o/rainbow/sign-in?next=/o/rainbow/verify"


def test_sign_out_ends_the_session(hub: Hub) -> None:
    browser = hub.browser("volunteer")
    assert browser.client.get("/api/orgs/rainbow/registration/me").status_code == 200
    answer = browser.submit("/o/rainbow/", "/o/rainbow/sign-out")
    assert answer.headers["location"] == "/o/rainbow/"
    assert browser.client.get("/api/orgs/rainbow/registration/me").status_code == 401


def test_registering_a_taken_address_names_nothing_and_sends_to_sign_in(
    hub: Hub, browser: Browser
) -> None:
    first = browser.submit("/o/rainbow/register", data=NEW_PERSON)
    assert first.status_code == 303
    other = hub.browser()
    again = other.submit(
        "/o/rainbow/register", data={**NEW_PERSON, "password": "someone else's guess 9"}
    )
    assert again.headers["location"] == "/o/rainbow/sign-in"
    page = other.follow(again)
    assert "Check your email or phone for what to do next" in page.text
    assert "already" not in page.text.lower()
    hub.kit.outbox.work()
    [told] = [
        m
        for m in hub.messages.to(NEW_PERSON["email"])
        if m.data.get("purpose") == "registration.tried-to-register"
    ]
    assert "有人尝试" in told.body


def test_a_form_without_or_with_a_forged_csrf_token_is_refused(hub: Hub) -> None:
    browser = hub.browser()
    before = _accounts(hub)
    missing = browser.client.post("/o/rainbow/register", data=NEW_PERSON)
    assert missing.status_code == 403
    assert 'data-code="csrf_refused"' in missing.text
    token = browser.token("/o/rainbow/register")
    forged = browser.client.post(
        "/o/rainbow/register", data={**NEW_PERSON, "csrf_token": token[:-2] + "xx"}
    )
    assert forged.status_code == 403
    zh = browser.client.post("/o/rainbow/register?lang=zh", data=NEW_PERSON)
    assert "表单已过期" in zh.text
    assert _accounts(hub) == before


def test_a_token_from_another_browser_is_refused(hub: Hub) -> None:
    mine, theirs = hub.browser(), hub.browser()
    token = theirs.token("/o/rainbow/register")
    mine.get("/o/rainbow/register")
    answer = mine.client.post("/o/rainbow/register", data={**NEW_PERSON, "csrf_token": token})
    assert answer.status_code == 403


def test_the_apps_outbox_worker_delivers_messages_while_it_runs(
    kit_factory: KitFactory, message_catcher: MessageCatcher
) -> None:
    kit = kit_factory(
        modules=list(MODULES), plugins=list(PLUGINS), outbox_dispatch_after_commit=False
    )
    kit.create_organisation(RAINBOW, "彩虹儿童关爱中心", settings={"phone_region": "CN"})
    app = create_relief_hub(kit, outbox_interval=0.05)
    with TestClient(app, base_url="https://testserver") as client:  # runs the lifespan
        Browser(client).submit("/o/rainbow/register", data=NEW_PERSON)
        deadline = time.monotonic() + 30
        while not message_catcher.to("+8613800138001") and time.monotonic() < deadline:
            time.sleep(0.05)
    assert message_catcher.to("+8613800138001")
    assert kit.outbox.pending() == 0


def test_every_page_names_an_icon_that_is_served(browser: Browser) -> None:
    page = browser.get("/o/rainbow/")
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.text)
    assert link is not None
    for path in (link.group(1), "/favicon.ico"):  # browsers ask for /favicon.ico on their own
        icon = browser.get(path)
        assert icon.status_code == 200, path
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.text.startswith("<svg")


def test_a_signed_in_member_sees_who_they_are_instead_of_the_registration_form(hub: Hub) -> None:
    page = hub.browser("volunteer").get("/o/rainbow/register?lang=zh")
    assert 'data-testid="register-signed-in"' in page.text
    assert "您已登录，当前账号：李小红。" in page.text
    assert 'data-testid="register-form"' not in page.text
    assert 'href="/o/rainbow/me"' in page.text
    english = hub.browser("volunteer").get("/o/rainbow/register")
    assert "You are signed in as 李小红." in english.text
    visitor = hub.browser().get("/o/rainbow/register")
    assert 'data-testid="register-form"' in visitor.text
    assert 'data-testid="register-signed-in"' not in visitor.text


def test_the_token_of_the_verification_email_confirms_the_address_on_its_page(
    hub: Hub, browser: Browser
) -> None:
    answer = browser.submit(
        "/o/rainbow/register",
        data={"display_name": "周杰", "email": "zhou@example.org", "password": "long walk home 7"},
    )
    assert answer.status_code == 303
    hub.kit.outbox.work()  # as the app's worker does
    sent = [m for m in hub.messages.to("zhou@example.org") if m.data.get("token")]
    token = str(sent[-1].data["token"])
    opened = browser.get(f"/o/rainbow/verify-email?token={token}")
    assert opened.status_code == 200 and f'value="{token}"' in opened.text
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        assert not tx.registration.find_user(email="zhou@example.org").email_verified
    forged = browser.submit("/o/rainbow/verify-email", data={"token": token[:-3] + "xyz"})
    forged = browser.follow(forged)
    assert forged.status_code == 422 and 'data-testid="error-token"' in forged.text
    done = browser.submit("/o/rainbow/verify-email", data={"token": token})
    assert done.headers["location"] == "/o/rainbow/me"
    assert "Your email address is verified." in browser.follow(done).text
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        assert tx.registration.find_user(email="zhou@example.org").email_verified
    stranger = hub.browser()
    again = stranger.follow(stranger.submit("/o/rainbow/verify-email", data={"token": token}))
    assert again.status_code == 422  # single use


#: What the page's own markup must not hold under a policy without inline script or style.
_INLINE_CODE = re.compile(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)


def _policy(res: Any) -> dict[str, list[str]]:
    parts = [p.split() for p in res.headers["content-security-policy"].split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def test_pages_and_error_pages_refuse_framing_and_hold_no_inline_code(hub: Hub) -> None:
    staff = hub.browser(signed_in_as="staff")
    pages = [
        staff.get("/"),
        staff.get("/o/rainbow/"),
        staff.get("/o/rainbow/shifts"),
        staff.get("/o/rainbow/transparency"),
        staff.get("/o/rainbow/staff/"),
        staff.get("/o/rainbow/me"),
        hub.browser().get("/o/rainbow/sign-in"),
        hub.browser().get("/o/no-such-organisation/"),  # the error page (404)
        hub.browser(signed_in_as="volunteer").get("/o/rainbow/staff/"),  # the error page (403)
    ]
    assert [p.status_code for p in pages] == [200] * 7 + [404, 403]
    for page in pages:
        policy = _policy(page)
        assert policy["frame-ancestors"] == ["'none'"], page.url
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], page.url
        assert page.headers["x-frame-options"] == "DENY", page.url
        assert page.headers["referrer-policy"] == "no-referrer", page.url
        assert '<link rel="stylesheet" href="/relief_hub.css">' in page.text, page.url
        assert not _INLINE_CODE.search(page.text), (page.url, _INLINE_CODE.search(page.text))


def test_the_stylesheet_is_a_file_of_the_app(browser: Browser) -> None:
    res = browser.get("/relief_hub.css")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/css")
    assert "header {" in res.text and "<" not in res.text


def test_a_forgotten_password_is_reset_through_the_emailed_link(hub: Hub, browser: Browser) -> None:
    sign_in = browser.get("/o/rainbow/sign-in").text
    assert 'href="/o/rainbow/forgot-password"' in sign_in
    sent = browser.submit("/o/rainbow/forgot-password", data={"login": "volunteer@example.org"})
    assert sent.headers["location"] == "/o/rainbow/sign-in"
    nobody = hub.browser().submit("/o/rainbow/forgot-password", data={"login": "no@example.org"})
    assert nobody.headers["location"] == sent.headers["location"]  # tells nobody who exists
    hub.kit.outbox.work()
    reset = [m for m in hub.messages.to("volunteer@example.org") if m.data.get("token")]
    token = str(reset[-1].data["token"])
    page = f"/o/rainbow/reset-password?token={token}"
    short = browser.follow(browser.submit(page, "/o/rainbow/reset-password", {"token": token}))
    assert short.status_code == 422 and 'data-testid="error-password"' in short.text
    assert f'name="token" value="{token}"' in short.text  # the link's token stays in the form
    done = browser.submit(
        page, "/o/rainbow/reset-password", {"token": token, "password": "a brand new phrase 9"}
    )
    assert done.headers["location"] == "/o/rainbow/sign-in"
    browser.sign_in("rainbow", "volunteer@example.org", "a brand new phrase 9")
