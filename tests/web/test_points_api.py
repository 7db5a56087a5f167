"""The points module over HTTP: awards by staff, a member's standing and statement, rewards and
redemption, the leaderboard, permissions, errors in two languages, and tenancy."""

from __future__ import annotations

import uuid

from web_api_support import OTHER, ZH, Api, problem_of


def test_staff_awards_and_the_member_sees_balance_and_statement(api: Api) -> None:
    member = api.join("lin")
    staff = api.join("mo", role="staff")
    res = api.client.post(
        api.url("points/awards"),
        json={"member_id": str(member.id), "points": 40, "reason": "flood relief", "key": "a-1"},
        headers=staff.auth,
    )
    assert res.status_code == 201, res.text
    assert res.json()["balance_after"] == 40
    again = api.client.post(
        api.url("points/awards"),
        json={"member_id": str(member.id), "points": 40, "reason": "flood relief", "key": "a-1"},
        headers=staff.auth,
    )
    assert again.json()["id"] == res.json()["id"]  # a retried request awards once

    standing = api.client.get(api.url("points/me"), headers=member.auth).json()
    assert (standing["balance"], standing["earned"]) == (40, 40)
    statement = api.client.get(api.url("points/me/statement"), headers=member.auth).json()
    assert [(e["amount"], e["balance_after"], e["reason"]) for e in statement] == [
        (40, 40, "flood relief")
    ]
    seen_by_staff = api.client.get(api.url(f"points/members/{member.id}"), headers=staff.auth)
    assert seen_by_staff.json()["balance"] == 40
    board = api.client.get(api.url("points/leaderboard"), headers=member.auth).json()
    assert board == [{"rank": 1, "member_id": str(member.id), "points": 40}]


def test_a_member_cannot_award_or_read_others(api: Api) -> None:
    member = api.join("nia")
    other = api.join("omar")
    refused = api.client.post(
        api.url("points/awards"),
        json={"member_id": str(member.id), "points": 10},
        headers={**member.auth, **ZH},
    )
    body = problem_of(refused, 403, "permission_denied")
    assert body["permission"] == "points.award"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])
    peek = api.client.get(api.url(f"points/members/{other.id}/statement"), headers=member.auth)
    assert problem_of(peek, 403, "permission_denied")["permission"] == "points.view"


def test_awards_need_a_session(api: Api) -> None:
    res = api.client.post(
        api.url("points/awards"), json={"member_id": str(uuid.uuid4()), "points": 10}
    )
    problem_of(res, 401, "authentication_required")


def test_redeeming_takes_points_and_refuses_more_than_the_balance(api: Api) -> None:
    member = api.join("pia")
    admin = api.join("quan", role="admin")
    staff = api.join("rui", role="staff")
    reward = api.client.post(
        api.url("points/rewards"),
        json={"code": "tote", "name": "Tote bag", "name_zh": "帆布袋", "price": 30, "stock": 5},
        headers=admin.auth,
    )
    assert reward.status_code == 201, reward.text
    reward_id = reward.json()["id"]
    listed = api.client.get(api.url("points/rewards?available_only=true"), headers=member.auth)
    assert [r["code"] for r in listed.json()] == ["tote"]

    short = api.client.post(
        api.url("points/redemptions"), json={"reward_id": reward_id}, headers=member.auth
    )
    en = problem_of(short, 409, "insufficient_points")
    short_zh = api.client.post(
        api.url("points/redemptions"),
        json={"reward_id": reward_id},
        headers={**member.auth, **ZH},
    )
    zh = problem_of(short_zh, 409, "insufficient_points")
    assert en["detail"] != zh["detail"]

    api.client.post(
        api.url("points/awards"),
        json={"member_id": str(member.id), "points": 50},
        headers=staff.auth,
    )
    done = api.client.post(
        api.url("points/redemptions"),
        json={"reward_id": reward_id, "key": "r-1"},
        headers=member.auth,
    )
    assert done.status_code == 201, done.text
    assert (done.json()["points"], done.json()["status"]) == (30, "requested")
    assert api.client.get(api.url("points/me"), headers=member.auth).json()["balance"] == 20
    mine = api.client.get(api.url("points/me/redemptions"), headers=member.auth).json()
    assert [r["id"] for r in mine] == [done.json()["id"]]


def test_staff_cannot_add_rewards_without_rewards_manage(api: Api) -> None:
    staff = api.join("sol", role="staff")
    res = api.client.post(
        api.url("points/rewards"),
        json={"code": "mug", "name": "Mug", "price": 5},
        headers=staff.auth,
    )
    assert problem_of(res, 403, "permission_denied")["permission"] == "rewards.manage"


def test_one_organisations_points_never_show_through_anothers_path(api: Api) -> None:
    member = api.join("tao")
    staff = api.join("uma", role="staff")
    api.client.post(
        api.url("points/awards"),
        json={"member_id": str(member.id), "points": 25},
        headers=staff.auth,
    )
    # The same account, signed in, joins the other organisation: there, its points are its own
    # (none). Signed out, a taken address joins nothing (enumeration prevention).
    api.client.post(
        api.url("registration/register", OTHER),
        json={"email": member.email, "password": "lantern-harbour-47", "display_name": "Tao"},
        headers=member.auth,
    )
    there = api.client.get(api.url("points/me", OTHER), headers=member.auth).json()
    assert (there["balance"], there["earned"]) == (0, 0)
    assert api.client.get(api.url("points/me/statement", OTHER), headers=member.auth).json() == []
    assert api.client.get(api.url("points/leaderboard", OTHER), headers=member.auth).json() == []
    # Staff of one organisation are not members of the other: it is not shown to them.
    res = api.client.post(
        api.url("points/awards", OTHER),
        json={"member_id": str(member.id), "points": 5},
        headers=staff.auth,
    )
    problem_of(res, 404, "not_found")
    reward = api.client.get(api.url("points/rewards", OTHER), headers=member.auth).json()
    assert reward == []


def test_bad_input_is_a_422_naming_the_field(api: Api) -> None:
    staff = api.join("vik", role="staff")
    res = api.client.post(
        api.url("points/awards"),
        json={"member_id": "not-a-uuid", "points": -3},
        headers=staff.auth,
    )
    body = problem_of(res, 422, "validation_failed")
    assert {e["field"] for e in body["errors"]} == {"member_id", "points"}
    leaderboard = api.client.get(api.url("points/leaderboard?period=decade"), headers=staff.auth)
    assert problem_of(leaderboard, 422, "validation_failed")["field"] == "period"


def test_a_member_sending_anothers_key_gets_their_own_redemption_not_theirs(api: Api) -> None:
    admin = api.join("keys-admin", role="admin")
    staff = api.join("keys-staff", role="staff")
    ann, bo = api.join("keys-ann"), api.join("keys-bo")
    reward = api.client.post(
        api.url("points/rewards"),
        json={"code": "cap", "name": "Cap", "price": 10, "stock": 9},
        headers=admin.auth,
    ).json()
    for who in (ann, bo):
        api.client.post(
            api.url("points/awards"),
            json={"member_id": str(who.id), "points": 50},
            headers=staff.auth,
        ).raise_for_status()
    body = {"reward_id": reward["id"], "key": "basket-1"}
    first = api.client.post(api.url("points/redemptions"), json=body, headers=ann.auth)
    assert first.status_code == 201, first.text
    mine = api.client.post(api.url("points/redemptions"), json=body, headers=bo.auth)
    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] != first.json()["id"]
    assert mine.json()["member_id"] == str(bo.id)
    assert api.client.get(api.url("points/me"), headers=bo.auth).json()["balance"] == 40
    other = api.client.post(
        api.url("points/redemptions"), json={**body, "quantity": 2}, headers=ann.auth
    )
    assert problem_of(other, 409, "idempotency_key_reused")["key"] == "basket-1"


def test_staff_download_the_ledger_as_csv_and_members_may_not(api: Api) -> None:
    member = api.join("sun")
    staff = api.join("tao", role="staff")
    awarded = api.client.post(
        api.url("points/awards"),
        json={"member_id": str(member.id), "points": 15, "reason": "=HYPERLINK(1)"},
        headers=staff.auth,
    )
    assert awarded.status_code == 201, awarded.text
    res = api.client.get(api.url("points/entries.csv"), headers=staff.auth)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"].startswith("attachment;")
    lines = res.text.splitlines()
    assert lines[0].startswith("seq,at,operation,kind,account,member,amount")
    assert any(str(member.id) in line and "'=HYPERLINK(1)" in line for line in lines[1:])
    refused = api.client.get(api.url("points/entries.csv"), headers=member.auth)
    assert problem_of(refused, 403, "permission_denied")["permission"] == "points.view"
