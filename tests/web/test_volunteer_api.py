"""The volunteer module over HTTP: a volunteer registers, signs in, is approved, signs up to a
shift, checks in with the shift's QR code, and sees hours and the points they earned; the
public certificate check; permissions, errors and tenancy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from web_api_support import OTHER, ZH, Api, HoursEarnPoints, Person, problem_of


@pytest.fixture
def bridged(api_factory: Callable[..., Api]) -> Api:
    """The app with a bridge that turns approved hours into points (10 an hour)."""
    return api_factory(plugins=(HoursEarnPoints(),))


def _approved_volunteer(api: Api, name: str, staff: Person) -> Person:
    volunteer = api.join(name)
    profile = api.client.post(
        api.url("volunteer/profiles"),
        json={"user_id": str(volunteer.id), "city": "Chengdu", "languages": ["zh", "en"]},
        headers=volunteer.auth,
    )
    assert profile.status_code == 201, profile.text
    assert profile.json()["status"] == "applicant"
    approved = api.client.post(
        api.url(f"volunteer/profiles/{volunteer.id}/approve"), headers=staff.auth
    )
    assert approved.status_code == 200, approved.text
    return volunteer


def _shift(api: Api, staff: Person, capacity: int = 2, starts_in_minutes: int = 10) -> str:
    activity = api.client.post(
        api.url("volunteer/activities"),
        json={"title": "Food bank sorting", "place": "Warehouse 2"},
        headers=staff.auth,
    )
    assert activity.status_code == 201, activity.text
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=starts_in_minutes)
    shift = api.client.post(
        api.url("volunteer/shifts"),
        json={
            "activity_id": activity.json()["id"],
            "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
            "capacity": capacity,
        },
        headers=staff.auth,
    )
    assert shift.status_code == 201, shift.text
    shift_id: str = shift.json()["id"]
    return shift_id


def test_a_volunteer_signs_up_checks_in_and_sees_hours_and_points(bridged: Api) -> None:
    api = bridged
    staff = api.join("coordinator", role="staff")
    volunteer = _approved_volunteer(api, "xiaoming", staff)
    shift_id = _shift(api, staff)

    listed = api.client.get(api.url("volunteer/shifts?open_only=true"), headers=volunteer.auth)
    assert [s["id"] for s in listed.json()] == [shift_id]
    signed = api.client.post(
        api.url(f"volunteer/shifts/{shift_id}/sign-up"), json={}, headers=volunteer.auth
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["status"] == "confirmed"
    mine = api.client.get(api.url("volunteer/me/signups"), headers=volunteer.auth).json()
    assert [s["shift_id"] for s in mine] == [shift_id]

    token = api.client.get(
        api.url(f"volunteer/shifts/{shift_id}/checkin-token"), headers=staff.auth
    ).json()["token"]
    qr = api.client.get(api.url(f"volunteer/shifts/{shift_id}/checkin-qr"), headers=staff.auth)
    assert (qr.status_code, qr.headers["content-type"]) == (200, "image/svg+xml")
    assert b"<svg" in qr.content
    arrived = api.client.post(
        api.url(f"volunteer/shifts/{shift_id}/check-in"),
        json={"token": token},
        headers=volunteer.auth,
    )
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["checked_in_at"] is not None

    done = api.client.post(api.url(f"volunteer/shifts/{shift_id}/complete"), headers=staff.auth)
    assert done.status_code == 200, done.text
    assert done.json()["attended"] == [str(volunteer.id)]

    hours = api.client.get(api.url("volunteer/me/hours"), headers=volunteer.auth).json()
    assert [Decimal(h["hours"]) for h in hours] == [Decimal(2)]
    points = api.client.get(api.url("points/me"), headers=volunteer.auth).json()
    assert points["balance"] == 20
    profile = api.client.get(api.url("volunteer/me/profile"), headers=volunteer.auth).json()
    assert Decimal(profile["hours_total"]) == Decimal(2)

    cert = api.client.post(
        api.url("volunteer/certificates"), json={"user_id": str(volunteer.id)}, headers=staff.auth
    )
    assert cert.status_code == 201, cert.text
    check = api.client.get("/api/certificates/verify", params={"token": cert.json()["token"]})
    assert check.status_code == 200, check.text
    assert (check.json()["hours"], check.json()["organisation"]) == ("2", "Rainbow Charity")
    assert check.json()["number"] == cert.json()["number"] and cert.json()["hours"] == "2"
    pdf = api.client.get(
        api.url(f"volunteer/certificates/{cert.json()['id']}/pdf"), headers=volunteer.auth
    )
    assert (pdf.status_code, pdf.headers["content-type"]) == (200, "application/pdf")
    assert pdf.content.startswith(b"%PDF")
    forged = api.client.get(
        "/api/certificates/verify", params={"token": cert.json()["token"][:-2] + "xx"}
    )
    assert forged.status_code == 400
    assert forged.json()["code"].startswith("token_")


def test_a_full_shift_without_waitlist_is_a_409_in_both_languages(api: Api) -> None:
    staff = api.join("coord", role="staff")
    first = _approved_volunteer(api, "ada", staff)
    second = _approved_volunteer(api, "bei", staff)
    shift_id = _shift(api, staff, capacity=1)
    url = api.url(f"volunteer/shifts/{shift_id}/sign-up")
    assert api.client.post(url, json={}, headers=first.auth).status_code == 201
    en = problem_of(
        api.client.post(url, json={"waitlist": False}, headers=second.auth), 409, "shift_full"
    )
    zh = problem_of(
        api.client.post(url, json={"waitlist": False}, headers={**second.auth, **ZH}),
        409,
        "shift_full",
    )
    assert en["detail"] != zh["detail"]
    waiting = api.client.post(url, json={}, headers=second.auth).json()
    assert (waiting["status"], waiting["position"]) == ("waitlisted", 1)
    cancelled = api.client.post(
        api.url(f"volunteer/shifts/{shift_id}/cancel"), json={}, headers=first.auth
    )
    assert cancelled.json()["status"] == "cancelled"
    promoted = api.client.get(api.url("volunteer/me/signups"), headers=second.auth).json()
    assert promoted[0]["status"] == "confirmed"


def test_checking_in_with_another_shifts_code_is_refused(api: Api) -> None:
    staff = api.join("coord", role="staff")
    volunteer = _approved_volunteer(api, "cai", staff)
    mine, other = _shift(api, staff), _shift(api, staff, starts_in_minutes=200)
    api.client.post(api.url(f"volunteer/shifts/{mine}/sign-up"), json={}, headers=volunteer.auth)
    token = api.client.get(
        api.url(f"volunteer/shifts/{other}/checkin-token"), headers=staff.auth
    ).json()["token"]
    res = api.client.post(
        api.url(f"volunteer/shifts/{mine}/check-in"), json={"token": token}, headers=volunteer.auth
    )
    assert res.status_code == 400
    assert res.json()["code"].startswith("token_")


def test_volunteers_cannot_manage_shifts_or_attendance(api: Api) -> None:
    staff = api.join("coord", role="staff")
    volunteer = _approved_volunteer(api, "dan", staff)
    shift_id = _shift(api, staff)
    created = api.client.post(
        api.url("volunteer/activities"), json={"title": "Mine"}, headers={**volunteer.auth, **ZH}
    )
    body = problem_of(created, 403, "permission_denied")
    assert body["permission"] == "shifts.manage"
    token = api.client.get(
        api.url(f"volunteer/shifts/{shift_id}/checkin-token"), headers=volunteer.auth
    )
    assert problem_of(token, 403, "permission_denied")["permission"] == "attendance.record"
    problem_of(api.client.get(api.url("volunteer/shifts")), 401, "authentication_required")
    someone = api.client.post(
        api.url(f"volunteer/shifts/{shift_id}/sign-up"),
        json={"user_id": str(staff.id)},
        headers=volunteer.auth,
    )
    assert problem_of(someone, 403, "permission_denied")["permission"] == "shifts.manage"


def test_one_organisations_shifts_never_show_through_anothers_path(api: Api) -> None:
    staff = api.join("coord", role="staff")
    volunteer = _approved_volunteer(api, "eva", staff)
    shift_id = _shift(api, staff)
    outsider = api.join("fay", org=OTHER, role="staff")
    assert api.client.get(api.url("volunteer/shifts", OTHER), headers=outsider.auth).json() == []
    assert (
        api.client.get(api.url("volunteer/activities", OTHER), headers=outsider.auth).json() == []
    )
    problem_of(
        api.client.get(api.url(f"volunteer/shifts/{shift_id}", OTHER), headers=outsider.auth),
        404,
        "not_found",
    )
    problem_of(
        api.client.post(
            api.url(f"volunteer/shifts/{shift_id}/sign-up", OTHER),
            json={},
            headers=volunteer.auth,
        ),
        404,
        "not_found",
    )
    problem_of(
        api.client.post(
            api.url(f"volunteer/shifts/{shift_id}/complete", OTHER), headers=outsider.auth
        ),
        404,
        "not_found",
    )
    problem_of(
        api.client.get(api.url("volunteer/me/hours", OTHER), headers=volunteer.auth),
        404,
        "not_found",
    )


def test_a_volunteer_sending_anothers_key_gets_their_own_sign_up(api: Api) -> None:
    staff = api.join("key-coord", role="staff")
    ann = _approved_volunteer(api, "key-ann", staff)
    bo = _approved_volunteer(api, "key-bo", staff)
    shift_id = _shift(api, staff, capacity=3)
    url = api.url(f"volunteer/shifts/{shift_id}/sign-up")
    first = api.client.post(url, json={"key": "shift-key"}, headers=ann.auth)
    assert first.status_code == 201, first.text
    mine = api.client.post(url, json={"key": "shift-key"}, headers=bo.auth)
    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] != first.json()["id"]
    assert mine.json()["user_id"] == str(bo.id)
    again = api.client.post(url, json={"key": "shift-key"}, headers=ann.auth)
    assert again.json()["id"] == first.json()["id"]  # Ann's retry is Ann's
    other_role = api.client.post(
        url, json={"key": "shift-key", "user_id": str(ann.id), "role": "x"}, headers=ann.auth
    )
    problem_of(other_role, 409, "idempotency_key_reused")


def test_a_volunteer_shows_their_pass_as_a_qr_code_only_for_a_place_they_hold(api: Api) -> None:
    staff = api.join("coord", role="staff")
    volunteer = _approved_volunteer(api, "ada", staff)
    other = _approved_volunteer(api, "bei", staff)
    shift_id = _shift(api, staff)
    url = api.url(f"volunteer/shifts/{shift_id}/checkin-pass-qr")
    signed = api.client.post(
        api.url(f"volunteer/shifts/{shift_id}/sign-up"), json={}, headers=volunteer.auth
    )
    assert signed.status_code == 201, signed.text

    qr = api.client.get(url, headers=volunteer.auth)
    assert (qr.status_code, qr.headers["content-type"]) == (200, "image/svg+xml")
    assert b"<svg" in qr.content
    problem_of(api.client.get(url, headers=other.auth), 404, "not_found")
    assert api.client.get(url).status_code == 401


def test_staff_download_the_hours_report_as_csv_or_xlsx_and_volunteers_cannot(api: Api) -> None:
    staff = api.join("coord", role="staff")
    volunteer = _approved_volunteer(api, "ada", staff)
    shift_id = _shift(api, staff)
    assert (
        api.client.post(
            api.url(f"volunteer/shifts/{shift_id}/sign-up"), json={}, headers=volunteer.auth
        ).status_code
        == 201
    )
    arrived = api.client.post(
        api.url(f"volunteer/shifts/{shift_id}/check-in"),
        json={"user_id": str(volunteer.id)},
        headers=staff.auth,
    )
    assert arrived.status_code == 200, arrived.text
    done = api.client.post(api.url(f"volunteer/shifts/{shift_id}/complete"), headers=staff.auth)
    assert done.status_code == 200, done.text
    url = api.url("volunteer/reports/hours/export")

    csv = api.client.get(url, headers=staff.auth)
    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"].startswith("text/csv")
    assert (
        csv.headers["content-disposition"]
        == 'attachment; filename="volunteer-hours-by-volunteer.csv"'
    )
    lines = csv.text.splitlines()
    assert lines[0] == "volunteer,hours"
    assert [line.split(",") for line in lines[1:]] == [[str(volunteer.id), "2"]]

    xlsx = api.client.get(url, params={"format": "xlsx", "by": "month"}, headers=staff.auth)
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert xlsx.content.startswith(b"PK")  # a zip, as every XLSX file is
    problem_of(api.client.get(url, headers=volunteer.auth), 403, "permission_denied")
    wrong = problem_of(
        api.client.get(url, params={"by": "weekday"}, headers=staff.auth), 422, "validation_failed"
    )
    assert "by" in wrong["detail"]
