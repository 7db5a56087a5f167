"""Secrets come from settings only: start-up refuses a missing, default or (in production) short
key; every token and code the modules make is keyed by ``settings.secret_keys`` (so rotation
works and another deployment's key verifies nothing); and no key is written into the source.

``tests/core/test_settings.py`` covers the default key alone in production and keys read from
the environment; this file covers the rest."""

from __future__ import annotations

import ast
import collections
import datetime as dt
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_support import KEY_A, KEY_B, KEY_C

from ngo_kit import SYSTEM, ConfigurationError, Kit, KitSettings, TokenTampered
from ngo_kit.errors import TokenInvalid
from ngo_kit.modules.registration.errors import SignInFailed
from ngo_kit.settings import DEFAULT_SECRET, MIN_SECRET_LENGTH
from ngo_kit.testing import TEST_SECRET, KitFactory, MessageCatcher, settings_for_tests
from ngo_kit.tokens import TokenSigner, tokens_for
from ngo_kit.web.testing import PASSWORD as WEB_TEST_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
#: Shipped code: the package, the first-party plugins and the example apps.
SOURCES = [ROOT / "ngo_kit", *sorted((ROOT / "plugins").glob("*/src")), ROOT / "examples"]


def source_files() -> Iterator[tuple[Path, ast.Module]]:
    """Every shipped Python file (migrations aside), parsed."""
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- start-up ------------------------------------------------------------------------------


def _kit(**settings: object) -> Kit:
    return Kit(
        settings=KitSettings.model_validate({"database_url": "sqlite://", **settings}),
        modules=[],
        autoload=False,
    )


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_no_secret_key_at_all_is_refused_in_every_environment(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _kit(environment=environment, secret_keys=[])
    assert info.value.check == "core.E016"
    monkeypatch.setenv("NGO_KIT_SECRET_KEYS", " , ")
    with pytest.raises(ConfigurationError) as info:
        Kit(settings=KitSettings(database_url="sqlite://"), modules=[], autoload=False)
    assert info.value.check == "core.E016"


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_default_secret_is_refused_outside_development_even_as_an_older_key(
    environment: str,
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _kit(environment=environment, secret_keys=[KEY_A, DEFAULT_SECRET])
    assert info.value.check == "core.E012"
    assert DEFAULT_SECRET not in str(info.value)


def test_production_refuses_a_short_key_naming_its_position_never_the_key() -> None:
    short = "s" * (MIN_SECRET_LENGTH - 1)
    with pytest.raises(ConfigurationError) as info:
        _kit(environment="production", secret_keys=[KEY_A, short])
    assert info.value.check == "core.E013"
    assert "#2" in str(info.value)
    assert short not in str(info.value) and KEY_A not in str(info.value)
    _kit(environment="production", secret_keys=["k" * MIN_SECRET_LENGTH, KEY_A]).dispose()


@pytest.mark.parametrize("environment", ["development", "test"])
def test_short_keys_are_accepted_before_production(environment: str) -> None:
    _kit(environment=environment, secret_keys=["short"]).dispose()


def test_the_key_list_comes_from_the_environment_newest_first_and_signs_with_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NGO_KIT_SECRET_KEYS", f"{KEY_C},{KEY_A}")
    kit = Kit(
        settings=KitSettings(database_url="sqlite://", environment="production"),
        modules=[],
        autoload=False,
    )
    token = tokens_for(kit).sign("x.test", {"n": 1})
    assert TokenSigner([KEY_C]).load("x.test", token, max_age=None) == {"n": 1}
    with pytest.raises(TokenTampered):
        TokenSigner([KEY_A]).load("x.test", token, max_age=None)


# --- every token and code is keyed by the settings ----------------------------------------


def purposes_signed_by_modules() -> set[str]:
    """The purpose of every ``tokens_for(...).sign(PURPOSE, ...)`` in the modules and plugins."""
    found: set[str] = set()
    files = [
        (path, tree)
        for path, tree in source_files()
        if "modules" in path.parts or "plugins" in path.parts
    ]
    # a module's constants may live in any of its files (a service split into parts imports
    # its purposes from the module's base): resolve names within the file's folder
    constants: dict[Path, dict[str, object]] = {}
    for path, tree in files:
        constants.setdefault(path.parent, {}).update(
            {
                t.id: n.value.value
                for n in tree.body
                if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                for t in n.targets
                if isinstance(t, ast.Name)
            }
        )
    for path, tree in files:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sign"
                and isinstance(node.func.value, ast.Call)
                and getattr(node.func.value.func, "id", None) == "tokens_for"
            ):
                arg = node.args[0]
                assert isinstance(arg, ast.Constant | ast.Name), ast.dump(arg)
                value = (
                    arg.value if isinstance(arg, ast.Constant) else constants[path.parent][arg.id]
                )
                found.add(str(value))
    return found


def test_every_token_and_code_the_modules_make_is_keyed_by_the_settings_keys(
    kit_factory: KitFactory, message_catcher: MessageCatcher
) -> None:
    kit = kit_factory(secret_keys=[KEY_A])
    org = kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})
    tokens: dict[str, str] = {}

    def last(recipient: str, key: str) -> str:
        return str([m for m in message_catcher.to(recipient) if key in m.data][-1].data[key])

    with kit.begin(org=org, actor=SYSTEM) as tx:
        person = tx.registration.register(
            email="mei@example.org", phone="13800138000", password="lantern-harbour-47",
            display_name="Mei",
        )  # fmt: skip
        staff = tx.registration.register(
            email="staff@example.org", password="lantern-harbour-47", display_name="Staff"
        )
        tx.tenancy.set_role(staff.id, "admin")
    tokens["registration.verify-email"] = last("mei@example.org", "token")
    phone_code = last("+8613800138000", "code")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.request_password_reset(email="mei@example.org")
    kit.outbox.work()  # reset links, codes and change links are left to the worker
    tokens["registration.password-reset"] = last("mei@example.org", "token")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tokens["registration.invitation"] = tx.registration.invite(email="new@example.org").token
        tx.registration.request_sign_in_code("+8613800138000")
    kit.outbox.work()
    sign_in_code = last("+8613800138000", "code")
    with kit.begin(org=org, actor=person.id) as tx:
        tx.registration.request_email_change("mei.new@example.org")
    kit.outbox.work()
    tokens["registration.change-email"] = last("mei.new@example.org", "token")

    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=5)
    with kit.begin(org=org, actor=staff.id) as tx:
        tx.volunteer.save_profile(user_id=person.id)
        tx.volunteer.approve(person.id)
        activity = tx.volunteer.create_activity(title="Sorting")
        shift = tx.volunteer.create_shift(
            activity_id=activity.id, starts_at=start, ends_at=start + dt.timedelta(hours=2),
            capacity=3,
        )  # fmt: skip
        tokens["volunteer.checkin"] = tx.volunteer.checkin_token(shift.id)
        tx.volunteer.sign_up(shift.id, person.id)
        tokens["volunteer.checkin-pass"] = tx.volunteer.checkin_pass(shift.id, person.id)
        tokens["volunteer.certificate"] = tx.volunteer.issue_certificate(person.id).token

    assert set(tokens) == purposes_signed_by_modules()  # a new kind of token joins this test
    same_db = kit.settings.database_url
    other = Kit(settings=settings_for_tests(same_db, secret_keys=[KEY_B]), autoload=False)
    rotated = Kit(settings=settings_for_tests(same_db, secret_keys=[KEY_C, KEY_A]), autoload=False)
    try:
        for purpose, token in tokens.items():
            TokenSigner([KEY_A]).load(purpose, token, max_age=None)  # made with the settings' key
            with pytest.raises(TokenTampered):
                tokens_for(other).load(purpose, token, max_age=None)
            tokens_for(rotated).load(purpose, token, max_age=None)

        # Codes are stored as keyed hashes: another deployment's key matches none of them.
        with pytest.raises(TokenInvalid), other.begin(org="rainbow", actor=person.id) as tx:
            tx.registration.verify_phone(phone_code)
        with pytest.raises(SignInFailed), other.begin(org="rainbow") as tx:
            tx.registration.authenticate(phone="+8613800138000", code=sign_in_code)
        with rotated.begin(org="rainbow", actor=person.id) as tx:
            assert tx.registration.verify_phone(phone_code).phone_verified
        with rotated.begin(org="rainbow") as tx:
            tx.registration.authenticate(phone="+8613800138000", code=sign_in_code)
    finally:
        other.dispose()
        rotated.dispose()


# --- the source ----------------------------------------------------------------------------


def test_only_the_token_helper_signs_and_it_reads_the_keys_from_settings() -> None:
    itsdangerous_users, signer_builders, key_reads, literal_hmac_keys = [], [], [], []
    for path, tree in source_files():
        name = relative(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                if any((m or "").split(".")[0] == "itsdangerous" for m in modules):
                    itsdangerous_users.append(name)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "TokenSigner":
                signer_builders.append((name, ast.unparse(node.args[0])))
            if isinstance(node, ast.Attribute) and node.attr == "secret_keys":
                key_reads.append((name, ast.unparse(node.value)))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("new", "digest")
                and getattr(node.func.value, "id", None) == "hmac"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                literal_hmac_keys.append(f"{name}:{node.lineno}")
    assert itsdangerous_users == ["ngo_kit/tokens.py"]
    assert signer_builders == [("ngo_kit/tokens.py", "kit.settings.secret_keys")]
    outside_settings = [(n, v) for n, v in key_reads if n != "ngo_kit/settings.py"]
    assert outside_settings, "the scan found no reads of the keys: has the source moved?"
    assert [(n, v) for n, v in outside_settings if not v.endswith("settings")] == []
    assert literal_hmac_keys == []


_KEY_NAME = re.compile(r"secret|passw(or)?d|api_?key|private_?key|signing_?key", re.IGNORECASE)
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")
_KEY_MARKS = re.compile(
    r"BEGIN [A-Z ]*PRIVATE KEY|\bwhsec_[A-Za-z0-9]|\bsk_live_|\bAKIA[0-9A-Z]{12}"
)


def _entropy(text: str) -> float:
    counts = collections.Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_like_a_key(name: str | None, value: str) -> bool:
    if _KEY_MARKS.search(value):
        return True
    if name and _KEY_NAME.search(name) and len(value) >= 8 and not re.search(r"\s", value):
        return True
    return bool(
        _KEY_SHAPE.fullmatch(value)
        and re.search(r"\d", value)
        and re.search(r"[a-z]", value)
        and _entropy(value) >= 4.0
    )


def _named_constants(tree: ast.Module) -> Iterator[tuple[str | None, ast.Constant]]:
    """Every string constant with the name it is given (assignment, keyword, dict key), if any."""
    named: dict[int, str] = {}
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.expr | None]] = []
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                label = t.id if isinstance(t, ast.Name) else getattr(t, "attr", None)
                if label:
                    pairs.append((label, node.value))
        elif isinstance(node, ast.keyword) and node.arg:
            pairs.append((node.arg, node.value))
        elif isinstance(node, ast.Dict):
            pairs.extend(
                (k.value, v)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            )
        for label, value in pairs:
            if isinstance(value, ast.Constant):
                named[id(value)] = label
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
            yield named.get(id(node)), node


def test_no_key_is_written_into_the_shipped_source_but_the_two_public_ones() -> None:
    found = {
        (relative(path), node.value)
        for path, tree in source_files()
        for name, node in _named_constants(tree)
        if isinstance(node.value, str) and _looks_like_a_key(name, node.value)
    }
    # All are public by design: the development default is refused outside development
    # (core.E012), the test key is what the pytest plugin gives kits under test, and the test
    # password is what the web testing helper registers its people with; docs/security.md says
    # never to deploy the keys.
    assert found == {
        ("ngo_kit/settings.py", DEFAULT_SECRET),
        ("ngo_kit/testing.py", TEST_SECRET),
        ("ngo_kit/web/testing.py", WEB_TEST_PASSWORD),
    }
    assert settings_for_tests("sqlite://").environment == "test"
    assert _looks_like_a_key(None, "whsec_" + "Q" * 10)  # the scan sees a provider's key shape
    assert _looks_like_a_key(None, "k8Jw2Hq9ZrT4vLx7Nc1Pb6Ys3Dm5Fg0A")  # and a random one
