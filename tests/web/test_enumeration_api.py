"""Account enumeration over HTTP: for every combination of email and phone (none, a known
account's, another account's, a free one), sign-in, code and reset requests and registration
answer with the same status and the same body whoever has what was typed."""

from __future__ import annotations

from typing import Any

import pytest
from web_api_support import PASSWORD, Api

EMAILS = {"no email": None, "Ana's email": "ana@example.org", "a free email": "nobody@example.org"}
#: Ana's phone, Bo's (the attacker's own number, say: his account has no email) and a free one
PHONES = {
    "no phone": None,
    "Ana's phone": "+8613800138000",
    "Bo's phone": "+8613900139000",
    "a free phone": "+8613700137000",
}
COMBINATIONS = [
    pytest.param(e, p, id=f"{e} + {p}")
    for e in EMAILS
    for p in PHONES
    if (EMAILS[e], PHONES[p]) != (None, None)
]
#: the pairs that name one account
NAMED = {("Ana's email", "no phone"), ("Ana's email", "Ana's phone"), ("no email", "Ana's phone")}
NAMED |= {("no email", "Bo's phone")}


@pytest.fixture
def site(api: Api) -> Api:
    """The app with Ana (email and phone) and Bo (phone only) registered in ``rainbow``."""
    for body in (
        {"email": "ana@example.org", "phone": "+8613800138000", "display_name": "Ana"},
        {"phone": "+8613900139000", "display_name": "Bo"},
    ):
        res = api.client.post(api.url("registration/register"), json={**body, "password": PASSWORD})
        assert res.status_code == 201, res.text
    api.kit.outbox.work()
    return api


def _answer(res: Any) -> tuple[int, Any]:
    body = res.json() if res.content else None
    return res.status_code, body


def _body(email: str | None, phone: str | None, **more: str) -> dict[str, str]:
    found = {"email": email, "phone": phone, **more}
    return {k: v for k, v in found.items() if v is not None}


@pytest.mark.parametrize(("email", "phone"), COMBINATIONS)
def test_sign_in_answers_the_same_for_every_pair_that_names_no_account(
    site: Api, email: str, phone: str
) -> None:
    url = site.url("registration/sign-in")
    stranger = _answer(
        site.client.post(url, json={"email": "ghost@example.org", "password": PASSWORD})
    )
    assert stranger[0] == 401 and stranger[1]["code"] == "sign_in_failed"
    body = _body(EMAILS[email], PHONES[phone], password=PASSWORD)
    res = site.client.post(url, json=body)
    site.client.cookies.clear()
    if (email, phone) in NAMED:
        assert res.status_code == 200, res.text
    else:  # Ana's email with Bo's own phone and password included: never a 409
        assert _answer(res) == stranger
    wrong = site.client.post(url, json={**body, "password": "not-the-password-1"})
    assert _answer(wrong) == stranger


@pytest.mark.parametrize(("email", "phone"), COMBINATIONS)
def test_a_reset_request_answers_the_same_whoever_has_the_email_or_phone(
    site: Api, email: str, phone: str
) -> None:
    before = len(site.messages.messages)
    res = site.client.post(
        site.url("registration/password-reset/request"),
        json=_body(EMAILS[email], PHONES[phone]),
    )
    assert _answer(res) == (202, None)  # never a 409, never a 500
    assert site.messages.messages[before:] == []  # nothing inside the request


@pytest.mark.parametrize("phone", ["Ana's phone", "Bo's phone", "a free phone"])
def test_a_sign_in_code_request_answers_the_same_whoever_has_the_phone(
    site: Api, phone: str
) -> None:
    before = len(site.messages.messages)
    res = site.client.post(site.url("registration/sign-in/code"), json={"phone": PHONES[phone]})
    assert _answer(res) == (202, None)
    assert site.messages.messages[before:] == []


@pytest.mark.parametrize(("email", "phone"), COMBINATIONS)
def test_registration_answers_as_a_new_sign_up_whoever_has_the_email_or_phone(
    site: Api, email: str, phone: str
) -> None:
    before = len(site.messages.messages)
    res = site.client.post(
        site.url("registration/register"),
        json=_body(EMAILS[email], PHONES[phone], password="eve's own secret", display_name="Eve"),
    )
    assert res.status_code == 201, res.text
    answer = res.json()
    assert set(answer) == {
        "id",
        "email",
        "phone",
        "display_name",
        "status",
        "created_at",
        "birth_date",
        "email_verified",
        "phone_verified",
    }
    assert {k: answer[k] for k in ("email", "phone", "display_name", "status")} == {
        "email": EMAILS[email],
        "phone": PHONES[phone],
        "display_name": "Eve",
        "status": "pending",
    }
    assert (answer["email_verified"], answer["phone_verified"]) == (False, False)
    assert site.messages.messages[before:] == []
