"""API keys through Python: the service, the key as an actor, tenancy, rotation and timing."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ngo_kit import throttle
from ngo_kit.api_keys import ApiKeyInvalid, authenticate
from ngo_kit.cli import main
from ngo_kit.db import utcnow
from ngo_kit.errors import NotFound, PermissionDenied, ValidationFailed
from ngo_kit.kit import Kit
from ngo_kit.tenancy import SYSTEM, KeyActor
from ngo_kit.testing import KitFactory


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    made = kit_factory(modules=[], api_key_failures_per_window=10**6)
    made.create_organisation("rainbow", "Rainbow")
    made.create_organisation("sunrise", "Sunrise")
    return made


def test_a_key_is_an_actor_with_its_scopes_in_its_own_organisation_only(kit: Kit) -> None:
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        created = tx.api_keys.create(name="job", scopes=["audit.view"])
    actor = authenticate(kit, "rainbow", created.key, "ip:1")
    assert actor == KeyActor(created.id, actor.org_id, "job", frozenset({"audit.view"}))
    with kit.begin(org="rainbow", actor=actor) as tx:
        assert tx.can("audit.view") and not tx.can("members.view")
        assert tx.actor_id is None  # not a person: never acts "for itself"
        assert [o.slug for o in tx.tenancy.list_organisations()] == ["rainbow"]
        tx.events.feed()
    with kit.begin(org="sunrise", actor=actor) as tx:
        assert not tx.can("audit.view")
        with pytest.raises(PermissionDenied):
            tx.events.feed()
    with pytest.raises(ApiKeyInvalid):
        authenticate(kit, "sunrise", created.key, "ip:1")
    with pytest.raises(ApiKeyInvalid):
        authenticate(kit, "no-such-org", created.key, "ip:1")


def test_revoking_is_per_organisation_audited_and_harmless_twice(kit: Kit) -> None:
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        created = tx.api_keys.create(name="job", scopes=["audit.view"])
    with kit.begin(org="sunrise", actor=SYSTEM) as tx, pytest.raises(NotFound):
        tx.api_keys.revoke(created.id)
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        first = tx.api_keys.revoke(created.id)
        assert tx.api_keys.revoke(created.id) == first
        assert tx.api_keys.list_keys() == []
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        kinds = [e.kind for e in tx.events.feed(kind="api_key").events]
    assert kinds == ["api_key.created", "api_key.revoked"]
    with pytest.raises(ApiKeyInvalid):
        authenticate(kit, "rainbow", created.key, "ip:1")


def test_a_scope_whose_permission_is_no_longer_declared_is_ignored(kit: Kit) -> None:
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        created = tx.api_keys.create(name="job", scopes=["audit.view"])
        tx.connection.execute(
            sa.text("UPDATE core_api_key SET scopes = :s"),
            {"s": '["audit.view", "gone.away"]'},
        )
    assert authenticate(kit, "rainbow", created.key, None).scopes == {"audit.view"}


def test_keys_made_under_an_older_secret_work_while_it_is_listed(kit_factory: KitFactory) -> None:
    old = SecretStr("an-old-secret-key-that-is-long-enough-1")
    new = SecretStr("a-new-secret-key-that-is-long-enough-22")
    first = kit_factory(modules=[], secret_keys=[old])
    first.create_organisation("rainbow", "Rainbow")
    with first.begin(org="rainbow", actor=SYSTEM) as tx:
        key = tx.api_keys.create(name="job", scopes=["audit.view"]).key

    def rotated(*keys: SecretStr) -> Kit:
        settings = first.settings.model_copy(update={"secret_keys": list(keys)})
        url = first.engine.url.render_as_string(hide_password=False)
        return Kit(url, modules=[], autoload=False, settings=settings)

    with_both, without_old = rotated(new, old), rotated(new)
    try:
        assert authenticate(with_both, "rainbow", key, None).name == "job"
        with pytest.raises(ApiKeyInvalid):
            authenticate(without_old, "rainbow", key, None)
    finally:
        with_both.dispose()
        without_old.dispose()


def test_bad_input_is_refused_naming_the_field_and_writes_nothing(kit: Kit) -> None:
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        with pytest.raises(ValidationFailed) as bad:
            tx.api_keys.create(name="job", scopes=["audit.view", "*"])
        assert (bad.value.field, bad.value.rule) == ("scopes", "unknown_permission")
        assert "不是已声明的权限" in bad.value.message_in("zh_CN")
        with pytest.raises(ValidationFailed) as empty:
            tx.api_keys.create(name="job", scopes=[])
        assert empty.value.field == "scopes"
        assert tx.api_keys.list_keys(include_revoked=True) == []


def test_refusing_an_unknown_key_takes_as_long_as_a_wrong_secret(kit: Kit) -> None:
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        key = tx.api_keys.create(name="job", scopes=["audit.view"]).key
    prefix = key[: len("ngk_") + 16]
    wrong = prefix + "_" + "B" * 43
    unknown = "ngk_" + "f" * 16 + "_" + "B" * 43

    def attempt(token: str) -> float:
        start = time.perf_counter()
        with pytest.raises(ApiKeyInvalid):
            authenticate(kit, "rainbow", token, "ip:timing")
        return time.perf_counter() - start

    # Each refusal writes a failure count (a commit), whose time on a busy shared disk varies
    # far more than the difference looked for: so each unknown key is timed next to a wrong
    # secret, in alternating order, and the median of those pairs' ratios is compared.
    ratios = []
    for i in range(120):
        pair = [unknown, wrong] if i % 2 else [wrong, unknown]
        times = {token: attempt(token) for token in pair}
        ratios.append(times[unknown] / times[wrong])
    ratio = statistics.median(ratios)
    assert 0.8 <= ratio <= 1.25, (ratio, sorted(ratios)[::12])


def test_an_owner_with_shell_access_creates_lists_and_revokes_keys_from_the_cli(
    kit: Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the command hashes with the deployment's secret keys, as the app does
    keys = ",".join(k.get_secret_value() for k in kit.settings.secret_keys)
    monkeypatch.setenv("NGO_KIT_SECRET_KEYS", keys)
    monkeypatch.setenv("NGO_KIT_ENVIRONMENT", kit.settings.environment)

    def run(*args: str) -> None:
        url = kit.engine.url.render_as_string(hide_password=False)
        main(["--database-url", url, "--no-autoload", "--module", "core", "api-keys", *args])

    run("create", "--org", "rainbow", "--name", "nightly report", "--scope", "audit.view")
    created, key = capsys.readouterr().out.strip().splitlines()
    assert created.startswith("created nightly report (")
    assert authenticate(kit, "rainbow", key, None).scopes == {"audit.view"}
    run("list", "--org", "rainbow")
    listed = capsys.readouterr().out
    assert "nightly report\taudit.view\tactive" in listed and key not in listed
    key_id = created.split("(")[1].rstrip(")")
    run("revoke", "--org", "rainbow", key_id)
    assert capsys.readouterr().out.startswith("revoked nightly report")
    with pytest.raises(ApiKeyInvalid):
        authenticate(kit, "rainbow", key, None)
    with pytest.raises(SystemExit) as refused:
        run("create", "--org", "rainbow", "--name", "x", "--scope", "points.teleport")
    assert refused.value.code == 2
    assert "scopes" in capsys.readouterr().err


def test_purge_deletes_the_throttle_counts_whose_window_has_ended(kit: Kit) -> None:
    for client in ("ip:1", "ip:2"):
        with pytest.raises(ApiKeyInvalid):
            authenticate(kit, "rainbow", "ngk_nonsense", client)
    assert throttle.purge(kit, older_than_seconds=60) == 0
    with kit.engine.begin() as connection:
        connection.execute(
            throttle.THROTTLE_TABLE.update().values(
                window_started_at=utcnow() - dt.timedelta(minutes=2)
            )
        )
    assert throttle.purge(kit, older_than_seconds=60) == 2
