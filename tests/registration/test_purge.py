"""purge(): ended sessions, spent codes and throttle counts past their window go; nothing a rule
still reads does."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from ngo_kit import Kit, PermissionDenied, TokenInvalid, ValidationFailed
from ngo_kit.modules.registration.models import OneTimeCode, SignInSession, Throttle
from ngo_kit.modules.registration.passwords import for_kit
from ngo_kit.modules.registration.testing import PASSWORD, Register
from ngo_kit.tenancy import SYSTEM, OrgRead

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def _sessions(kit: Kit, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        with kit.begin() as tx:
            signed = tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
        tokens.append(signed.token)
    return tokens


def _age_sessions(kit: Kit, changes: list[dict[str, dt.datetime | None]]) -> None:
    with kit.begin() as tx:
        rows = tx.session.scalars(sa.select(SignInSession).order_by(SignInSession.created_at))
        for row, change in zip(list(rows), changes, strict=True):
            for name, value in change.items():
                setattr(row, name, value)


def _add_codes(kit: Kit, uid: uuid.UUID) -> None:
    with kit.begin() as tx:
        for used, expires in ((NOW - DAY, NOW + DAY), (None, NOW - DAY), (None, NOW + DAY)):
            tx.session.add(
                OneTimeCode(
                    account_id=uid,
                    purpose="verify-phone",
                    target="+8613800138000",
                    code_hash="0" * 64,
                    expires_at=expires,
                    used_at=used,
                )
            )


def _add_throttles(kit: Kit) -> None:
    settings, _ = for_kit(kit)  # a count lives as long as the longer of its windows
    window = dt.timedelta(
        seconds=max(settings.throttle_window_seconds, settings.send_window_seconds)
    )
    minute = dt.timedelta(minutes=1)
    now = dt.datetime.now(dt.UTC)  # not NOW: the module may have been imported minutes ago
    with kit.begin() as tx:
        for key, started, locked in (
            ("a:ended", now - window - minute, None),  # window just over, no lock: goes
            ("a:ended-lock-passed", now - 2 * DAY, now - DAY),  # lock over too: goes
            ("a:open", now - window + minute, None),  # window about to end: stays
            ("a:locked", now - 2 * DAY, now + DAY),  # still locked: stays
        ):
            tx.session.add(
                Throttle(key=key, failures=5, window_started_at=started, locked_until=locked)
            )


def test_purge_deletes_only_what_no_rule_reads_any_more(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    live, recent, *_ = _sessions(rkit, 6)
    _age_sessions(
        rkit,
        [
            {},  # live: stays
            {"revoked_at": NOW - DAY},  # revoked yesterday: kept for the export
            {"revoked_at": NOW - 40 * DAY},  # revoked long ago: goes
            {"expires_at": NOW - 40 * DAY},  # expired long ago: goes
            {"last_used_at": NOW - 40 * DAY},  # idle 7 days, so ended 33 days ago: goes
            {"last_used_at": NOW - 10 * DAY},  # ended 3 days ago: kept for the export
        ],
    )
    _add_codes(rkit, uid)
    _add_throttles(rkit)
    with rkit.begin(actor=SYSTEM) as tx:
        done = tx.registration.purge()
    assert (done.sessions, done.codes, done.throttles) == (3, 2, 2)
    with rkit.begin() as tx:
        assert tx.registration.session_user(live).id == uid
        with pytest.raises(TokenInvalid):
            tx.registration.session_user(recent)
        assert tx.session.scalar(sa.select(sa.func.count()).select_from(SignInSession)) == 3
        (code,) = tx.session.scalars(sa.select(OneTimeCode))
        assert code.used_at is None and code.expires_at > NOW
        keys = set(tx.session.scalars(sa.select(Throttle.key)))
        assert keys == {"a:open", "a:locked"}
    with rkit.begin(actor=SYSTEM) as tx:  # nothing left to purge
        again = tx.registration.purge()
    assert (again.sessions, again.codes, again.throttles) == (0, 0, 0)


def test_keep_days_zero_purges_every_ended_session(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    register(email="ana@example.org")
    live, ended = _sessions(rkit, 2)
    with rkit.begin() as tx:
        tx.registration.sign_out(ended)
    with rkit.begin(actor=SYSTEM) as tx:
        assert tx.registration.purge(keep_days=0).sessions == 1
    with rkit.begin() as tx:
        assert tx.registration.session_user(live)


@pytest.mark.parametrize("actor", [None, "member"])
def test_purge_is_for_the_system_actor_only(
    rkit: Kit, rorg: OrgRead, register: Register, actor: str | None
) -> None:
    uid = register(email="ana@example.org")
    with pytest.raises(PermissionDenied), rkit.begin(org=rorg, actor=actor and uid) as tx:
        tx.registration.purge()


@pytest.mark.parametrize("keep_days", [-1, 1.5, True, "30"])
def test_keep_days_must_be_a_whole_number_of_days_from_zero(rkit: Kit, keep_days: object) -> None:
    with pytest.raises(ValidationFailed) as info, rkit.begin(actor=SYSTEM) as tx:
        tx.registration.purge(keep_days=keep_days)
    assert info.value.field == "keep_days"


def test_the_command_line_purges(
    rkit: Kit, rorg: OrgRead, register: Register, capsys: pytest.CaptureFixture[str]
) -> None:
    from ngo_kit.cli import main

    register(email="ana@example.org")
    _add_throttles(rkit)
    main(
        [
            "--database-url",
            rkit.engine.url.render_as_string(hide_password=False),
            "--no-autoload",
            "--module",
            "registration",
            "registration",
            "purge",
            "--keep-days",
            "0",
        ]
    )
    assert capsys.readouterr().out.strip() == (
        "purged 0 sessions, 0 one-time codes, 2 throttle counts"
    )
