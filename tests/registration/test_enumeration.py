"""Account enumeration: every sign-in, code, reset, change and registration path answers the
same, in comparable time, whether or not an account has what was typed, for every combination
of email and phone; each counts towards throttling; what would tell is left to the worker."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, AlreadyExists, Kit, NgoKitError, hookimpl
from ngo_kit.modules.registration.errors import TooManyAttempts
from ngo_kit.modules.registration.models import OneTimeCode
from ngo_kit.modules.registration.schemas import UserRead
from ngo_kit.modules.registration.testing import PASSWORD, Register
from ngo_kit.outbox import OutboxMessage
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, MessageCatcher

#: Ana has an email and a phone, Bo a phone only (the attacker's own number, say)
EMAILS = {"no email": None, "Ana's email": "ana@example.org", "a free email": "nobody@example.org"}
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
#: the pairs that name one account, and whose it is
NAMES = {
    ("Ana's email", "no phone"): "ana",
    ("Ana's email", "Ana's phone"): "ana",
    ("no email", "Ana's phone"): "ana",
    ("no email", "Bo's phone"): "bo",
}


@pytest.fixture
def people(rkit: Kit, rorg: OrgRead, register: Register) -> dict[str, uuid.UUID]:
    """Ana (email and phone) and Bo (phone only), registered in ``rorg``."""
    return {
        "ana": register(email="ana@example.org", phone="13800138000"),
        "bo": register(email=None, phone="13900139000"),
    }


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a caller sees: the error's code and body, or ``ok``."""
    try:
        call()
    except NgoKitError as exc:
        return exc.code, exc.to_dict()
    return "ok", None


def _sign_in(kit: Kit, email: str | None, phone: str | None, password: str) -> Callable[[], Any]:
    def call() -> Any:
        with kit.begin() as tx:
            return tx.registration.authenticate(email=email, phone=phone, password=password)

    return call


@pytest.mark.parametrize(("email", "phone"), COMBINATIONS)
def test_sign_in_answers_the_same_for_every_pair_that_names_no_account(
    rkit: Kit, people: dict[str, uuid.UUID], email: str, phone: str
) -> None:
    e, p = EMAILS[email], PHONES[phone]
    unknown = _outcome(_sign_in(rkit, "ghost@example.org", None, "not the password"))
    assert unknown[0] == "sign_in_failed"
    assert _outcome(_sign_in(rkit, e, p, "not the password")) == unknown
    # the right password of Ana (and of Bo: both use PASSWORD) signs in only through a pair
    # that names the account; Ana's email with Bo's own phone is the same 401 as a stranger's
    expected = ("ok", None) if (email, phone) in NAMES else unknown
    assert _outcome(_sign_in(rkit, e, p, PASSWORD)) == expected


@pytest.mark.parametrize(
    ("email", "phone"),
    [
        ("Ana's email", "Bo's phone"),
        ("a free email", "Bo's phone"),
        ("Ana's email", "a free phone"),
    ],
)
def test_failed_sign_ins_with_a_mismatched_pair_are_throttled_like_any_other(
    rkit: Kit, people: dict[str, uuid.UUID], email: str, phone: str
) -> None:
    attempt = _sign_in(rkit, EMAILS[email], PHONES[phone], PASSWORD)
    for _ in range(5):
        assert _outcome(attempt)[0] == "sign_in_failed"
    assert _outcome(attempt)[0] == "too_many_attempts"


def _delivered(catcher: MessageCatcher, since: int) -> list[OutboxMessage]:
    return catcher.messages[since:]


@pytest.mark.parametrize(("email", "phone"), COMBINATIONS)
def test_a_reset_request_answers_the_same_and_sends_nothing_inside_the_request(
    rkit: Kit,
    rorg: OrgRead,
    people: dict[str, uuid.UUID],
    message_catcher: MessageCatcher,
    email: str,
    phone: str,
) -> None:
    e, p = EMAILS[email], PHONES[phone]
    before = len(message_catcher.messages)

    def ask() -> None:
        with rkit.begin(org=rorg) as tx:
            tx.registration.request_password_reset(email=e, phone=p, client="ip:203.0.113.7")

    assert _outcome(ask) == ("ok", None)
    assert _delivered(message_catcher, before) == []  # whatever goes out, goes out later
    rkit.outbox.work()
    [message] = _delivered(message_catcher, before)
    assert message.recipient == (e or p)  # only ever what was typed: the email, else the phone
    owner = NAMES.get((email, phone))
    assert ("token" in message.data) is (owner is not None)
    if owner is not None:
        assert message.data["account"] == str(people[owner])


@pytest.mark.parametrize("phone", ["Ana's phone", "Bo's phone", "a free phone"])
def test_a_sign_in_code_request_answers_the_same_and_sends_nothing_inside_the_request(
    rkit: Kit,
    rorg: OrgRead,
    people: dict[str, uuid.UUID],
    message_catcher: MessageCatcher,
    phone: str,
) -> None:
    before = len(message_catcher.messages)

    def ask() -> None:
        with rkit.begin(org=rorg) as tx:
            tx.registration.request_sign_in_code(PHONES[phone])

    assert _outcome(ask) == ("ok", None)
    assert _delivered(message_catcher, before) == []
    rkit.outbox.work()
    [message] = _delivered(message_catcher, before)
    assert message.recipient == PHONES[phone]
    assert ("code" in message.data) is (phone != "a free phone")


@pytest.mark.parametrize(("email", "phone"), COMBINATIONS)
def test_registration_answers_as_a_new_sign_up_whoever_has_the_email_or_phone(
    rkit: Kit,
    rorg: OrgRead,
    rother: OrgRead,
    people: dict[str, uuid.UUID],
    message_catcher: MessageCatcher,
    email: str,
    phone: str,
) -> None:
    e, p = EMAILS[email], PHONES[phone]
    before = len(message_catcher.messages)
    for org in (rorg, rother):  # a member here, and a stranger to the organisation there

        def sign_up(org: OrgRead = org) -> UserRead:
            with rkit.begin(org=org) as tx:
                user: UserRead = tx.registration.register(
                    email=e, phone=p, password="eve's own secret", display_name="Eve"
                )
            return user

        user = sign_up()
        assert user.model_dump(exclude={"id", "created_at"}) == {
            "email": e,
            "phone": p,
            "display_name": "Eve",
            "status": "pending",
            "birth_date": None,
            "email_verified": False,
            "phone_verified": False,
        }
        assert user.id not in people.values()
        assert _delivered(message_catcher, before) == []  # verification or notice: later
    rkit.outbox.work()
    # each account whose email or phone was typed is told, once (on the email if it was typed)
    holders = {"ana@example.org": "ana", "+8613800138000": "ana", "+8613900139000": "bo"}
    typed = [EMAILS[email], PHONES[phone]]
    told = [m for m in _delivered(message_catcher, before) if m.recipient in holders]
    assert all(m.data["purpose"] == "registration.tried-to-register" for m in told)
    owners = [str(people[h]) for h in {holders[t] for t in typed if t in holders}]
    # once for each organisation registered in
    assert sorted(m.data["account"] for m in told) == sorted(owners * 2)
    with rkit.begin(org=rother, actor=SYSTEM) as tx:  # nobody joined where they were not
        assert {u.id for u in tx.registration.members()}.isdisjoint(people.values())


def test_the_notice_to_a_taken_address_is_in_english_and_chinese(
    rkit: Kit, rother: OrgRead, people: dict[str, uuid.UUID], message_catcher: MessageCatcher
) -> None:
    with rkit.begin(org=rother, locale="en") as tx:
        tx.registration.register(email="ana@example.org", password=PASSWORD, display_name="A")
    rkit.outbox.work()
    told = message_catcher.to("ana@example.org")[-1]
    assert (
        told.subject
        == "Someone tried to register with your address / 有人尝试用您的邮箱地址或手机号码注册"
    )
    assert "register at Sunshine" in told.body and "在Sunshine注册" in told.body
    assert told.data == {"purpose": "registration.tried-to-register", "account": str(people["ana"])}


def test_staff_and_the_system_still_get_already_exists(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, people: dict[str, uuid.UUID], admin: uuid.UUID
) -> None:
    for org, actor in ((rorg, admin), (rother, SYSTEM)):
        with pytest.raises(AlreadyExists), rkit.begin(org=org, actor=actor) as tx:
            tx.registration.register(
                email="ana@example.org", phone="13900139000", password=PASSWORD, display_name="X"
            )


def test_with_prevention_the_right_password_does_not_join_but_the_account_itself_may(
    rkit: Kit, rother: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    with rkit.begin(org=rother) as tx:  # no password oracle: the same answer as a wrong one
        user = tx.registration.register(
            email="ana@example.org", password=PASSWORD, display_name="Ana"
        )
    assert user.id != people["ana"]
    with rkit.begin(org=rother, actor=people["ana"]) as tx:  # signed in: she joins
        assert (
            tx.registration.register(
                email="ana@example.org", password=PASSWORD, display_name="Ana"
            ).id
            == people["ana"]
        )


def test_a_change_to_a_taken_address_or_number_answers_as_a_free_one(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    eve = register(email="eve@example.org")
    register(email="ana@example.org", phone="13800138000")
    before = len(message_catcher.messages)
    for new_email, new_phone in (
        ("x@example.org", "13700137000"),
        ("ana@example.org", "13800138000"),
    ):
        with rkit.begin(org=rorg, actor=eve) as tx:  # no error either way
            assert tx.registration.request_email_change(new_email) is None
            assert tx.registration.request_phone_change(new_phone) is None
    # only the notices to Eve's own address went out at once (she asked for the changes)
    assert [m.recipient for m in _delivered(message_catcher, before)] == ["eve@example.org"] * 2
    rkit.outbox.work()
    assert message_catcher.to("ana@example.org")[-1].data["purpose"] == "registration.change-taken"
    assert message_catcher.to("+8613800138000")[-1].data["purpose"] == "registration.change-taken"
    with rkit.begin() as tx:  # the code issued for a taken number can confirm nothing
        targets = tx.session.execute(
            sa.select(OneTimeCode.target)
            .where(OneTimeCode.account_id == eve, OneTimeCode.purpose == "change-phone")
            .order_by(OneTimeCode.created_at)
        ).scalars()
        assert list(targets) == ["+8613700137000", None]


# --- time ---------------------------------------------------------------------------------


class SlowMail:
    """A mail server that takes 80 ms to accept a message."""

    ngo_kit_plugin_name = "slow-mail"

    @hookimpl(tryfirst=True)
    def ngo_kit_deliver_message(self, message: OutboxMessage) -> str:
        time.sleep(0.08)
        return "accepted"


def _ratio_of_medians(
    known: Callable[[int], None],
    unknown: Callable[[int], None],
    between: Callable[[], None] = lambda: None,
    *,
    rounds: int = 3,
    per_round: int = 8,
) -> float:
    """The median over ``rounds`` of median(unknown) / median(known), ``per_round``
    interleaved calls of each (as the sign-in timing test measures); ``between`` runs untimed
    after each pair."""
    ratios = []
    for round_ in range(rounds):
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(per_round):
            pair = [("known", known), ("unknown", unknown)]
            for kind, call in pair if i % 2 else reversed(pair):
                start = time.perf_counter()
                call(round_ * per_round + i)
                times[kind].append(time.perf_counter() - start)
            between()
        ratios.append(statistics.median(times["unknown"]) / statistics.median(times["known"]))
    return statistics.median(ratios)


#: Requests whose message goes only to an existing account: what the account is registered
#: with, how to ask, the known address or number, and a fresh unknown one for call ``n``.
REQUESTS: dict[
    str, tuple[dict[str, str], Callable[[Any, str], None], str, Callable[[int], str]]
] = {
    "password reset": (
        {"email": "known@example.org"},
        lambda tx, who: tx.registration.request_password_reset(email=who),
        "known@example.org",
        lambda n: f"nobody{n}@example.org",
    ),
    "sign-in code": (
        {"phone": "+8613800138000"},
        lambda tx, who: tx.registration.request_sign_in_code(who),
        "+8613800138000",
        lambda n: f"+86139{n:08d}",
    ),
}


@pytest.mark.parametrize("request_kind", list(REQUESTS))
def test_a_request_takes_the_same_time_for_a_known_and_an_unknown_address(
    kit_factory: KitFactory, request_kind: str
) -> None:
    details, request, known, unknown = REQUESTS[request_kind]
    kit = kit_factory(modules=["registration"], plugins=[SlowMail()], catch_messages=False)
    org = kit.create_organisation("timing", "Timing")
    with kit.begin(org=org) as tx:
        tx.registration.register(**details, password=PASSWORD, display_name="K")
    kit.outbox.work()

    def ask(who: str) -> None:
        with kit.begin(org=org) as tx:
            request(tx, who)

    def forget_counts() -> None:  # keep the known address under its request limit
        with kit.begin() as tx:
            tx.session.execute(sa.text("DELETE FROM registration_throttle"))

    ratio = _ratio_of_medians(
        lambda n: ask(known),
        lambda n: ask(unknown(n)),
        forget_counts,
        rounds=5,  # a request is a few milliseconds: more of them, against the machine's noise
        per_round=30,
    )
    assert 0.8 <= ratio <= 1.25, ratio


def test_a_sign_in_code_is_issued_by_the_worker_and_never_stored_in_clear(
    rkit: Kit, rorg: OrgRead, people: dict[str, uuid.UUID], message_catcher: MessageCatcher
) -> None:
    before = len(message_catcher.messages)
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_sign_in_code(PHONES["Bo's phone"])
        issued = sa.select(sa.func.count()).where(OneTimeCode.purpose == "sign-in")
        assert tx.session.scalar(issued) == 0  # the request looks nothing up
    rkit.outbox.work()
    [message] = _delivered(message_catcher, before)
    code = message.data["code"]
    assert code in message.body and message.data["account"] == str(people["bo"])
    with rkit.begin() as tx:
        rows = tx.session.execute(sa.text("SELECT subject, body, data FROM core_outbox")).all()
    assert rows and not any(code in str(row) for row in rows)
    with rkit.begin(org=rorg) as tx:
        signed_in = tx.registration.authenticate(phone=PHONES["Bo's phone"], code=code)
    assert signed_in.user.id == people["bo"]


def test_registration_takes_the_same_time_for_a_taken_and_a_free_address(
    owasp_hashing: None, kit_factory: KitFactory
) -> None:
    kit = kit_factory(modules=["registration"], plugins=[SlowMail()], catch_messages=False)
    org = kit.create_organisation("timing", "Timing")
    with kit.begin(org=org) as tx:
        tx.registration.register(email="known@example.org", password=PASSWORD, display_name="K")

    def sign_up(email: str) -> None:
        with kit.begin(org=org) as tx:
            tx.registration.register(email=email, password="a sign-up secret", display_name="S")

    ratio = _ratio_of_medians(
        lambda n: sign_up("known@example.org"),
        lambda n: sign_up(f"new{n}@example.org"),
        rounds=7,  # the suite's other worker shares the two cores: more rounds against its noise
        per_round=10,
    )
    assert 0.8 <= ratio <= 1.25, ratio


def test_a_locked_identifier_answers_too_many_attempts_whoever_has_it(
    rkit: Kit, people: dict[str, uuid.UUID]
) -> None:
    answers = []
    for email in ("ana@example.org", "ghost@example.org"):
        for _ in range(5):
            _outcome(_sign_in(rkit, email, "+8613900139000", "not the password"))
        with pytest.raises(TooManyAttempts) as info, rkit.begin() as tx:
            tx.registration.authenticate(email=email, password="not the password")
        answers.append(info.value.to_dict())
    assert answers[0].pop("retry_after") == pytest.approx(answers[1].pop("retry_after"), abs=2)
    assert answers[0] == answers[1]
