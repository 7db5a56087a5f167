"""The command line: clear one-line errors and working commands."""

from __future__ import annotations

import pytest

from ngo_kit import Kit
from ngo_kit.cli import main


def run(kit: Kit, *args: str) -> None:
    main(
        [
            "--database-url",
            kit.engine.url.render_as_string(hide_password=False),
            "--no-autoload",
            "--module",
            "core",
            *args,
        ]
    )


def test_org_create_and_list(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    run(
        kit,
        "org",
        "create",
        "rainbow",
        "Rainbow Charity",
        "--timezone",
        "Asia/Shanghai",
        "--locale",
        "zh_CN",
    )
    assert capsys.readouterr().out.startswith("created rainbow (")
    run(kit, "org", "list")
    line = capsys.readouterr().out.strip()
    assert line.startswith("rainbow\tRainbow Charity\tAsia/Shanghai\tzh_CN\t")


def test_a_mistake_prints_one_line_and_exits_2(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run(kit, "org", "create", "Bad Slug", "Name")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        err
        == "error [validation_failed]: slug: must be 2 to 63 lowercase letters, digits or hyphens\n"
    )


def test_db_current_reports_up_to_date(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    run(kit, "db", "current")
    out = capsys.readouterr().out
    assert "up to date" in out


def test_outbox_work_reports_counts(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    run(kit, "outbox", "work")
    assert capsys.readouterr().out.strip() == "sent 0, failed 0 (will retry), dead 0"


#: Commands that reach the database, each of which must fail in one line when it cannot.
DATABASE_COMMANDS = [("org", "list"), ("verify",)]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_an_unmigrated_database_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], empty_database_url: str, command: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--database-url", empty_database_url, "--no-autoload", "--module", "core", *command])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error [configuration_error]: [core.E015] the database is not migrated")
    assert "ngo-kit db upgrade" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "url", ["postgresql://nobody@127.0.0.1:1/none", "mysql://nobody@127.0.0.1:1/none"]
)
@pytest.mark.parametrize(
    "command", [*DATABASE_COMMANDS, ("db", "upgrade"), ("db", "current")], ids=" ".join
)
def test_an_unreachable_database_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], url: str, command: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--database-url", url, "--no-autoload", "--module", "core", *command])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error [database_unavailable]: The database is unavailable; nothing was saved."
    )
    assert err.count("\n") == 1


@pytest.mark.parametrize("url", ["not a database url", "nosuchdb://host/name"])
def test_an_unusable_database_url_is_one_line_with_its_code(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--database-url", url, "--no-autoload", "--module", "core", "verify"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error [configuration_error]: [core.E019] the database URL")
    assert err.count("\n") == 1


def test_plugins_lists_builtin_modules(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "--database-url",
            kit.engine.url.render_as_string(hide_password=False),
            "--no-autoload",
            "plugins",
            "--all",
        ]
    )
    out = capsys.readouterr().out
    assert "core  [ngo-kit" in out and "built-in" in out


def test_commands_of_modules_that_are_not_enabled_are_not_offered(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    url = kit.engine.url.render_as_string(hide_password=False)
    main(["--database-url", url, "--no-autoload", "--module", "core", "--help"])
    listed = capsys.readouterr().out
    assert "inventory" not in listed and "points" not in listed
    with pytest.raises(SystemExit) as info:
        main(["--database-url", url, "--no-autoload", "--module", "core", "inventory", "--help"])
    assert info.value.code == 2
    assert "No such command 'inventory'" in capsys.readouterr().err
