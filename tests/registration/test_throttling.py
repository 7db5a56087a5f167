"""Throttling of codes and links: per address or number typed in, per signed-in account, per
change target and per client key; unknown addresses answer exactly like known ones; refused
requests send nothing; windows end; erasure forgets the counts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ngo_kit import Kit
from ngo_kit.modules.registration.errors import TooManyAttempts, TooManyRequests
from ngo_kit.modules.registration.models import Throttle
from ngo_kit.modules.registration.testing import PASSWORD, Register
from ngo_kit.tenancy import SYSTEM, OrgRead
from ngo_kit.testing import KitFactory, MessageCatcher, run_together

LIMIT = 5  # the default send_limit
HOUR = 3600  # the default send_window_seconds


def _refused(call: Callable[[], object]) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as info:
        call()
    return info.value


def _allowed(times: int, call: Callable[[], object]) -> None:
    for _ in range(times):
        call()


def test_reset_requests_are_limited_per_address_and_unknown_addresses_behave_the_same(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(email="ana@example.org")
    answers: dict[str, dict[str, object]] = {}
    for email in ("ana@example.org", "nobody@example.org"):

        def ask(email: str = email) -> None:
            with rkit.begin(org=rorg) as tx:
                tx.registration.request_password_reset(email=email)
            rkit.outbox.work()

        _allowed(LIMIT, ask)
        refused = _refused(ask)
        assert 0 < (refused.retry_after or 0) <= HOUR
        answers[email] = refused.to_dict()
    known, unknown = answers["ana@example.org"], answers["nobody@example.org"]
    assert known.pop("retry_after") == pytest.approx(unknown.pop("retry_after"), abs=2)
    assert (
        known
        == unknown
        == {
            "code": "too_many_requests",
            "message": "Too many codes or links were requested; try again later.",
        }
    )
    resets = [m for m in message_catcher.to("ana@example.org") if "token" in m.data]
    assert len(resets) == 1 + LIMIT  # the verification link at sign-up, then the resets
    with rkit.begin(org=rorg) as tx:  # another address has its own budget
        tx.registration.request_password_reset(email="bo@example.org")
    rkit.outbox.work()


def test_reset_requests_by_phone_are_limited_per_number(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(phone="13800138000", email=None)

    def ask(phone: str = "+86 138 0013 8000") -> None:
        with rkit.begin(org=rorg) as tx:
            tx.registration.request_password_reset(phone=phone)
        rkit.outbox.work()

    _allowed(LIMIT, ask)
    _refused(ask)
    _refused(lambda: ask("13800138000"))  # the same number, typed another way
    links = [m for m in message_catcher.to("+8613800138000") if "token" in m.data]
    assert len(links) == LIMIT
    _allowed(LIMIT, lambda: ask("13900139000"))  # nobody's number: the same budget
    _refused(lambda: ask("13900139000"))


def test_sign_in_code_requests_are_limited_per_number_known_or_not(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(phone="13800138000", email=None)
    for phone in ("13800138000", "13900139000"):

        def ask(phone: str = phone) -> None:
            with rkit.begin(org=rorg) as tx:
                tx.registration.request_sign_in_code(phone)
            rkit.outbox.work()

        _allowed(LIMIT, ask)
        _refused(ask)
    codes = [m for m in message_catcher.to("+8613800138000") if m.data["purpose"] == "sign-in"]
    assert len(codes) == LIMIT


def test_verification_resends_are_limited_per_account(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    ana = register(email="ana@example.org", phone="13800138000")

    def email_link() -> None:
        with rkit.begin(org=rorg, actor=ana) as tx:
            tx.registration.send_email_verification()

    def phone_code() -> None:
        with rkit.begin(org=rorg, actor=ana) as tx:
            tx.registration.send_phone_code()

    _allowed(3, email_link)
    _allowed(2, phone_code)
    _refused(email_link)  # one budget for everything the account asks to be sent
    _refused(phone_code)
    assert len(message_catcher.to("ana@example.org")) == 1 + 3
    assert len(message_catcher.to("+8613800138000")) == 1 + 2
    bo = register(email="bo@example.org")
    with rkit.begin(org=rorg, actor=bo) as tx:  # others are not affected
        tx.registration.send_email_verification()


def test_email_changes_are_limited_per_account_and_per_new_address(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    people = [register(email=f"p{n}@example.org") for n in range(LIMIT + 1)]

    def change(who: uuid.UUID, to: str) -> None:
        with rkit.begin(org=rorg, actor=who) as tx:
            tx.registration.request_email_change(to)
        rkit.outbox.work()

    for who in people[:LIMIT]:  # many accounts aiming at one address
        change(who, "target@example.org")
    _refused(lambda: change(people[LIMIT], "target@example.org"))
    assert len(message_catcher.to("target@example.org")) == LIMIT
    for n in range(LIMIT - 1):  # one account aiming at many addresses
        change(people[LIMIT], f"new{n}@example.org")
    change(people[LIMIT], "fresh@example.org")  # the refused request did not count
    _refused(lambda: change(people[LIMIT], "fresh2@example.org"))


def test_phone_changes_are_limited_per_account_and_per_new_number(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    ana = register(email="ana@example.org")
    bo = register(email="bo@example.org")

    def change(who: uuid.UUID, to: str) -> None:
        with rkit.begin(org=rorg, actor=who) as tx:
            tx.registration.request_phone_change(to)
        rkit.outbox.work()

    for _ in range(3):
        change(ana, "13800138000")
    for _ in range(2):
        change(bo, "13800138000")
    _refused(lambda: change(bo, "+86 138 0013 8000"))  # the number's budget is spent
    assert len(message_catcher.to("+8613800138000")) == LIMIT
    change(bo, "13900139000")  # another number: bo's account has budget left
    change(ana, "13700137000")
    change(ana, "13600136000")
    _refused(lambda: change(ana, "13500135000"))  # ana's account has asked five times


def test_a_client_key_is_limited_across_addresses(
    kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NGO_KIT_REGISTRATION_CLIENT_SEND_LIMIT", "3")
    kit = kit_factory(modules=["registration"])
    org = kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})

    def ask(email: str, client: str = "ip:203.0.113.9") -> None:
        with kit.begin(org=org) as tx:
            tx.registration.request_password_reset(email=email, client=client)
        kit.outbox.work()

    for n in range(3):
        ask(f"p{n}@example.org")
    refused = _refused(lambda: ask("p9@example.org"))
    assert 0 < (refused.retry_after or 0) <= HOUR

    def code(client: str) -> None:
        with kit.begin(org=org) as tx:
            tx.registration.request_sign_in_code("13800138000", client=client)
        kit.outbox.work()

    _refused(lambda: code("ip:203.0.113.9"))  # one budget for every kind of request
    ask("p9@example.org", client="ip:198.51.100.1")  # another client is not affected
    code("ip:198.51.100.1")


def test_a_new_window_starts_when_the_old_one_ends(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    def ask() -> None:
        with rkit.begin(org=rorg) as tx:
            tx.registration.request_password_reset(email="ana@example.org")
        rkit.outbox.work()

    _allowed(LIMIT, ask)
    _refused(ask)
    with rkit.begin() as tx:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=HOUR + 1)
        tx.session.execute(sa.update(Throttle).values(window_started_at=past))
    _allowed(LIMIT, ask)
    _refused(ask)


def test_changes_to_a_taken_address_count_as_any_other(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    ana = register(email="ana@example.org")
    register(email="taken@example.org")
    for _ in range(LIMIT):  # probing which addresses have accounts is not free
        with rkit.begin(org=rorg, actor=ana) as tx:
            tx.registration.request_email_change("taken@example.org")
    with pytest.raises(TooManyRequests), rkit.begin(org=rorg, actor=ana) as tx:
        tx.registration.request_email_change("free@example.org")


def test_the_throttle_is_a_429_kind_of_too_many_attempts_in_both_languages(
    rkit: Kit, rorg: OrgRead
) -> None:
    def ask() -> None:
        with rkit.begin(org=rorg) as tx:
            tx.registration.request_password_reset(email="ana@example.org")
        rkit.outbox.work()

    _allowed(LIMIT, ask)
    refused = _refused(ask)
    assert isinstance(refused, TooManyAttempts)
    assert refused.code == "too_many_requests"
    assert refused.message_in("zh_CN") == "请求发送验证码或链接的次数过多，请稍后再试。"


def test_erasure_forgets_the_counts_kept_under_the_persons_addresses(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    ana = register(email="ana@example.org", phone="13800138000")
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_password_reset(email="ana@example.org")
        tx.registration.request_sign_in_code("13800138000")
    rkit.outbox.work()
    with rkit.begin(org=rorg, actor=ana) as tx:
        tx.registration.send_email_verification()
    assert_erasure_deletes_every_count(rkit, rorg, ana, counts=3)


def test_erasure_forgets_the_counts_kept_under_addresses_the_person_asked_to_switch_to(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    ana = register(email="ana@example.org", phone="13800138000")
    with rkit.begin(org=rorg, actor=ana) as tx:
        tx.registration.request_email_change("ana.new@example.org")
        tx.registration.request_phone_change("13900139000")
    rkit.outbox.work()
    assert_erasure_deletes_every_count(rkit, rorg, ana, counts=3)


def assert_erasure_deletes_every_count(
    rkit: Kit, rorg: OrgRead, person: uuid.UUID, *, counts: int
) -> None:
    """``counts`` throttle rows are kept before ``person`` is erased, and none after."""

    def kept() -> int:
        with rkit.begin() as tx:
            return int(tx.session.scalar(sa.select(sa.func.count()).select_from(Throttle)) or 0)

    assert kept() == counts
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.erase(person)
    assert kept() == 0


def test_concurrent_requests_never_pass_the_limit(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(email="ana@example.org")

    def ask(i: int) -> str:
        try:
            with rkit.begin(org=rorg) as tx:
                tx.registration.request_password_reset(email="ana@example.org")
            rkit.outbox.work()
        except TooManyRequests:
            return "refused"
        return "sent"

    assert sorted(run_together(8, ask)) == ["refused"] * 3 + ["sent"] * LIMIT
    resets = [m for m in message_catcher.to("ana@example.org") if "reset" in m.data["purpose"]]
    assert len(resets) == LIMIT


# --- sessions after a password change --------------------------------------------------------


@pytest.fixture
def three_sessions(rkit: Kit, register: Register) -> tuple[uuid.UUID, list[str]]:
    """Ana's account with three open sessions (tokens)."""
    ana = register(email="ana@example.org")
    tokens = []
    for _ in range(3):
        with rkit.begin() as tx:
            tokens.append(
                tx.registration.authenticate(email="ana@example.org", password=PASSWORD).token
            )
    return ana, tokens


def _live(kit: Kit, token: str) -> bool:
    from ngo_kit import TokenInvalid

    try:
        with kit.begin() as tx:
            tx.registration.session_user(token)
    except TokenInvalid:
        return False
    return True


def test_changing_the_password_signs_out_every_other_session(
    rkit: Kit, rorg: OrgRead, three_sessions: tuple[uuid.UUID, list[str]]
) -> None:
    ana, (current, other, third) = three_sessions
    with rkit.begin(org=rorg, actor=ana) as tx:
        ended = tx.registration.change_password(
            PASSWORD, "a brand new secret", keep_session=current
        )
    assert ended == 2
    assert [_live(rkit, t) for t in (current, other, third)] == [True, False, False]


def test_changing_the_password_without_a_session_to_keep_signs_out_everywhere(
    rkit: Kit, rorg: OrgRead, three_sessions: tuple[uuid.UUID, list[str]]
) -> None:
    ana, tokens = three_sessions
    with rkit.begin(org=rorg, actor=ana) as tx:
        assert tx.registration.change_password(PASSWORD, "a brand new secret") == 3
    assert not any(_live(rkit, t) for t in tokens)


def test_a_wrong_current_password_signs_nobody_out(
    rkit: Kit, rorg: OrgRead, three_sessions: tuple[uuid.UUID, list[str]]
) -> None:
    from ngo_kit.modules.registration.errors import WrongPassword

    ana, tokens = three_sessions
    with pytest.raises(WrongPassword), rkit.begin(org=rorg, actor=ana) as tx:
        tx.registration.change_password("not my password", "a brand new secret")
    assert all(_live(rkit, t) for t in tokens)
