"""relief_hub's staff pages: who may open them, goods in and out, shifts, and the dashboard."""

from __future__ import annotations

import re

import pytest
from relief_hub.hub_support import RAINBOW, Hub

from examples.relief_hub.demo import STAFF_PAGES
from ngo_kit import SYSTEM


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_open_every_staff_page_and_volunteers_get_a_403_page(hub: Hub, path: str) -> None:
    assert hub.browser("staff").get(f"/o/rainbow/{path}").status_code == 200
    refused = hub.browser("volunteer").get(f"/o/rainbow/{path}?lang=zh")
    assert refused.status_code == 403
    assert 'data-code="permission_denied"' in refused.text and "您无权查看此页面" in refused.text
    assert hub.browser().get(f"/o/rainbow/{path}").status_code == 303  # to the sign-in page


def test_staff_of_another_organisation_get_a_404(hub: Hub) -> None:
    browser = hub.browser()
    browser.sign_in("riverside", "other-staff@example.org")
    assert browser.get("/o/rainbow/staff/").status_code == 404
    assert browser.get("/o/riverside/staff/").status_code == 200


def _on_hand(hub: Hub, item: str) -> int:
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        return int(tx.inventory.on_hand(item))


def test_receiving_a_donation_adds_stock(hub: Hub) -> None:
    staff = hub.browser("staff")
    done = staff.submit(
        "/o/rainbow/staff/donations",
        data={
            "item": "comfort-kit",
            "quantity": "15",
            "location": "store",
            "donor": "李女士",
            "donation": "D-RB-9",
        },
    )
    assert "Received 15 × Comfort kit." in staff.follow(done).text
    assert _on_hand(hub, "comfort-kit") == 35


def test_a_bad_quantity_names_the_field_and_writes_nothing(hub: Hub) -> None:
    staff = hub.browser("staff")
    refused = staff.submit(
        "/o/rainbow/staff/donations",
        data={"item": "comfort-kit", "quantity": "-3", "location": "store", "donation": "X"},
    )
    assert _on_hand(hub, "comfort-kit") == 20
    refused = staff.follow(refused)
    assert refused.status_code == 422
    assert 'data-testid="error-quantity"' in refused.text
    assert 'value="-3"' in refused.text
    assert _on_hand(hub, "comfort-kit") == 20


def test_issuing_more_than_on_hand_is_refused(hub: Hub) -> None:
    staff = hub.browser("staff")
    refused = staff.submit(
        "/o/rainbow/staff/issue",
        data={"item": "comfort-kit", "quantity": "21", "location": "store", "recipient": "家庭 B"},
    )
    refused = staff.follow(refused)
    assert refused.status_code == 409
    assert "Not enough Comfort kit in stock: 21 asked for, 20 on hand." in refused.text
    done = staff.submit(
        "/o/rainbow/staff/issue",
        data={
            "item": "comfort-kit",
            "quantity": "4",
            "location": "store",
            "recipient": "家庭 B",
            "recipient_kind": "household",
        },
    )
    assert done.status_code == 303
    assert _on_hand(hub, "comfort-kit") == 16


def test_staff_create_an_activity_and_a_shift_in_local_time(hub: Hub) -> None:
    staff = hub.browser("staff")
    form = staff.get("/o/rainbow/staff/shifts").text
    assert re.search(
        r'<form [^>]*action="/o/rainbow/staff/activities" data-testid="create-activity-form">',
        form,
    )
    staff.submit("/o/rainbow/staff/shifts", "/o/rainbow/staff/activities", {"title": "义卖"})
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        activity = next(a for a in tx.volunteer.activities() if a.title == "义卖")
    made = staff.submit(
        "/o/rainbow/staff/shifts",
        data={
            "activity_id": str(activity.id),
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T12:00",
            "capacity": "4",
            "place": "商场",
        },
    )
    assert made.status_code == 303
    with hub.kit.begin(org=RAINBOW, actor=SYSTEM) as tx:
        (shift,) = tx.volunteer.shifts(activity_id=activity.id)
    assert shift.starts_at.hour == 1  # 09:00 in Shanghai is 01:00 UTC
    bad = staff.submit(
        "/o/rainbow/staff/shifts",
        data={"activity_id": str(activity.id), "starts_at": "soon", "ends_at": "", "capacity": ""},
    )
    bad = staff.follow(bad)
    assert bad.status_code == 422 and 'data-testid="error-starts_at"' in bad.text


def test_the_dashboard_draws_its_charts(hub: Hub) -> None:
    page = hub.browser("staff").get("/o/rainbow/staff/?lang=zh")
    for chart in ("chart-stock", "chart-hours", "chart-points"):
        assert f'data-testid="{chart}"' in page.text
    assert "安慰包" in page.text  # item names in the page's language
