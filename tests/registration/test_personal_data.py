"""Personal-data rights: export gathers every module's section; erasure pseudonymises and
keeps every ledger and chain whole."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Conflict, Kit, NotFound, PermissionDenied, hookimpl
from ngo_kit.modules.registration.models import Throttle
from ngo_kit.modules.registration.testing import PASSWORD
from ngo_kit.outbox import OutboxRow
from ngo_kit.plugins import PersonalData, Registrar
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory

EMAIL = "zhao.xiaoyun@example.org"
PHONE = "+8613912345678"
NAME = "Zhao Xiaoyun 赵晓云"
SECRETS = (
    EMAIL,
    PHONE,
    NAME,
    "王大明",
    "secret note 秘密",
    "unique motto 999",
    "zhao.new@example.org",
)


class Notes:
    """A plugin module-alike that keeps a note per person and honours erasure and export."""

    ngo_kit_plugin_name = "notes"

    def __init__(self) -> None:
        self.notes: dict[uuid.UUID, str] = {}
        self.erased: list[tuple[uuid.UUID, str]] = []
        self.told: list[tuple[uuid.UUID, str]] = []

    @hookimpl
    def ngo_kit_register_personal_data(self, register: Registrar[PersonalData]) -> None:
        register(PersonalData("notes", (), export=self.export, erase=self.erase))

    def export(self, tx: Any, user_id: uuid.UUID) -> dict[str, Any] | None:
        note = self.notes.get(user_id)
        return {"note": note, "org": tx.org.slug} if note else None

    def erase(self, tx: Any, user_id: uuid.UUID) -> None:
        self.notes.pop(user_id, None)
        self.erased.append((user_id, tx.org.slug))

    @hookimpl
    def ngo_kit_user_erased(self, tx: Any, user_id: uuid.UUID) -> None:
        assert (user_id, tx.org.slug) in self.erased  # after every PersonalData.erase there
        self.told.append((user_id, tx.org.slug))


def _person(kit: Kit, org: OrgRead, other: OrgRead) -> uuid.UUID:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.publish_consent(purpose="privacy", title="Privacy", body="...")
        tx.registration.define_field(name="motto", kind="text")
    with kit.begin(org=org) as tx:
        uid: uuid.UUID = tx.registration.register(
            email=EMAIL,
            phone=PHONE,
            display_name=NAME,
            password=PASSWORD,
            birth_date=dt.date.today().replace(year=dt.date.today().year - 12),
            guardian={"name": "王大明", "relationship": "father"},
            consents=["privacy"],
            fields={"motto": "unique motto 999"},
        ).id
    careful = kit.create_organisation("careful", "Careful", settings={"joining": "approval"})
    with kit.begin(org=careful, actor=uid) as tx:
        tx.registration.request_to_join("secret note 秘密")
    with kit.begin(org=other, actor=SYSTEM) as tx:
        invitation = tx.registration.invite(email=EMAIL)
    with kit.begin(org=other, actor=uid) as tx:
        tx.registration.accept_invitation(invitation.token)
        tx.registration.request_email_change("zhao.new@example.org")
    with kit.begin() as tx:
        tx.registration.authenticate(email=EMAIL, password=PASSWORD)
    with pytest.raises(Exception), kit.begin() as tx:  # noqa: B017 - leaves a throttle row
        tx.registration.authenticate(email=EMAIL, password="wrong password")
    return uid


def _dump(kit: Kit) -> str:
    text = []
    with kit.engine.connect() as conn:
        for table in kit.metadata().sorted_tables:
            for row in conn.execute(sa.select(table)):
                text.append(repr(tuple(row)))
    return "\n".join(text)


def test_export_contains_every_organisation_and_every_module_section(
    kit_factory: KitFactory,
) -> None:
    notes = Notes()
    kit = kit_factory(modules=["registration"], plugins=[notes])
    org = kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})
    other = kit.create_organisation("sunshine", "Sunshine")
    uid = _person(kit, org, other)
    notes.notes[uid] = "likes tea"
    with kit.begin(org=org, actor=uid) as tx:
        data = tx.registration.export_personal_data(uid)
    assert data["account"]["email"] == EMAIL and data["account"]["phone"] == PHONE
    assert set(data["organisations"]) == {"rainbow", "sunshine"}
    rainbow = data["organisations"]["rainbow"]
    assert rainbow["registration"]["fields"] == {"registration": {"motto": "unique motto 999"}}
    assert {c["given_by"] for c in rainbow["registration"]["consents"]} == {"self", "guardian"}
    assert rainbow["notes"] == {"note": "likes tea", "org": "rainbow"}
    assert data["organisations"]["sunshine"]["registration"]["membership"]["role"] == "member"
    (session,) = data["sessions"]
    assert session["last_used_at"] == session["created_at"]  # signed in, not used since
    json.dumps(data)  # JSON-ready


def test_export_by_an_administrator_needs_members_export_and_covers_their_organisation(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=["registration"])
    org = kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})
    other = kit.create_organisation("sunshine", "Sunshine")
    uid = _person(kit, org, other)
    with kit.begin(org=org) as tx:
        peer = tx.registration.register(
            email="peer@example.org", password=PASSWORD, display_name="P"
        ).id
    with pytest.raises(PermissionDenied), kit.begin(org=org, actor=peer) as tx:
        tx.registration.export_personal_data(uid)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.set_role(peer, "admin")
    with kit.begin(org=org, actor=peer) as tx:
        data = tx.registration.export_personal_data(uid)
    assert set(data["organisations"]) == {"rainbow"}
    with pytest.raises(NotFound), kit.begin(org=org, actor=peer) as tx:
        tx.registration.export_personal_data(uuid.uuid4())


def test_erasure_leaves_no_personal_data_and_every_chain_intact(kit_factory: KitFactory) -> None:
    notes = Notes()
    kit = kit_factory(modules=["registration"], plugins=[notes])
    org = kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})
    other = kit.create_organisation("sunshine", "Sunshine")
    uid = _person(kit, org, other)
    notes.notes[uid] = "likes tea"
    with kit.begin() as tx:  # a refused delivery keeps the server's text, which quotes the address
        tx.connection.execute(
            sa.update(OutboxRow)
            .where(OutboxRow.recipient == EMAIL)
            .values(last_error=f"SMTPRecipientsRefused: {{'{EMAIL}': (550, 'no such user')}}")
        )
    dump = _dump(kit)
    assert [s for s in SECRETS if s not in dump] == []
    with kit.begin(org=org, actor=uid) as tx:
        tx.send("email", EMAIL, "Goodbye", f"Dear {NAME}")  # sent in the erasing unit of work
        tx.registration.erase(uid)
    dump = _dump(kit)
    leaks = [secret for secret in SECRETS if secret in dump]
    assert leaks == []
    with kit.begin() as tx:  # the failed sign-in's count, kept under the account, is gone
        keys = tx.session.scalars(sa.select(Throttle.key))
        assert [key for key in keys if key.startswith("a:")] == []
    assert str(uid) in dump  # ids stay, so ledgers and the audit chain still refer to them
    assert kit.verify() == []
    with kit.begin() as tx:  # what the erasure check guards against
        tx.connection.execute(sa.text("UPDATE registration_account SET birth_date = '2000-01-01'"))
    (problem,) = kit.verify()
    assert problem.check == "registration.erasure" and problem.row == str(uid)
    with kit.begin() as tx:
        tx.connection.execute(sa.text("UPDATE registration_account SET birth_date = NULL"))
    assert sorted(notes.erased) == [(uid, "rainbow"), (uid, "sunshine")]
    assert sorted(notes.told) == sorted(notes.erased)
    assert uid not in notes.notes
    with kit.begin(org=org, actor=SYSTEM) as tx:
        user = tx.registration.get_user(uid)
        assert (user.status, user.email, user.phone, user.display_name) == (
            "erased",
            None,
            None,
            "(erased)",
        )
        assert tx.tenancy.member(uid).role == "member"
    with pytest.raises(Exception, match="not right"), kit.begin() as tx:
        tx.registration.authenticate(email=EMAIL, password=PASSWORD)
    # the address is free for a new account
    with kit.begin(org=org) as tx:
        assert (
            tx.registration.register(email=EMAIL, password=PASSWORD, display_name="New").id != uid
        )


def test_erasure_keeps_points_ledgers_whole(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["registration", "points"])
    org = kit.create_organisation("rainbow", "Rainbow")
    with kit.begin(org=org) as tx:
        uid = tx.registration.register(email=EMAIL, password=PASSWORD, display_name=NAME).id
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(uid, 50, reason="welcome", key=f"welcome:{uid}")
        tx.registration.erase(uid)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.balance(uid) == 50
    assert kit.verify() == []
    assert EMAIL not in _dump(kit) and NAME not in _dump(kit)


def test_an_administrator_may_erase_only_people_of_no_other_organisation(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=["registration"])
    org = kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})
    other = kit.create_organisation("sunshine", "Sunshine")
    uid = _person(kit, org, other)
    with kit.begin(org=org) as tx:
        admin = tx.registration.register(
            email="boss@example.org", password=PASSWORD, display_name="B"
        ).id
        solo = tx.registration.register(
            email="solo@example.org", password=PASSWORD, display_name="S"
        ).id
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.set_role(admin, "admin")
    with pytest.raises(PermissionDenied), kit.begin(org=org, actor=solo) as tx:
        tx.registration.erase(uid)
    with pytest.raises(Conflict), kit.begin(org=org, actor=admin) as tx:
        tx.registration.erase(uid)
    with kit.begin(org=org, actor=admin) as tx:
        tx.registration.erase(solo)
    with pytest.raises(NotFound), kit.begin(org=other, actor=SYSTEM) as tx:
        tx.registration.get_user(solo)


def test_the_command_line_exports_and_erases_a_person(
    kit_factory: KitFactory,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ngo_kit.cli import main
    from ngo_kit.testing import TEST_SECRET

    # the command's kit hashes the erasure's audit row with the test kit's chain keys
    monkeypatch.setenv("NGO_KIT_SECRET_KEYS", TEST_SECRET)
    kit = kit_factory(modules=["registration"])
    org = kit.create_organisation("rainbow", "Rainbow")
    with kit.begin(org=org) as tx:
        uid = tx.registration.register(email=EMAIL, password=PASSWORD, display_name=NAME).id
    base = [
        "--database-url",
        kit.engine.url.render_as_string(hide_password=False),
        "--no-autoload",
        "--module",
        "registration",
        "registration",
    ]
    main([*base, "export", str(uid), "--org", "rainbow"])
    exported = json.loads(capsys.readouterr().out)
    assert exported["account"]["display_name"] == NAME
    main([*base, "export", str(uid), "--org", "rainbow", "--output", str(tmp_path / "p.json")])
    assert EMAIL in (tmp_path / "p.json").read_text(encoding="utf-8")
    main([*base, "erase", str(uid), "--org", "rainbow", "--yes"])
    assert "erased" in capsys.readouterr().out
    assert EMAIL not in _dump(kit) and kit.verify() == []
