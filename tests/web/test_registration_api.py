"""The registration module over HTTP: register, sign in (token and cookie), the signed-in
account, sign-out, verification, errors in two languages, and organisations kept apart."""

from __future__ import annotations

from fastapi.testclient import TestClient
from web_api_support import OTHER, PASSWORD, ZH, Api, problem_of

from ngo_kit.web import SESSION_COOKIE, create_app


def test_a_person_registers_signs_in_and_sees_themselves(api: Api) -> None:
    res = api.client.post(
        api.url("registration/register"),
        json={"email": "Mei@Example.org", "password": PASSWORD, "display_name": "李梅"},
    )
    assert res.status_code == 201, res.text
    user = res.json()
    assert (user["email"], user["display_name"], user["status"]) == (
        "mei@example.org",
        "李梅",
        "pending",
    )
    assert "password" not in res.text

    signed = api.client.post(
        api.url("registration/sign-in"), json={"email": "mei@example.org", "password": PASSWORD}
    )
    assert signed.status_code == 200, signed.text
    token = signed.json()["token"]
    assert signed.json()["user"]["id"] == user["id"]
    api.client.cookies.clear()

    me = api.client.get(api.url("registration/me"), headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]


def test_sign_in_sets_an_http_only_session_cookie_that_pages_can_use(api: Api) -> None:
    person = api.join("ana")
    client = TestClient(create_app(api.kit), base_url="https://testserver")
    res = client.post(
        api.url("registration/sign-in"), json={"email": person.email, "password": PASSWORD}
    )
    assert res.status_code == 200, res.text
    cookie = res.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" in cookie  # the test environment is not development
    me = client.get(api.url("registration/me"))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(person.id)


def test_sign_out_ends_the_session(api: Api) -> None:
    person = api.join("bo")
    assert api.client.post(api.url("registration/sign-out"), headers=person.auth).status_code == 204
    res = api.client.get(api.url("registration/me"), headers=person.auth)
    problem_of(res, 401, "authentication_required")


def test_no_session_is_401_in_english_and_chinese(api: Api) -> None:
    en = problem_of(api.client.get(api.url("registration/me")), 401, "authentication_required")
    zh = problem_of(
        api.client.get(api.url("registration/me"), headers=ZH), 401, "authentication_required"
    )
    assert en["detail"] == "Please sign in first."
    assert zh["detail"] == "请先登录。"


def test_a_wrong_password_is_the_same_401_as_an_unknown_account(api: Api) -> None:
    person = api.join("cai")
    wrong = api.client.post(
        api.url("registration/sign-in"),
        json={"email": person.email, "password": "not-the-password-1"},
    )
    unknown = api.client.post(
        api.url("registration/sign-in"),
        json={"email": "nobody@example.org", "password": "not-the-password-1"},
        headers=ZH,
    )
    en = problem_of(wrong, 401, "sign_in_failed")
    zh = problem_of(unknown, 401, "sign_in_failed")
    assert en["detail"] != zh["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh["detail"])


def test_repeated_failures_are_throttled_with_429(api: Api) -> None:
    person = api.join("dara")
    for _ in range(5):
        res = api.client.post(
            api.url("registration/sign-in"),
            json={"email": person.email, "password": "not-the-password-1"},
        )
        problem_of(res, 401, "sign_in_failed")
    res = api.client.post(
        api.url("registration/sign-in"), json={"email": person.email, "password": PASSWORD}
    )
    problem_of(res, 429, "too_many_attempts")


def test_bad_registration_names_the_field_and_rule_in_both_languages(api: Api) -> None:
    body = {"email": "not-an-email", "password": PASSWORD, "display_name": "X"}
    en = problem_of(
        api.client.post(api.url("registration/register"), json=body), 422, "validation_failed"
    )
    zh = problem_of(
        api.client.post(api.url("registration/register"), json=body, headers=ZH),
        422,
        "validation_failed",
    )
    assert (en["field"], en["rule"]) == ("email", "invalid_email")
    assert (zh["field"], zh["rule"]) == ("email", "invalid_email")
    assert en["detail"] != zh["detail"]


def test_registering_a_taken_address_answers_as_a_new_sign_up_and_staff_get_a_409(
    api: Api,
) -> None:
    person = api.join("eli")
    body = {"email": person.email, "password": "another-password-9", "display_name": "Eli"}
    res = api.client.post(api.url("registration/register"), json=body)
    assert res.status_code == 201, res.text
    assert res.json()["id"] != str(person.id)  # an id that names no account
    admin = api.join("root", role="admin")
    staff = api.client.post(api.url("registration/register"), json=body, headers=admin.auth)
    problem_of(staff, 409, "already_exists")


def test_email_verification_with_the_link_token(api: Api) -> None:
    person = api.join("fen")
    [message] = [m for m in api.messages.to(person.email) if "token" in m.data]
    res = api.client.post(
        api.url("registration/verify-email"), json={"token": message.data["token"]}
    )
    assert res.status_code == 200, res.text
    assert res.json()["email_verified"] is True
    again = api.client.post(
        api.url("registration/verify-email"), json={"token": message.data["token"]}
    )
    problem_of(again, 400, "token_used")
    forged = api.client.post(
        api.url("registration/verify-email"), json={"token": message.data["token"] + "x"}
    )
    assert forged.status_code == 400
    assert forged.json()["code"].startswith("token_")


def test_a_member_of_one_organisation_is_not_a_member_of_another(api: Api) -> None:
    person = api.join("gus")
    res = api.client.get(api.url("registration/me", OTHER), headers=person.auth)
    problem_of(res, 404, "not_found")


def test_member_list_needs_members_view(api: Api) -> None:
    volunteer = api.join("hana")
    staff = api.join("ivan", role="staff")
    refused = problem_of(
        api.client.get(api.url("registration/members"), headers=volunteer.auth),
        403,
        "permission_denied",
    )
    assert refused["permission"] == "members.view"
    listed = api.client.get(api.url("registration/members"), headers=staff.auth)
    assert listed.status_code == 200, listed.text
    assert {u["email"] for u in listed.json()} == {volunteer.email, staff.email}
    other = api.client.get(api.url("registration/members", OTHER), headers=staff.auth)
    problem_of(other, 404, "not_found")  # not a member there


def test_verification_messages_and_password_reset_are_accepted_without_telling_who_exists(
    api: Api,
) -> None:
    person = api.join("jia")
    sent = api.client.post(api.url("registration/me/email-verification"), headers=person.auth)
    assert sent.status_code == 202
    assert sent.content == b""
    no_phone = api.client.post(api.url("registration/me/phone-code"), headers=person.auth)
    problem_of(no_phone, 409, "conflict")
    for email in (person.email, "nobody@example.org"):
        res = api.client.post(api.url("registration/password-reset/request"), json={"email": email})
        assert res.status_code == 202
    api.kit.outbox.work()
    [reset] = [m for m in api.messages.to(person.email) if "reset" in m.data.get("purpose", "")]
    changed = api.client.post(
        api.url("registration/password-reset"),
        json={"token": reset.data["token"], "password": "a-brand-new-secret-8"},
    )
    assert changed.status_code == 200, changed.text
    problem_of(
        api.client.get(api.url("registration/me"), headers=person.auth),
        401,
        "authentication_required",
    )
