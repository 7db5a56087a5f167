"""Import and export (CSV, XLSX, the CLI with its progress bar), and personal-data hooks."""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from volunteer_helpers import World

from ngo_kit import Kit, NotFound, PermissionDenied
from ngo_kit.cli import main


def _members(world: World, count: int) -> list[uuid.UUID]:
    return [world.person(f"M{i}", profile=False) for i in range(count)]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_import_reports_each_refused_row_and_imports_the_rest(world: World, tmp_path: Path) -> None:
    good, second, _ = _members(world, 3)
    rows = [
        {
            "user_id": str(good),
            "status": "approved",
            "skills": "first_aid:3;driving",
            "city": "上海",
            "latitude": "31.2",
        },
        {"user_id": "not-an-id", "status": "", "skills": "", "city": "", "latitude": ""},
        {"user_id": str(uuid.uuid4()), "status": "", "skills": "", "city": "", "latitude": ""},
        {"user_id": str(second), "status": "", "skills": "juggling", "city": "", "latitude": ""},
        {"user_id": str(second), "status": "retired", "skills": "", "city": "", "latitude": ""},
        {"user_id": str(good), "status": "", "skills": "", "city": "", "latitude": ""},
    ]
    path = tmp_path / "volunteers.csv"
    _write_csv(path, rows)
    from ngo_kit.modules.volunteer import files

    with world.as_(world.coordinator) as tx:
        report = tx.volunteer.import_profiles(files.read_rows(path), batch_size=2)
        profile = tx.volunteer.profile(good)
    assert report.rows == 6 and report.imported == 1
    assert sorted(line for line, _ in report.errors) == [2, 3, 4, 5, 6]
    reasons = dict(report.errors)
    assert (
        "not a member" in reasons[3] and "juggling" in reasons[4] and "exists already" in reasons[6]
    )
    assert profile.status == "approved" and profile.skills == {"first_aid": 3, "driving": 1}
    assert profile.latitude == Decimal("31.2")
    with world.as_(world.coordinator) as tx:
        assert tx.volunteer.search("m0") == [good]  # the name index is filled on import


def test_import_reads_xlsx(world: World, tmp_path: Path) -> None:
    (member,) = _members(world, 1)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["user_id", "skills", "district"])
    sheet.append([str(member), "knitting:4", "静安区"])
    path = tmp_path / "volunteers.xlsx"
    book.save(path)
    from ngo_kit.modules.volunteer import files

    with world.as_(world.coordinator) as tx:
        report = tx.volunteer.import_profiles(files.read_rows(path))
        assert tx.volunteer.profile(member).skills == {"knitting": 4}
    assert report.imported == 1 and report.errors == ()


def test_cli_imports_with_a_progress_bar_and_exports_hours(
    vkit: Kit, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = _members(world, 3)
    path = tmp_path / "v.csv"
    _write_csv(
        path,
        [{"user_id": str(m), "status": "approved"} for m in members]
        + [{"user_id": "x", "status": ""}],
    )
    url = vkit.engine.url.render_as_string(hide_password=False)
    errors_path = tmp_path / "errors.csv"
    base = [
        "--database-url",
        url,
        "--no-autoload",
        "--module",
        "registration",
        "--module",
        "volunteer",
    ]
    main(
        [
            *base,
            "volunteer",
            "import",
            str(path),
            "--org",
            world.org.slug,
            "--errors",
            str(errors_path),
        ]
    )
    out, err = capsys.readouterr()
    assert "3 of 4 rows imported, 1 refused" in out
    assert "row 4" in err and "importing" in err
    assert errors_path.read_text().startswith("row,reason")
    with world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(members[0], "2.5", served_on=dt.date(2026, 5, 1))
    sheet_path = tmp_path / "hours.xlsx"
    main(
        [
            *base,
            "volunteer",
            "export-hours",
            str(sheet_path),
            "--org",
            world.org.slug,
            "--by",
            "month",
        ]
    )
    sheet = load_workbook(sheet_path).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows == [("month", "hours"), ("2026-05", 2.5)]


#: more refused rows than the import once kept (it stopped counting at 10,000)
MANY = 10_050


def test_an_import_counts_and_reports_every_refused_row(world: World, tmp_path: Path) -> None:
    good = _members(world, 2)
    path = tmp_path / "many.csv"
    _write_csv(
        path,
        [{"user_id": str(m), "status": "approved"} for m in good]
        + [{"user_id": f"bad-{i}", "status": ""} for i in range(MANY)],
    )
    from ngo_kit.modules.volunteer import files

    with world.as_(world.coordinator) as tx:
        report = tx.volunteer.import_profiles(files.read_rows(path))
    assert [line for line, _ in report.errors] == list(range(3, MANY + 3))
    assert (report.rows, report.imported, report.refused) == (MANY + 2, 2, MANY)
    assert report.rows == report.imported + report.refused


def test_the_cli_puts_every_refused_row_in_a_file_when_there_are_many(
    vkit: Kit, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _members(world, 2)
    path = tmp_path / "volunteers.csv"
    _write_csv(
        path,
        [{"user_id": f"bad-{i}", "status": ""} for i in range(MANY)]
        + [{"user_id": str(m), "status": "approved"} for m in good],
    )
    url = vkit.engine.url.render_as_string(hide_password=False)
    modules = ["--module", "registration", "--module", "volunteer"]
    command = ["volunteer", "import", str(path), "--org", world.org.slug]
    main(["--database-url", url, "--no-autoload", *modules, *command])
    out, err = capsys.readouterr()
    assert f"2 of {MANY + 2} rows imported, {MANY} refused" in out
    refused_path = tmp_path / "volunteers.refused.csv"
    shown = [line for line in err.splitlines() if line.startswith("  row ")]
    assert len(shown) == 20 and shown[0].startswith("  row 1: user_id: not an account id")
    assert f"and {MANY - 20} more: all {MANY} refused rows are in {refused_path}" in err
    with refused_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rows] == list(range(1, MANY + 1))
    assert rows[-1]["reason"] == f"user_id: not an account id: 'bad-{MANY - 1}'"


def test_hours_report_groups_by_volunteer_activity_and_month(world: World, tmp_path: Path) -> None:
    a, b = world.person("A"), world.person("B")
    with world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(
            a, "2", served_on=dt.date(2026, 1, 5), activity_id=world.activity_id
        )
        tx.volunteer.record_hours(a, "3", served_on=dt.date(2026, 2, 5))
        tx.volunteer.record_hours(
            b, "1", served_on=dt.date(2026, 2, 6), activity_id=world.activity_id
        )
        by_month = tx.volunteer.hours_report(by="month")
        by_person = tx.volunteer.hours_report(by="volunteer", served_from=dt.date(2026, 2, 1))
        by_activity = tx.volunteer.hours_report(by="activity")
        written = tx.volunteer.export_hours(str(tmp_path / "h.csv"), by="volunteer")
    assert by_month == [
        {"month": "2026-01", "hours": Decimal(2)},
        {"month": "2026-02", "hours": Decimal(4)},
    ]
    assert {r["volunteer"]: r["hours"] for r in by_person} == {
        str(a): Decimal(3),
        str(b): Decimal(1),
    }
    assert {r["activity"]: r["hours"] for r in by_activity}[str(world.activity_id)] == Decimal(3)
    assert written == 2 and (tmp_path / "h.csv").read_text().splitlines()[0] == "volunteer,hours"


def test_erasure_drops_emergency_contact_and_name_index(world: World) -> None:
    person = world.person(
        "王小红",
        emergency_contact_name="王妈妈",
        emergency_contact_phone="+8613800000001",
        city="上海",
    )
    with world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(person, "2", served_on=dt.date.today())
        assert tx.volunteer.search("wxh") == [person]
    with world.as_() as tx:
        exported = tx.registration.export_personal_data(person)
    assert "王妈妈" in str(exported)
    with world.as_() as tx:
        tx.registration.erase(person)
    with world.as_(world.coordinator) as tx:
        profile = tx.volunteer.profile(person)
        assert tx.volunteer.search("wxh") == []
        assert [h.hours for h in tx.volunteer.hours(person)] == [
            Decimal("2.00")
        ]  # the ledger keeps the id
    assert profile.emergency_contact_name == "" and profile.emergency_contact_phone == ""
    assert profile.city == "" and profile.status == "inactive"


def test_personal_data_export_lists_profiles_and_hours(world: World) -> None:
    person = world.person(emergency_contact_name="Mum")
    with world.as_() as tx:
        data = tx.volunteer.personal_data(person)
        assert tx.volunteer.personal_data(uuid.uuid4()) is None
    assert data is not None and data["profiles"][0]["emergency_contact_name"] == "Mum"


def _volunteer_in_both(world: World, other_world: World) -> uuid.UUID:
    """One account, a volunteer with a profile in each world's organisation."""
    person = world.person("Both", emergency_contact_name="Mum in A")
    with world.as_() as tx:
        address = tx.registration.get_user(person).email
    with other_world.as_() as tx:  # the account exists: the system actor joins it here
        tx.registration.register(email=address, display_name="Both")
        tx.volunteer.save_profile(user_id=person, emergency_contact_name="Mum in B")
    return person


def test_an_export_by_staff_holds_this_organisations_volunteer_data_only(
    world: World, other_world: World
) -> None:
    person = _volunteer_in_both(world, other_world)
    officer = world.person("Officer", role="admin", profile=False)
    with world.as_(officer) as tx:
        exported = tx.registration.export_personal_data(person)
        direct = tx.volunteer.personal_data(person)
    assert "Mum in A" in str(exported) and "Mum in B" not in str(exported)
    assert direct is not None and [p["org_id"] for p in direct["profiles"]] == [str(world.org.id)]
    with world.as_(person) as tx:  # the person themselves sees every organisation's
        assert "Mum in B" in str(tx.volunteer.personal_data(person))


def test_erasing_directly_reaches_only_this_organisations_profile(
    world: World, other_world: World
) -> None:
    theirs = other_world.person("Theirs", emergency_contact_name="Dad")
    officer = world.person("Officer", role="admin", profile=False)
    with pytest.raises(NotFound), world.as_(officer) as tx:
        tx.volunteer.erase_person(theirs)
    plain, someone = world.person("Plain"), world.person("Someone")
    with pytest.raises(PermissionDenied), world.as_(plain) as tx:
        tx.volunteer.erase_person(someone)
    with other_world.as_() as tx:
        assert tx.volunteer.profile(theirs).emergency_contact_name == "Dad"
