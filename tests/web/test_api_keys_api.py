"""Machine clients over HTTP: API keys created, listed and revoked by an owner, used as
``Authorization: Bearer``, bound to their organisation and scopes, audited as their own actor,
throttled; and the organisation's events feed."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from web_api_support import OTHER, ZH, Api, Person, problem_of

from ngo_kit.db import utcnow
from ngo_kit.tenancy import SYSTEM
from ngo_kit.testing import KitFactory, MessageCatcher
from ngo_kit.web import create_app


def _create(api: Api, owner: Person, scopes: list[str], **extra: Any) -> dict[str, Any]:
    res = api.client.post(
        api.url("api-keys"),
        json={"name": "reporting job", "scopes": scopes, **extra},
        headers=owner.auth,
    )
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _award(api: Api, key: str, member: Person, org: str | None = None) -> Any:
    return api.client.post(
        api.url("points/awards", org),
        json={"member_id": str(member.id), "points": 5, "reason": "sync", "key": uuid.uuid4().hex},
        headers=_bearer(key),
    )


def test_an_owner_creates_a_key_that_is_shown_once_and_listed_without_its_secret(
    api: Api,
) -> None:
    owner = api.join("olga", role="owner")
    created = _create(api, owner, ["points.award", "audit.view"])
    assert created["key"].startswith(created["prefix"] + "_")
    assert created["scopes"] == ["audit.view", "points.award"]
    assert created["created_by"] == str(owner.id)

    listed = api.client.get(api.url("api-keys"), headers=owner.auth)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()
    assert row["id"] == created["id"] and row["prefix"] == created["prefix"]
    assert "key" not in row and created["key"] not in listed.text


def test_an_unknown_scope_is_refused_naming_scopes_in_english_and_chinese(api: Api) -> None:
    owner = api.join("olga", role="owner")
    body = {"name": "job", "scopes": ["points.award", "points.teleport"]}
    res = api.client.post(api.url("api-keys"), json=body, headers=owner.auth)
    problem = problem_of(res, 422, "validation_failed")
    assert (problem["field"], problem["rule"]) == ("scopes", "unknown_permission")
    assert "points.teleport" in problem["detail"]
    zh = api.client.post(api.url("api-keys"), json=body, headers={**owner.auth, **ZH})
    assert "不是已声明的权限" in problem_of(zh, 422, "validation_failed")["detail"]
    past = {"name": "job", "scopes": ["points.award"], "expires_at": "2020-01-01T00:00:00Z"}
    res = api.client.post(api.url("api-keys"), json=past, headers={**owner.auth, **ZH})
    problem = problem_of(res, 422, "validation_failed")
    assert problem["field"] == "expires_at" and "将来" in problem["detail"]
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        assert tx.api_keys.list_keys(include_revoked=True) == []  # a failed call writes nothing


def test_keys_are_managed_by_owners_only_and_never_get_scopes_their_creator_lacks(
    api: Api,
) -> None:
    staff = api.join("sam", role="staff")
    res = api.client.post(
        api.url("api-keys"), json={"name": "x", "scopes": ["points.view"]}, headers=staff.auth
    )
    assert problem_of(res, 403, "permission_denied")["permission"] == "api_keys.manage"
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        tx.tenancy.create_role("keykeeper", "Key keeper", ("api_keys.manage",))
    keeper = api.join("kai", role="keykeeper")
    res = api.client.post(
        api.url("api-keys"), json={"name": "x", "scopes": ["points.award"]}, headers=keeper.auth
    )
    assert problem_of(res, 403, "permission_denied")["permission"] == "points.award"
    owner = api.join("olga", role="owner")
    res = api.client.post(
        api.url("api-keys"), json={"name": "x", "scopes": ["api_keys.manage"]}, headers=owner.auth
    )
    assert problem_of(res, 422, "validation_failed")["rule"] == "not_for_keys"


def test_a_key_acts_within_its_scopes_on_real_module_routes_and_the_audit_names_it(
    api: Api,
) -> None:
    owner = api.join("olga", role="owner")
    member = api.join("lin")
    awarding = _create(api, owner, ["points.award"])
    reading = _create(api, owner, ["audit.view"])

    res = _award(api, awarding["key"], member)
    assert res.status_code == 201, res.text
    refused = _award(api, reading["key"], member)
    assert problem_of(refused, 403, "permission_denied")["permission"] == "points.award"

    feed = api.client.get(
        api.url("events"), params={"kind": "points"}, headers=_bearer(reading["key"])
    )
    assert feed.status_code == 200, feed.text
    awarded = feed.json()["events"]
    assert awarded, feed.json()
    actor = awarded[-1]["actor"]
    assert actor == {
        "id": awarding["id"],
        "kind": "api_key",
        "label": "API key reporting job",
    }
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        actors = tx.connection.execute(
            sa.text("SELECT actor FROM core_audit WHERE action LIKE 'points.%'")
        ).scalars()
        assert f"key:{awarding['id']}" in set(actors)


def test_a_key_of_another_organisation_gets_the_answer_an_unknown_key_gets(api: Api) -> None:
    owner = api.join("olga", role="owner")
    member = api.join("lin")
    theirs = api.join("sun", org=OTHER, role="owner")
    res = api.client.post(
        api.url("api-keys", OTHER),
        json={"name": "theirs", "scopes": ["points.award"]},
        headers=theirs.auth,
    )
    assert res.status_code == 201, res.text
    foreign = res.json()["key"]
    mine = _create(api, owner, ["points.award"])["key"]
    unknown = mine[: -len("abc")] + ("xyz" if not mine.endswith("xyz") else "abc")

    answers = [_award(api, foreign, member), _award(api, unknown, member)]
    answers.append(_award(api, "ngk_" + "0" * 16 + "_" + "A" * 43, member))
    bodies = [problem_of(r, 401, "api_key_invalid") for r in answers]
    assert len({(b["detail"], b["title"]) for b in bodies}) == 1
    # the key works in its own organisation
    sunny = api.join("sol", org=OTHER)
    assert _award(api, foreign, sunny, OTHER).status_code == 201


def test_revoked_and_expired_keys_get_the_answer_an_unknown_key_gets(api: Api) -> None:
    owner = api.join("olga", role="owner")
    member = api.join("lin")
    revoked = _create(api, owner, ["points.award"])
    expiring = _create(
        api, owner, ["points.award"], expires_at=(utcnow() + dt.timedelta(days=1)).isoformat()
    )
    assert _award(api, revoked["key"], member).status_code == 201
    res = api.client.post(api.url(f"api-keys/{revoked['id']}/revoke"), headers=owner.auth)
    assert res.status_code == 200 and res.json()["revoked_at"] is not None
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        tx.connection.execute(
            sa.text("UPDATE core_api_key SET expires_at = :past WHERE id = :id"),
            {"past": utcnow() - dt.timedelta(seconds=1), "id": uuid.UUID(expiring["id"]).hex},
        )
    for key in (revoked["key"], expiring["key"]):
        problem_of(_award(api, key, member), 401, "api_key_invalid")
    listed = api.client.get(api.url("api-keys"), headers=owner.auth).json()
    assert revoked["id"] not in {k["id"] for k in listed}
    every = api.client.get(
        api.url("api-keys"), params={"include_revoked": "true"}, headers=owner.auth
    ).json()
    assert revoked["id"] in {k["id"] for k in every}
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        assert any(e.kind == "api_key.revoked" for e in tx.events.feed().events)
    other = api.client.post(
        api.url(f"api-keys/{revoked['id']}/revoke", OTHER),
        headers=api.join("sun", org=OTHER, role="owner").auth,
    )
    problem_of(other, 404, "not_found")


def test_a_bearer_key_ignores_cookies(api: Api) -> None:
    owner = api.join("olga", role="owner")
    key = _create(api, owner, ["audit.view"])["key"]
    api.client.cookies.set("ngo_kit_session", owner.token)
    try:
        res = api.client.get(api.url("api-keys"), headers=_bearer(key))
    finally:
        api.client.cookies.clear()
    assert problem_of(res, 403, "permission_denied")["permission"] == "api_keys.manage"


def test_a_key_loses_scopes_its_creator_no_longer_holds(api: Api) -> None:
    owner = api.join("olga", role="owner")
    member = api.join("lin")
    api.join("ada", role="owner")  # the organisation keeps an owner
    key = _create(api, owner, ["points.award"])["key"]
    api.set_role(owner, "member")
    problem_of(_award(api, key, member), 403, "permission_denied")


@pytest.fixture
def tight(kit_factory: KitFactory, message_catcher: MessageCatcher) -> Api:
    """An app whose keys may make 3 calls, and clients 2 failed key attempts, a minute."""
    kit = kit_factory(api_key_calls_per_window=3, api_key_failures_per_window=2)
    kit.create_organisation("rainbow", "Rainbow Charity")
    return Api(kit, TestClient(create_app(kit)), message_catcher)


def test_failed_attempts_per_client_and_calls_per_key_are_throttled(tight: Api) -> None:
    owner = tight.join("olga", role="owner")
    key = _create(tight, owner, ["audit.view"])["key"]
    for _ in range(3):
        assert tight.client.get(tight.url("events"), headers=_bearer(key)).status_code == 200
    res = tight.client.get(tight.url("events"), headers=_bearer(key))
    problem_of(res, 429, "api_key_throttled")
    assert 1 <= int(res.headers["Retry-After"]) <= 60

    wrong = key[:-3] + ("aaa" if not key.endswith("aaa") else "bbb")
    for _ in range(2):
        problem_of(
            tight.client.get(tight.url("events"), headers=_bearer(wrong)), 401, "api_key_invalid"
        )
    res = tight.client.get(tight.url("events"), headers=_bearer(wrong))
    problem_of(res, 429, "api_key_throttled")
    assert int(res.headers["Retry-After"]) >= 1
    zh = tight.client.get(tight.url("events"), headers={**_bearer(wrong), **ZH})
    assert "秒后重试" in problem_of(zh, 429, "api_key_throttled")["detail"]


def test_the_secret_is_never_stored_or_logged_in_clear(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = api.join("olga", role="owner")
    created = _create(api, owner, ["audit.view"])
    secret = created["key"][len(created["prefix"]) + 1 :]
    api.client.get(api.url("events"), headers=_bearer(created["key"]))
    api.client.get(api.url("events"), headers=_bearer(created["key"] + "x"))
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        for table in ("core_api_key", "core_audit", "core_throttle", "core_outbox"):
            for row in tx.connection.execute(sa.text(f"SELECT * FROM {table}")):
                text = " ".join(str(v) for v in row)
                assert secret not in text, table
    assert secret not in caplog.text


def test_the_events_feed_pages_by_seq_filters_and_keeps_to_its_organisation(api: Api) -> None:
    owner = api.join("olga", role="owner")
    api.join("sun", org=OTHER, role="owner")
    with api.kit.begin(org=api.org, actor=SYSTEM) as tx:
        for n in range(5):
            tx.audit("test.pinged", "thing", n, "pinged", data={"n": n, "email": "x@example.org"})
    with api.kit.begin(org=OTHER, actor=SYSTEM) as tx:
        tx.audit("test.pinged", "thing", 99, "theirs", data={"n": 99})

    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        res = api.client.get(
            api.url("events"),
            params={"after": after, "limit": 2, "kind": "test"},
            headers=owner.auth,
        )
        assert res.status_code == 200, res.text
        page = res.json()
        seen.extend(page["events"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [e["data"] for e in seen] == [{"n": n} for n in range(5)]  # no email, no 99
    assert [e["subject"]["id"] for e in seen] == ["0", "1", "2", "3", "4"]
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert all(e["actor"]["kind"] == "system" for e in seen)

    exact = api.client.get(
        api.url("events"), params={"kind": "test.pinged.not"}, headers=owner.auth
    ).json()
    assert exact["events"] == []
    future = api.client.get(
        api.url("events"), params={"since": "2199-01-01T00:00:00Z"}, headers=owner.auth
    ).json()
    assert future == {"events": [], "next_after": None}


def test_the_events_feed_refuses_bad_input_and_people_without_audit_view(api: Api) -> None:
    member = api.join("lin")
    res = api.client.get(api.url("events"), headers=member.auth)
    assert problem_of(res, 403, "permission_denied")["permission"] == "audit.view"
    owner = api.join("olga", role="owner")
    res = api.client.get(api.url("events"), params={"limit": 501}, headers=owner.auth)
    assert problem_of(res, 422, "validation_failed")["field"] == "limit"
    res = api.client.get(
        api.url("events"), params={"kind": "Points!"}, headers={**owner.auth, **ZH}
    )
    problem = problem_of(res, 422, "validation_failed")
    assert problem["field"] == "kind" and "事件类型" in problem["detail"]
    # not shaped like a key: taken for a session token, which signs no one in
    res = api.client.get(api.url("events"), headers=_bearer("ngk_nonsense"))
    problem_of(res, 401, "authentication_required")
