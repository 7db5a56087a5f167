"""relief_hub's volunteer pages: shifts and sign-up, the dashboard with its check-in pass,
hours claims, certificates, rewards, and the public transparency report."""

from __future__ import annotations

import re

from relief_hub.hub_support import RAINBOW, RIVERSIDE, Hub

from ngo_kit import SYSTEM


def test_a_new_member_becomes_an_applicant_then_signs_up_once_approved(hub: Hub) -> None:
    browser = hub.browser()
    browser.submit(
        "/o/rainbow/register",
        data={"display_name": "周杰", "email": "zhou@example.org", "password": "long walk home 7"},
    )
    shift = hub.shifts["rainbow"]
    page = browser.get("/o/rainbow/shifts")
    assert 'data-testid="profile-form"' in page.text
    assert f'data-testid="sign-up-{shift}"' not in page.text
    saved = browser.submit("/o/rainbow/shifts", "/o/rainbow/profile", {"city": "上海"})
    assert saved.status_code == 303
    waiting = browser.follow(saved)
    assert 'data-testid="profile-status">applicant' in waiting.text
    staff = hub.browser("staff")
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        newcomer = tx.registration.find_user(email="zhou@example.org").id
    listed = staff.get("/o/rainbow/staff/volunteers")
    assert f'data-testid="approve-{newcomer}"' in listed.text
    approved = staff.submit(
        "/o/rainbow/staff/volunteers", f"/o/rainbow/staff/volunteers/{newcomer}/approve"
    )
    assert approved.status_code == 303
    signed = browser.submit("/o/rainbow/shifts", f"/o/rainbow/shifts/{shift}/sign-up")
    assert "You are signed up." in browser.follow(signed).text
    assert f'data-testid="signed-up-{shift}">confirmed' in browser.get("/o/rainbow/shifts").text


def test_signing_up_twice_shows_the_kits_error_and_changes_nothing(hub: Hub) -> None:
    browser = hub.browser("volunteer")
    shift = hub.shifts["rainbow"]
    browser.submit("/o/rainbow/shifts", f"/o/rainbow/shifts/{shift}/sign-up")
    again = browser.follow(
        browser.submit("/o/rainbow/shifts", f"/o/rainbow/shifts/{shift}/sign-up")
    )
    assert again.status_code == 409
    assert 'data-testid="error"' in again.text
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        assert tx.volunteer.shift(shift).taken == 1


def test_the_dashboard_shows_the_pass_and_staff_check_in_through_its_link(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    shift = hub.shifts["rainbow"]
    volunteer.submit("/o/rainbow/shifts", f"/o/rainbow/shifts/{shift}/sign-up")
    me = volunteer.get("/o/rainbow/me")
    assert me.status_code == 200
    assert 'data-testid="points-balance">0<' in me.text
    assert re.search(rf'data-testid="checkin-qr-{shift}" [^>]*><svg role="img"', me.text)
    link = re.search(rf'data-testid="checkin-qr-{shift}" data-check-in-url="([^"]+)"', me.text)
    assert link is not None
    path = link.group(1).replace("&amp;", "&").removeprefix("https://testserver")
    assert path.startswith("/o/rainbow/staff/check-in?token=")
    assert volunteer.get(path).status_code == 403  # the volunteer cannot check themselves in
    staff = hub.browser("staff")
    opened = staff.get(path)
    assert 'data-testid="check-in-volunteer">李小红' in opened.text
    token = path.split("token=", 1)[1]
    done = staff.submit(path, "/o/rainbow/staff/check-in", {"token": token})
    assert "李小红 is checked in." in staff.follow(done).text
    completed = staff.submit("/o/rainbow/staff/hours", f"/o/rainbow/staff/shifts/{shift}/complete")
    assert completed.status_code == 303
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        volunteer_id = hub.people["volunteer"]
        hours = tx.volunteer.profile(volunteer_id).hours_total
        balance = tx.points.balance(volunteer_id)
    assert hours > 0 and balance == int(hours * 10)  # hours_points: 10 points an hour
    page = volunteer.get("/o/rainbow/me")
    assert f'data-testid="points-balance">{balance}<' in page.text


def test_a_forged_pass_shows_the_error_and_checks_nobody_in(hub: Hub) -> None:
    staff = hub.browser("staff")
    page = staff.get("/o/rainbow/staff/check-in?token=forged.token.value")
    assert page.status_code == 400
    assert 'data-code="token_tampered"' not in page.text  # a form page, not an error page
    assert 'data-testid="error"' in page.text


def test_claims_are_approved_by_staff_and_earn_points(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    bad = volunteer.submit("/o/rainbow/me", "/o/rainbow/me/claims", {"served_on": "", "hours": "3"})
    bad = volunteer.follow(bad)
    assert bad.status_code == 422 and 'data-testid="error-served_on"' in bad.text
    ok = volunteer.submit(
        "/o/rainbow/me",
        "/o/rainbow/me/claims",
        {"served_on": "2026-01-10", "hours": "2.5", "description": "打电话联系捐赠方"},
    )
    assert ok.status_code == 303
    staff = hub.browser("staff")
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        (claim,) = tx.volunteer.claims()
    listed = staff.get("/o/rainbow/staff/hours")
    assert f'data-testid="claim-{claim.id}"' in listed.text
    staff.submit("/o/rainbow/staff/hours", f"/o/rainbow/staff/claims/{claim.id}/approve")
    assert 'data-testid="points-balance">25<' in volunteer.get("/o/rainbow/me").text


def test_a_volunteer_gets_a_certificate_pdf_for_their_hours(hub: Hub) -> None:
    volunteer = hub.browser("volunteer")
    made = volunteer.submit("/o/rainbow/me", "/o/rainbow/me/certificates")
    page = volunteer.follow(made)
    link = re.search(r'data-testid="certificate-pdf-[^"]+" href="([^"]+)"', page.text)
    assert link is not None
    pdf = volunteer.get(link.group(1))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert hub.browser("staff").get(link.group(1)).status_code == 200  # staff may see it too


def test_redeeming_a_stock_backed_reward_issues_the_goods_when_staff_hand_it_over(
    hub: Hub,
) -> None:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        kit = tx.points.add_reward(code="kit", name="Comfort kit", name_zh="安慰包", price=20)
        tx.rewards_stock.link(
            reward_id=kit.id, item="comfort-kit", location="store", fulfil="by_staff"
        )
        tx.points.award(hub.people["volunteer"], 50, reason="welcome")
    volunteer = hub.browser("volunteer")
    page = volunteer.get("/o/rainbow/rewards?lang=zh")
    assert f'data-testid="redeem-{kit.id}"' in page.text and "安慰包" in page.text
    redeemed = volunteer.submit("/o/rainbow/rewards", f"/o/rainbow/rewards/{kit.id}/redeem")
    assert redeemed.status_code == 303
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        (redemption,) = tx.points.redemptions(status="requested")
    mine = volunteer.get("/o/rainbow/rewards?lang=en")
    assert re.search(rf'data-testid="redemption-{redemption.id}">[^<]*requested', mine.text)
    staff = hub.browser("staff")
    assert f'data-testid="fulfil-{redemption.id}"' in staff.get("/o/rainbow/staff/redemptions").text
    staff.submit(
        "/o/rainbow/staff/redemptions", f"/o/rainbow/staff/redemptions/{redemption.id}/fulfil"
    )
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        assert tx.points.redemption(redemption.id).status == "fulfilled"
        assert tx.inventory.on_hand("comfort-kit") == 19


def test_redeeming_without_enough_points_shows_the_error(hub: Hub) -> None:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        gift = tx.points.add_reward(code="gift", name="Gift", price=500)
    volunteer = hub.browser("volunteer")
    answer = volunteer.follow(
        volunteer.submit("/o/rainbow/rewards", f"/o/rainbow/rewards/{gift.id}/redeem")
    )
    assert answer.status_code == 409
    assert "Not enough points" in answer.text


def test_transparency_is_public_where_published_and_names_no_recipient(hub: Hub) -> None:
    visitor = hub.browser()
    assert visitor.get("/o/rainbow/transparency").status_code == 403
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        tx.inventory.issue(item="comfort-kit", quantity=5, from_="store", recipient="王小明")
        tx.tenancy.update_organisation(
            settings={**tx.require_org().settings, "inventory.public_trace": True}
        )
    page = visitor.get("/o/rainbow/transparency")
    assert page.status_code == 200
    assert 'data-testid="donation-D-RB-1"' in page.text
    assert 'data-testid="chart-D-RB-1"' in page.text
    assert "王小明" not in page.text and "爱心企业" in page.text
    assert "D-RS-1" not in page.text  # riverside's donation never shows on rainbow's page
    assert ": <strong>" in page.text
    chinese = visitor.get("/o/rainbow/transparency?lang=zh").text
    assert "：<strong>" in chinese and ": <strong>" not in chinese


def test_an_approved_volunteer_of_one_organisation_sees_nothing_of_another(hub: Hub) -> None:
    browser = hub.browser("volunteer")
    assert browser.get("/o/riverside/me").status_code == 404
    shifts = browser.get("/o/riverside/shifts")
    assert hub.shifts["rainbow"].hex not in shifts.text.replace("-", "")
    assert RIVERSIDE in shifts.text


def test_in_chinese_the_claim_forms_hours_field_is_not_the_staff_pages_title(hub: Hub) -> None:
    me = hub.browser("volunteer").get("/o/rainbow/me?lang=zh")
    assert '<label for="hours">时长（小时）</label>' in me.text
    staff = hub.browser("staff").get("/o/rainbow/staff/hours?lang=zh")
    assert "<h1>志愿服务时长</h1>" in staff.text


def _left(page: str, reward: object) -> str:
    found = re.search(rf'data-testid="left-{reward}">([^<]*)<', page)
    assert found is not None, f"no left-{reward} on the page"
    return found.group(1)


def test_a_stock_backed_reward_shows_the_whole_units_its_stock_covers(hub: Hub) -> None:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        trio = tx.points.add_reward(code="trio", name="Three comfort kits", price=20)
        tx.rewards_stock.link(
            reward_id=trio.id, item="comfort-kit", location="store", quantity=3, fulfil="by_staff"
        )
        pair = tx.points.add_reward(code="pair", name="Two kits, two left", price=5, stock=2)
        tx.rewards_stock.link(reward_id=pair.id, item="comfort-kit", location="store", quantity=2)
        card = tx.points.add_reward(code="card", name="Thank-you card", price=5)
        tx.points.award(hub.people["volunteer"], 50, reason="welcome")
    # 20 kits in the store: 6 rewards of 3 (a visitor without inventory rights sees it too)
    for browser in (hub.browser(), hub.browser("volunteer")):
        page = browser.get("/o/rainbow/rewards").text
        assert _left(page, trio.id) == "6"
        assert _left(page, pair.id) == "2"  # the catalogue's own count is the smaller
        assert _left(page, card.id) == "∞"
    volunteer = hub.browser("volunteer")
    volunteer.submit("/o/rainbow/rewards", f"/o/rainbow/rewards/{trio.id}/redeem")
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        (redemption,) = tx.points.redemptions(status="requested")
        tx.points.fulfil(redemption.id)  # 3 kits leave: 17 left, 5 whole rewards
    assert _left(volunteer.get("/o/rainbow/rewards").text, trio.id) == "5"
