"""Sign-in: one error for unknown accounts and wrong passwords, in comparable time; throttling;
sessions; rehashing; codes."""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid

import pytest
import sqlalchemy as sa

from ngo_kit import Kit, PermissionDenied, TokenExpired, TokenInvalid, TokenUsed
from ngo_kit.modules.registration.errors import (
    AccountSuspended,
    SignInFailed,
    TooManyAttempts,
    WrongPassword,
)
from ngo_kit.modules.registration.models import Account, OneTimeCode, SignInSession, Throttle
from ngo_kit.modules.registration.passwords import Passwords
from ngo_kit.modules.registration.schemas import SignIn, UserRead
from ngo_kit.modules.registration.service import _digest
from ngo_kit.modules.registration.testing import PASSWORD, KitWithAna, Register, last_data
from ngo_kit.tenancy import SYSTEM, OrgRead
from ngo_kit.testing import KitFactory, MessageCatcher, SQLiteLockProbe


def _fail(kit: Kit, org: OrgRead | None, **credentials: str) -> BaseException:
    with pytest.raises((SignInFailed, TooManyAttempts)) as info, kit.begin(org=org) as tx:
        tx.registration.authenticate(**credentials)
    return info.value


def test_sign_in_returns_an_opaque_session_stored_only_as_a_digest(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    with rkit.begin() as tx:  # no organisation needed
        signed = tx.registration.authenticate(email="ANA@example.org", password=PASSWORD)
    assert signed.user.id == uid
    assert len(signed.token) >= 43  # 256 random bits, URL-safe
    with rkit.begin() as tx:
        stored = list(tx.session.scalars(sa.select(SignInSession.token_hash)))
        assert signed.token not in stored and len(stored) == 1
        assert tx.registration.session_user(signed.token).id == uid
        tx.registration.sign_out(signed.token)
    with pytest.raises(TokenInvalid), rkit.begin() as tx:
        tx.registration.session_user(signed.token)


def _session_last_used(kit: Kit, token: str, moved: dt.timedelta | None = None) -> dt.datetime:
    """The session's ``last_used_at``, after moving it and ``created_at`` by ``moved``."""
    digest = SignInSession.token_hash == _digest(token)
    with kit.begin() as tx:
        session = tx.session.scalars(sa.select(SignInSession).where(digest)).one()
        if moved is not None:
            assert session.last_used_at is not None
            session.created_at += moved
            session.last_used_at += moved
            tx.session.flush()
        found = session.last_used_at
    assert found is not None
    return found


@pytest.fixture
def ana_signed_in(rkit: Kit, rorg: OrgRead, register: Register) -> SignIn:
    """Ana's account, signed in just now."""
    register(email="ana@example.org")
    with rkit.begin() as tx:
        signed: SignIn = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    return signed


def _use(kit: Kit, token: str) -> UserRead:
    with kit.begin() as tx:
        user: UserRead = tx.registration.session_user(token)
    return user


def test_a_session_left_unused_for_the_idle_time_ends(rkit: Kit, ana_signed_in: SignIn) -> None:
    token = ana_signed_in.token
    _session_last_used(rkit, token, -dt.timedelta(hours=167))  # 30 days had 29 to run
    _use(rkit, token)
    _session_last_used(rkit, token, -dt.timedelta(hours=169))
    with pytest.raises(TokenExpired):
        _use(rkit, token)


def test_a_session_in_use_stays_open_and_notes_its_use_every_few_minutes(
    rkit: Kit, ana_signed_in: SignIn
) -> None:
    token = ana_signed_in.token
    opened = _session_last_used(rkit, token)
    assert opened == ana_signed_in.expires_at - dt.timedelta(days=30)  # sign-in is a use
    _use(rkit, token)  # used again at once: nothing to write
    assert _session_last_used(rkit, token) == opened
    for _ in range(3):  # a use every 100 hours keeps it open past any 168 hours of idling
        old = _session_last_used(rkit, token, -dt.timedelta(hours=100))
        _use(rkit, token)
        assert _session_last_used(rkit, token) > old + dt.timedelta(hours=99)


def test_with_no_idle_time_a_session_lasts_its_days(kit_with_ana: KitWithAna) -> None:
    kit, _org, _ana = kit_with_ana(SESSION_IDLE_HOURS="0")
    with kit.begin() as tx:
        signed = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    _session_last_used(kit, signed.token, -dt.timedelta(days=29))
    assert _use(kit, signed.token).email == "ana@example.org"


def test_a_session_from_before_use_was_noted_idles_from_its_sign_in(
    rkit: Kit, ana_signed_in: SignIn
) -> None:
    token = ana_signed_in.token
    digest = SignInSession.token_hash == _digest(token)
    with rkit.begin() as tx:
        tx.session.execute(sa.update(SignInSession).where(digest).values(last_used_at=None))
    _use(rkit, token)  # signed in just now: open, and its use is noted from here on
    with rkit.begin() as tx:
        session = tx.session.scalars(sa.select(SignInSession).where(digest)).one()
        session.created_at -= dt.timedelta(hours=169)
        session.last_used_at = None
    with pytest.raises(TokenExpired):
        _use(rkit, token)


def test_unknown_account_and_wrong_password_give_the_same_error(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    register(email="ana@example.org")
    unknown = _fail(rkit, rorg, email="nobody@example.org", password="whatever it is")
    wrong = _fail(rkit, rorg, email="ana@example.org", password="whatever it is")
    assert type(unknown) is type(wrong) is SignInFailed
    assert str(unknown) == str(wrong)
    assert unknown.to_dict() == wrong.to_dict()


def test_sign_in_time_for_an_unknown_account_matches_a_wrong_password(
    owasp_hashing: None, kit_factory: KitFactory
) -> None:
    kit = kit_factory(modules=["registration"], secret_keys=["timing-test-secret"])
    org = kit.create_organisation("timing", "Timing")
    with kit.begin(org=org) as tx:
        tx.registration.register(email="known@example.org", password=PASSWORD, display_name="K")
    kit.outbox.work()

    def attempt(email: str) -> float:
        start = time.perf_counter()
        with pytest.raises(SignInFailed), kit.begin() as tx:
            tx.registration.authenticate(email=email, password="not the password", client=None)
        return time.perf_counter() - start

    ratios = []
    for round_ in range(3):
        unknown: list[float] = []
        wrong: list[float] = []
        for i in range(8):
            # new identifiers each time so throttling never kicks in; interleaved order
            pair = [("u", f"nobody{round_}-{i}@example.org"), ("w", "known@example.org")]
            for kind, email in pair if i % 2 else reversed(pair):
                (unknown if kind == "u" else wrong).append(attempt(email))
            with kit.begin() as tx:  # keep the known account under its throttle limit
                tx.session.execute(sa.text("DELETE FROM registration_throttle"))
        ratios.append(statistics.median(unknown) / statistics.median(wrong))
    ratio = statistics.median(ratios)
    assert 0.8 <= ratio <= 1.25, ratios


def test_an_account_is_locked_after_repeated_failures_even_when_each_rolled_back(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    register(email="ana@example.org")
    for _ in range(5):
        assert isinstance(
            _fail(rkit, rorg, email="ana@example.org", password="wrong guess!"), SignInFailed
        )
    locked = _fail(rkit, rorg, email="ana@example.org", password=PASSWORD)
    assert isinstance(locked, TooManyAttempts)
    # an unknown identifier locks the same way, so locking tells nothing either
    for _ in range(5):
        _fail(rkit, rorg, email="ghost@example.org", password="wrong guess!")
    assert isinstance(
        _fail(rkit, rorg, email="ghost@example.org", password="x" * 8), TooManyAttempts
    )


def test_a_failure_caught_inside_a_committed_transaction_counts_once(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    register(email="ana@example.org")
    with rkit.begin(org=rorg) as tx:
        for _ in range(4):
            with pytest.raises(SignInFailed):
                tx.registration.authenticate(email="ana@example.org", password="wrong guess!")
    with rkit.begin() as tx:
        failures = tx.session.scalar(sa.text("SELECT failures FROM registration_throttle"))
    assert failures == 4
    assert isinstance(
        _fail(rkit, rorg, email="ana@example.org", password="wrong again"), SignInFailed
    )
    assert isinstance(
        _fail(rkit, rorg, email="ana@example.org", password=PASSWORD), TooManyAttempts
    )


@pytest.mark.parametrize(
    "success", [{"email": "ana@example.org"}, {"phone": "+8613800138000"}], ids=["email", "phone"]
)
def test_a_success_clears_the_account_failure_count(
    rkit: Kit, rorg: OrgRead, register: Register, success: dict[str, str]
) -> None:
    # failures made by email are cleared by a success by email or by phone alike
    register(email="ana@example.org", phone="13800138000")
    for _ in range(4):
        _fail(rkit, rorg, email="ana@example.org", password="wrong guess!")
    with rkit.begin() as tx:
        tx.registration.authenticate(password=PASSWORD, **success)
    with rkit.begin() as tx:
        assert tx.session.scalar(sa.text("SELECT COUNT(*) FROM registration_throttle")) == 0
    for _ in range(4):
        assert isinstance(
            _fail(rkit, rorg, email="ana@example.org", password="nope nope"), SignInFailed
        )


def test_failures_by_email_and_by_phone_count_against_one_account(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    # five guesses per account, not five per address the account happens to have
    register(email="ana@example.org", phone="13800138000")
    for credentials in 3 * [{"email": "ana@example.org"}] + 2 * [{"phone": "13800138000"}]:
        assert isinstance(_fail(rkit, rorg, password="wrong guess!", **credentials), SignInFailed)
    for credentials in ({"email": "ana@example.org"}, {"phone": "+86 138 0013 8000"}):
        assert isinstance(_fail(rkit, rorg, password=PASSWORD, **credentials), TooManyAttempts)


def test_wrong_current_passwords_count_as_failed_sign_ins_of_the_account(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    # a stolen session cannot be used to guess the password through change_password
    uid = register(email="ana@example.org")
    for _ in range(3):
        _fail(rkit, rorg, email="ana@example.org", password="wrong guess!")
    for _ in range(2):
        with pytest.raises(WrongPassword), rkit.begin(org=rorg, actor=uid) as tx:
            tx.registration.change_password("another guess", "a brand new secret")
    with pytest.raises(TooManyAttempts) as info, rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.change_password(PASSWORD, "a brand new secret")
    retry_after = info.value.retry_after
    assert retry_after is not None and 0 < retry_after <= 15 * 60
    assert isinstance(
        _fail(rkit, rorg, email="ana@example.org", password=PASSWORD), TooManyAttempts
    )
    with rkit.begin() as tx:  # once the lock has passed, the right password works again
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        tx.session.execute(
            sa.text("UPDATE registration_throttle SET locked_until = :t"), {"t": past}
        )
    with rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.change_password(PASSWORD, "a brand new secret")


def test_a_client_key_is_locked_after_failures_across_accounts(kit_with_ana: KitWithAna) -> None:
    kit, org, _ana = kit_with_ana(CLIENT_FAILURES="3")
    for n in range(3):
        _fail(kit, org, email=f"p{n}@example.org", password="guess guess", client="203.0.113.9")
    blocked = _fail(kit, org, email="ana@example.org", password=PASSWORD, client="203.0.113.9")
    assert isinstance(blocked, TooManyAttempts)
    with kit.begin() as tx:  # another client is not affected
        tx.registration.authenticate(
            email="ana@example.org", password=PASSWORD, client="198.51.100.1"
        )


def test_suspended_accounts_cannot_sign_in(rkit: Kit, rorg: OrgRead, register: Register) -> None:
    uid = register(email="ana@example.org")
    with rkit.begin() as tx:
        signed = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.suspend(uid)
    with pytest.raises(AccountSuspended), rkit.begin() as tx:
        tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    with pytest.raises(TokenInvalid), rkit.begin() as tx:
        tx.registration.session_user(signed.token)
    with pytest.raises(PermissionDenied), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.reinstate(uid)
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        assert tx.registration.reinstate(uid).status == "active"
    with rkit.begin() as tx:
        tx.registration.authenticate(email="ana@example.org", password=PASSWORD)


def test_password_reset_signs_out_everywhere_and_notifies(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(email="ana@example.org")
    with rkit.begin() as tx:
        one = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
        two = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_password_reset(email="ana@example.org")
    rkit.outbox.work()
    token = last_data(message_catcher, "ana@example.org", "token")
    with rkit.begin(org=rorg) as tx:
        tx.registration.reset_password(token, "a brand new secret")
    for session in (one, two):
        with pytest.raises(TokenInvalid), rkit.begin() as tx:
            tx.registration.session_user(session.token)
    assert message_catcher.to("ana@example.org")[-1].subject == "Your password was changed"


def test_reset_requests_say_nothing_about_unknown_accounts(
    rkit: Kit, rorg: OrgRead, message_catcher: MessageCatcher
) -> None:
    with rkit.begin(org=rorg) as tx:
        assert tx.registration.request_password_reset(email="nobody@example.org") is None
    assert message_catcher.to("nobody@example.org") == []  # nothing inside the request
    rkit.outbox.work()  # the address's owner is told that no account has it, in two languages
    [told] = message_catcher.to("nobody@example.org")
    assert told.data == {"purpose": "registration.no-account-reset"}
    assert "no account that can sign in has it" in told.body and "没有可以登录的账号" in told.body


def test_change_password_needs_the_current_one(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    with pytest.raises(WrongPassword), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.change_password("not my password", "a brand new secret")
    with rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.change_password(PASSWORD, "a brand new secret")
    with rkit.begin() as tx:
        tx.registration.authenticate(email="ana@example.org", password="a brand new secret")


def test_old_parameters_are_rehashed_on_sign_in(
    kit_factory: KitFactory, owasp_hashing: None
) -> None:
    kit = kit_factory(modules=["registration"])
    org = kit.create_organisation("rainbow", "Rainbow")
    with kit.begin(org=org) as tx:
        uid = tx.registration.register(
            email="a@example.org", password=PASSWORD, display_name="A"
        ).id
        weak = (
            tx.registration.passwords.context.handler("argon2")
            .using(memory_cost=1024, rounds=1)
            .hash(PASSWORD)
        )
        tx.session.execute(sa.update(Account).where(Account.id == uid).values(password_hash=weak))
    kit.outbox.work()
    with kit.begin() as tx:
        tx.registration.authenticate(email="a@example.org", password=PASSWORD)
        stored = tx.session.scalar(sa.select(Account.password_hash).where(Account.id == uid))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_legacy_bcrypt_hash_verifies_and_is_replaced_by_argon2id(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    pytest.importorskip("bcrypt")
    uid = register(email="a@example.org")
    with rkit.begin() as tx:
        legacy = tx.registration.passwords.context.handler("bcrypt").hash(PASSWORD)
        tx.session.execute(sa.update(Account).where(Account.id == uid).values(password_hash=legacy))
    with rkit.begin() as tx:
        tx.registration.authenticate(email="a@example.org", password=PASSWORD)
        stored = tx.session.scalar(sa.select(Account.password_hash).where(Account.id == uid))
    assert stored is not None and stored.startswith("$argon2id$")


def test_phone_sign_in_with_a_one_time_code(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(phone="13800138000", password=None)
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_sign_in_code("+86 138 0013 8000")
        stored = tx.session.scalars(sa.select(OneTimeCode.code_hash)).all()
    rkit.outbox.work()
    code = last_data(message_catcher, "+8613800138000", "code")
    assert code not in stored and len(code) == 6
    with rkit.begin(org=rorg) as tx:
        assert tx.registration.authenticate(phone="13800138000", code=code).user.id == uid
    # single use
    assert isinstance(_fail(rkit, rorg, phone="13800138000", code=code), SignInFailed)


def test_phone_verification_code_allows_five_attempts_then_dies(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(phone="13800138000", email=None)
    code = last_data(message_catcher, "+8613800138000", "code")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(TokenInvalid), rkit.begin(org=rorg, actor=uid) as tx:
            tx.registration.verify_phone(wrong)
    with pytest.raises(TooManyAttempts), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.verify_phone(code)


def test_phone_verification_code_expires_after_ten_minutes(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(phone="13800138000", email=None)
    code = last_data(message_catcher, "+8613800138000", "code")
    with rkit.begin() as tx:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        tx.session.execute(sa.update(OneTimeCode).values(expires_at=past))
    with pytest.raises(TokenExpired), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.verify_phone(code)


def test_phone_verification_activates_and_is_single_use(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(phone="13800138000", email=None)
    code = last_data(message_catcher, "+8613800138000", "code")
    with rkit.begin(org=rorg, actor=uid) as tx:
        user = tx.registration.verify_phone(code)
    assert user.phone_verified and user.status == "active"
    with pytest.raises(TokenUsed), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.verify_phone(code)


def test_sign_out_everywhere_is_for_the_person_or_the_system(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    from ngo_kit import PermissionDenied

    ana = register(email="ana@example.org")
    bo = register(email="bo@example.org")
    with pytest.raises(PermissionDenied), rkit.begin(org=rorg, actor=bo) as tx:
        tx.registration.sign_out_everywhere(ana)
    with rkit.begin() as tx:
        signed = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    with rkit.begin(org=rorg, actor=ana) as tx:
        assert tx.registration.sign_out_everywhere() == 1
    with pytest.raises(TokenInvalid), rkit.begin() as tx:
        tx.registration.session_user(signed.token)
    assert isinstance(uuid.uuid4(), uuid.UUID)


def test_on_sqlite_a_sign_in_verifies_before_it_takes_the_write_lock(
    rkit: Kit, rorg: OrgRead, register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The argon2id verify runs once per attempt, with the write lock free, on SQLite."""
    if rkit.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    register(email="ana@example.org")
    probe = SQLiteLockProbe(rkit)
    lock_free: list[bool] = []
    verify = Passwords.verify

    def verify_and_probe(
        self: Passwords, password: str, stored: str | None
    ) -> tuple[bool, str | None]:
        lock_free.append(probe.free())
        return verify(self, password, stored)

    monkeypatch.setattr(Passwords, "verify", verify_and_probe)
    with rkit.begin(org=rorg) as tx:
        signed = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
    wrong = _fail(rkit, rorg, email="ana@example.org", password="wrong guess!")
    unknown = _fail(rkit, rorg, email="nobody@example.org", password=PASSWORD)
    probe.close()
    assert isinstance(wrong, SignInFailed) and isinstance(unknown, SignInFailed)
    assert lock_free == [True, True, True]  # one verify per attempt, each before the lock
    with rkit.begin() as tx:
        assert tx.registration.session_user(signed.token).email == "ana@example.org"
        failures = tx.connection.execute(sa.select(sa.func.count()).select_from(Throttle)).scalar()
    assert failures == 2  # the failures were counted under the lock as before


def test_a_password_changed_between_the_early_verify_and_the_lock_is_verified_again(
    rkit: Kit, rorg: OrgRead, register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in reuses its early verify only for the hash it reads under the lock."""
    if rkit.engine.dialect.name != "sqlite":
        pytest.skip("the early verify is SQLite's")
    uid = register(email="ana@example.org")
    verify = Passwords.verify
    calls: list[bool] = []

    def verify_then_change(
        self: Passwords, password: str, stored: str | None
    ) -> tuple[bool, str | None]:
        answer = verify(self, password, stored)
        calls.append(answer[0])
        if len(calls) == 1:  # between the early verify and the sign-in's own read
            with rkit.begin(actor=SYSTEM) as other:
                other.connection.execute(
                    sa.update(Account)
                    .where(Account.id == uid)
                    .values(password_hash=self.hash("a newer password"))
                )
        return answer

    monkeypatch.setattr(Passwords, "verify", verify_then_change)
    assert isinstance(_fail(rkit, rorg, email="ana@example.org", password=PASSWORD), SignInFailed)
    assert calls == [True, False]  # the old password matched early, not the hash under the lock
