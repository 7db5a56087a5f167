"""What the command line says: its version, the modules a migration touched, and messages in
the language of the person at the terminal, whatever the organisation's."""

from __future__ import annotations

import uuid
from importlib import metadata

import pytest

from ngo_kit import Kit, migrations
from ngo_kit.cli import main
from ngo_kit.testing import KitFactory


def run(url: str, *args: str) -> int:
    """``ngo-kit --database-url URL --no-autoload ARGS``; the exit status."""
    try:
        main(["--database-url", url, "--no-autoload", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def url_of(kit: Kit) -> str:
    return kit.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def terminal_in_english(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")


def test_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sqlite://", "--version") == 0
    assert capsys.readouterr().out == f"ngo-kit {metadata.version('ngo-kit')}\n"


def test_db_upgrade_names_the_modules_it_migrated(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = kit_factory(modules=["registration", "points"], upgrade=False)
    modules = ["--module", "registration", "--module", "points"]
    assert run(url_of(kit), *modules, "db", "upgrade") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "migrated: core, points, registration"
    at = migrations.modules_at(kit)
    assert sorted(at) == ["core", "points", "registration"]
    assert out[-1] == "database at: " + ", ".join(f"{m} {at[m]}" for m in sorted(at))
    assert run(url_of(kit), *modules, "db", "upgrade") == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "up to date already: core, points, registration"
    )


def test_a_database_of_modules_not_enabled_is_refused_naming_them(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str], terminal_in_english: None
) -> None:
    kit = kit_factory(modules=["points"])
    assert run(url_of(kit), "--module", "core", "db", "upgrade") == 2
    err = capsys.readouterr().err
    assert err == (
        "error [configuration_error]: [core.E014] the database has migrations of modules this "
        "kit does not enable (points); enable the same modules that created it\n"
    )


def test_an_unmigrated_database_says_how_to_migrate_from_python_too(
    empty_database_url: str, capsys: pytest.CaptureFixture[str], terminal_in_english: None
) -> None:
    assert run(empty_database_url, "--module", "core", "org", "list") == 2
    err = capsys.readouterr().err
    assert "run 'ngo-kit db upgrade', or kit.upgrade() in Python" in err


def test_messages_follow_the_terminal_not_the_organisation(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str], terminal_in_english: None
) -> None:
    kit = kit_factory(modules=["registration"])
    kit.create_organisation("lvse", "绿色", locale="zh_CN")
    kit.create_organisation("green", "Green", locale="en")
    export = ["--module", "registration", "registration", "export", str(uuid.uuid4())]
    assert run(url_of(kit), *export, "--org", "lvse") == 2
    err = capsys.readouterr().err
    assert "was not found" in err and "未找到" not in err
    assert run(url_of(kit), "--lang", "zh_CN", *export, "--org", "green") == 2
    assert "未找到" in capsys.readouterr().err


def test_the_environment_locale_chooses_the_language(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = kit_factory(modules=["registration"])
    kit.create_organisation("green", "Green", locale="en")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("LC_MESSAGES", "zh_CN.UTF-8")
    export = ["--module", "registration", "registration", "export", str(uuid.uuid4())]
    assert run(url_of(kit), *export, "--org", "green") == 2
    assert "未找到" in capsys.readouterr().err
