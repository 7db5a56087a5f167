"""The demo data: both organisations, their people and stories, seeded once."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from relief_hub.hub_support import Browser

from examples.relief_hub.app import MODULES, PLUGINS, create_relief_hub
from examples.relief_hub.seed import PEOPLE, seed
from ngo_kit import SYSTEM
from ngo_kit.testing import KitFactory


def test_the_seed_tells_both_stories_and_refuses_to_run_twice(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=list(MODULES), plugins=list(PLUGINS))
    assert seed(kit) is True
    assert seed(kit) is False
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        assert tx.require_org().name == "彩虹儿童关爱中心"
        assert tx.inventory.trace_donation("RB-2024-001").distributed == 65
        volunteer = tx.registration.find_user(email="li.volunteer@rainbow.example.org").id
        assert tx.points.balance(volunteer) > 0  # approved hours earned points
        assert [b.badge_code for b in tx.points.member_badges(volunteer)] == ["helper"]
        assert tx.points.redemptions(status="requested")
        assert tx.volunteer.claims()
    with kit.begin(org="riverside", actor=SYSTEM) as tx:
        assert {lot.item_code for lot in tx.inventory.expiring(within_days=30)} == {"medicine"}
    assert kit.verify() == []


def test_every_demo_account_signs_in(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=list(MODULES), plugins=list(PLUGINS))
    seed(kit)
    app = create_relief_hub(kit, deliver_messages=False)
    for person in PEOPLE:
        browser = Browser(TestClient(app, base_url="https://testserver"))
        browser.sign_in(person.org, person.email, person.password)
        me = browser.get(f"/o/{person.org}/me")
        assert re.search(r'data-testid="signed-in-as">' + re.escape(person.name), me.text)


def test_each_organisations_home_says_what_it_does_in_both_languages(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=list(MODULES), plugins=list(PLUGINS))
    seed(kit)
    browser = Browser(TestClient(create_relief_hub(kit, deliver_messages=False)))
    for org, english, chinese in (
        ("rainbow", "children treated for cancer", "患癌儿童"),
        ("riverside", "After the river flooded", "受灾家庭"),
    ):
        assert english in browser.get(f"/o/{org}/?lang=en").text
        assert chinese in browser.get(f"/o/{org}/?lang=zh").text


def _crawl(browser: Browser, start: str, org: str) -> dict[str, int]:
    """Every page reachable by links from ``start`` inside ``org`` (and the start page), with
    the status its address answers after redirects; forms are not submitted."""
    seen: dict[str, int] = {}
    todo = [start, "/"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        answer = browser.client.get(path, follow_redirects=True)
        seen[path] = answer.status_code
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        for href in re.findall(r'<a [^>]*href="([^"#]+)"', answer.text):
            href = href.replace("&amp;", "&").removeprefix("https://testserver")
            if href.startswith(f"/o/{org}/") or href in ("/", f"/o/{org}"):
                todo.append(href)
    return seen


def test_a_crawl_of_every_page_as_each_demo_person_finds_no_broken_link(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=list(MODULES), plugins=list(PLUGINS))
    seed(kit)
    app = create_relief_hub(kit, deliver_messages=False)
    broken = []
    for org in ("rainbow", "riverside"):
        people = [p for p in PEOPLE if p.org == org and p.key in ("staff", "volunteer")]
        for person in (None, *people):
            browser = Browser(TestClient(app, base_url="https://testserver"))
            if person is not None:
                browser.sign_in(org, person.email, person.password)
            for lang in ("en", "zh"):
                pages = _crawl(browser, f"/o/{org}/?lang={lang}", org)
                assert len(pages) > 5, pages
                who = person.key if person else "visitor"
                broken += [f"{org} {who} {p}: {s}" for p, s in pages.items() if s != 200]
    assert broken == []
