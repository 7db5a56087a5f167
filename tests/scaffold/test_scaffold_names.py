"""``ngo-kit new-plugin`` refuses what cannot work with one line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import ngo_kit.scaffold
from ngo_kit import AlreadyExists, NgoKitError, ValidationFailed
from ngo_kit.cli import main
from ngo_kit.scaffold import generate
from ngo_kit.scaffold.generate import create_plugin, names, render


def test_names_follow_from_the_short_name() -> None:
    assert names("food-bank") == {
        "name": "food-bank",
        "dist": "ngo-kit-food-bank",
        "package": "ngo_kit_food_bank",
        "module": "food_bank",
        "Class": "FoodBank",
        "title": "Food bank",
    }
    assert names("meals2")["module"] == "meals2"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Meals", "invalid_plugin_name"),
        ("food bank", "invalid_plugin_name"),
        ("food--bank", "invalid_plugin_name"),
        ("-meals", "invalid_plugin_name"),
        ("meals-", "invalid_plugin_name"),
        ("2meals", "invalid_plugin_name"),
        ("m", "reserved_plugin_name"),
        ("a" * 25, "invalid_plugin_name"),
        ("食物", "invalid_plugin_name"),
        ("ngo-kit-meals", "invalid_plugin_name"),
        ("points", "reserved_plugin_name"),
        ("core", "reserved_plugin_name"),
        ("session", "reserved_plugin_name"),
        ("send", "reserved_plugin_name"),
        ("import", "reserved_plugin_name"),
    ],
)
def test_a_name_that_cannot_work_is_refused(name: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        names(name)
    assert (caught.value.field, caught.value.rule) == ("name", rule)


def test_render_fills_every_token() -> None:
    assert (
        render("{{dist}} / {{Class}}Note / {x}", names("meals"))
        == "ngo-kit-meals / MealsNote / {x}"
    )


def test_an_existing_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    existing = tmp_path / "ngo-kit-meals"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(AlreadyExists):
        create_plugin("meals", tmp_path)
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_a_failed_migration_removes_the_half_made_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(target: Path, values: dict[str, str]) -> Path:
        raise NgoKitError("The first migration could not be generated: boom")

    monkeypatch.setattr(generate, "generate_first_revision", fail)
    with pytest.raises(NgoKitError, match="boom"):
        create_plugin("meals", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["Bad Name"], "error [validation_failed]: name: must be 2 to 24 lowercase letters"),
        (["points"], "error [validation_failed]: name: 'points' is a name ngo-kit uses already"),
        (["meals"], "error [already_exists]: Folder '"),
    ],
)
def test_the_command_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    (tmp_path / "ngo-kit-meals").mkdir()
    with pytest.raises(SystemExit) as caught:
        main(["--no-autoload", "new-plugin", *args, "--directory", str(tmp_path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(expected)
    assert err.count("\n") == 1


def test_the_command_is_registered_through_the_hook() -> None:
    group = click.Group()
    ngo_kit.scaffold.ngo_kit_register_commands(cli=group)
    result = CliRunner().invoke(group, ["new-plugin", "--help"])
    assert result.exit_code == 0
    assert "--directory" in result.output and "ngo-kit-NAME" in result.output


def test_ngo_kit_lists_new_plugin_among_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--no-autoload", "--help"])
    assert "new-plugin" in capsys.readouterr().out
