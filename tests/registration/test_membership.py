"""Membership: invitations, join requests, joining rules, roles, leaving; audited and hooked."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import (
    SYSTEM,
    AlreadyExists,
    Kit,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    ValidationFailed,
    hookimpl,
)
from ngo_kit.audit import AuditEntry
from ngo_kit.modules.registration.errors import JoiningClosed, JoinNeedsThePerson
from ngo_kit.modules.registration.models import Account, Invitation
from ngo_kit.modules.registration.testing import PASSWORD, Register
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, run_together


class Recorder:
    """A plugin recording the registration module's event hooks."""

    ngo_kit_plugin_name = "recorder"

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def ngo_kit_user_registered(self, tx: Any, user: Any) -> None:
        self.events.append(("registered", user.id))

    @hookimpl
    def ngo_kit_user_verified(self, user: Any, channel: str) -> None:
        self.events.append(("verified", (user.id, channel)))

    @hookimpl
    def ngo_kit_member_joined(self, tx: Any, user_id: uuid.UUID, role: str) -> None:
        self.events.append(("joined", (user_id, role, tx.org.slug)))

    @hookimpl
    def ngo_kit_member_left(self, tx: Any, user_id: uuid.UUID) -> None:
        self.events.append(("left", user_id))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def hkit(kit_factory: KitFactory, recorder: Recorder) -> Kit:
    return kit_factory(modules=["registration"], plugins=[recorder])


def _actions(kit: Kit, org: OrgRead) -> list[str]:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        return list(
            tx.session.scalars(
                sa.select(AuditEntry.action)
                .where(AuditEntry.org_id == org.id)
                .order_by(AuditEntry.seq)
            )
        )


def test_registration_fires_registered_and_joined_hooks(hkit: Kit, recorder: Recorder) -> None:
    org = hkit.create_organisation("rainbow", "Rainbow")
    with hkit.begin(org=org) as tx:
        user = tx.registration.register(email="a@example.org", password=PASSWORD, display_name="A")
    assert ("registered", user.id) in recorder.events
    assert ("joined", (user.id, "member", "rainbow")) in recorder.events
    assert "user.registered" in _actions(hkit, org)


def test_a_failing_hook_rolls_the_registration_back(kit_factory: KitFactory) -> None:
    class Refuser:
        ngo_kit_plugin_name = "refuser"

        @hookimpl
        def ngo_kit_user_registered(self, tx: Any, user: Any) -> None:
            raise ValidationFailed("email", "invalid")

    kit = kit_factory(modules=["registration"], plugins=[Refuser()])
    org = kit.create_organisation("rainbow", "Rainbow")
    with pytest.raises(ValidationFailed), kit.begin(org=org) as tx:
        tx.registration.register(email="a@example.org", password=PASSWORD, display_name="A")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.registration.users([]) == {}
        assert tx.session.scalar(sa.text("SELECT count(*) FROM registration_account")) == 0


def test_email_verification_fires_the_verified_hook(
    hkit: Kit, recorder: Recorder, message_catcher: Any
) -> None:
    org = hkit.create_organisation("rainbow", "Rainbow")
    with hkit.begin(org=org) as tx:
        user = tx.registration.register(email="a@example.org", password=PASSWORD, display_name="A")
    hkit.outbox.work()
    token = message_catcher.to("a@example.org")[-1].data["token"]
    with hkit.begin(org=org) as tx:
        tx.registration.verify_email(token)
    assert ("verified", (user.id, "email")) in recorder.events


def test_an_invitation_is_single_use_and_carries_its_role(hkit: Kit, recorder: Recorder) -> None:
    org = hkit.create_organisation("rainbow", "Rainbow")
    with hkit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.registration.invite(email="new@example.org", role="staff")
    assert inv.token
    with hkit.begin(org=org) as tx:
        user = tx.registration.register(
            email="new@example.org", password=PASSWORD, display_name="N", invitation=inv.token
        )
    with hkit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.tenancy.member(user.id).role == "staff"
    assert ("joined", (user.id, "staff", "rainbow")) in recorder.events
    with pytest.raises(TokenUsed), hkit.begin(org=org) as tx:
        tx.registration.register(
            email="other@example.org", password=PASSWORD, display_name="O", invitation=inv.token
        )
    assert "member.invitation_accepted" in _actions(hkit, org)


def test_an_existing_account_accepts_an_invitation(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    with rkit.begin(org=rother, actor=SYSTEM) as tx:
        inv = tx.registration.invite(email="ana@example.org", role="volunteer")
    with pytest.raises(PermissionDenied), rkit.begin(org=rother) as tx:
        tx.registration.accept_invitation(inv.token)
    with rkit.begin(org=rother, actor=uid) as tx:
        tx.registration.accept_invitation(inv.token)
        assert tx.tenancy.member(uid).role == "volunteer"
    with pytest.raises(TokenUsed), rkit.begin(org=rother, actor=uid) as tx:
        tx.registration.accept_invitation(inv.token)


def test_an_invitation_for_one_organisation_is_refused_in_another(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        inv = tx.registration.invite(email="x@example.org")
    with pytest.raises(TokenInvalid), rkit.begin(org=rother, actor=uid) as tx:
        tx.registration.accept_invitation(inv.token)


def test_a_forged_or_foreign_invitation_is_refused_before_the_password_is_hashed(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ngo_kit.modules.registration.passwords import Passwords

    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        inv = tx.registration.invite(email="x@example.org")
    hashed: list[str] = []
    hash_password = Passwords.hash

    def counted(self: Passwords, password: str) -> str:
        hashed.append(password)
        return hash_password(self, password)

    monkeypatch.setattr(Passwords, "hash", counted)
    for org, token in ((rother, inv.token), (rorg, inv.token[:-2] + "xx")):
        with pytest.raises(TokenInvalid), rkit.begin(org=org) as tx:
            tx.registration.register(
                email="x@example.org", display_name="X", password=PASSWORD, invitation=token
            )
    assert hashed == []  # the signature and the organisation are checked first
    with rkit.begin(org=rorg) as tx:
        tx.registration.register(
            email="x@example.org", display_name="X", password=PASSWORD, invitation=inv.token
        )
    assert hashed == [PASSWORD]


def test_expired_and_revoked_invitations_are_refused(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    uid = register(org=None, email="ana@example.org")
    other = rkit.create_organisation("third", "Third")
    with rkit.begin(org=other, actor=SYSTEM) as tx:
        expired = tx.registration.invite(email="ana@example.org")
        revoked = tx.registration.invite(email="ana@example.org")
        tx.registration.revoke_invitation(revoked.id)
        tx.session.execute(
            sa.update(Invitation)
            .where(Invitation.id == expired.id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    with pytest.raises(TokenExpired), rkit.begin(org=other, actor=uid) as tx:
        tx.registration.accept_invitation(expired.token)
    with pytest.raises(TokenInvalid), rkit.begin(org=other, actor=uid) as tx:
        tx.registration.accept_invitation(revoked.token)


def test_inviting_needs_members_invite_and_higher_roles_need_manage_roles(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    member = register(email="m@example.org")
    staff = register(email="s@example.org")
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.set_role(staff, "staff")
    with pytest.raises(PermissionDenied) as info, rkit.begin(org=rorg, actor=member) as tx:
        tx.registration.invite(email="x@example.org")
    assert info.value.permission == "members.invite"
    with rkit.begin(org=rorg, actor=staff) as tx:
        tx.registration.invite(email="x@example.org", role="volunteer")
        assert len(tx.registration.invitations()) == 1
    with pytest.raises(PermissionDenied) as info, rkit.begin(org=rorg, actor=staff) as tx:
        tx.registration.invite(email="y@example.org", role="admin")
    assert info.value.permission == "members.manage_roles"
    with pytest.raises(NotFound), rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.invite(email="y@example.org", role="no-such-role")


def test_approval_organisations_turn_registration_into_a_join_request(
    hkit: Kit, recorder: Recorder
) -> None:
    org = hkit.create_organisation("careful", "Careful", settings={"joining": "approval"})
    with hkit.begin(org=org) as tx:
        user = tx.registration.register(email="a@example.org", password=PASSWORD, display_name="A")
    with pytest.raises(NotFound), hkit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.get_user(user.id)
    with hkit.begin(org=org, actor=SYSTEM) as tx:
        (request,) = tx.registration.join_requests()
        tx.registration.approve_join(request.id)
        assert tx.registration.get_user(user.id).id == user.id
    assert ("joined", (user.id, "member", "careful")) in recorder.events
    with pytest.raises(Exception, match="decided already"), hkit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.approve_join(request.id)


def test_join_requests_can_be_rejected_and_need_members_approve(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    careful = rkit.create_organisation("careful", "Careful", settings={"joining": "approval"})
    with rkit.begin(org=careful, actor=uid) as tx:
        request = tx.registration.request_to_join("I help on weekends")
    with pytest.raises(AlreadyExists), rkit.begin(org=careful, actor=uid) as tx:
        tx.registration.request_to_join()
    with pytest.raises(JoiningClosed), rkit.begin(org=careful, actor=uid) as tx:
        tx.registration.join()
    with pytest.raises(PermissionDenied), rkit.begin(org=careful, actor=uid) as tx:
        tx.registration.approve_join(request.id)
    with rkit.begin(org=careful, actor=SYSTEM) as tx:
        assert tx.registration.reject_join(request.id).status == "rejected"
        assert tx.registration.join_requests() == []
    with pytest.raises(NotFound), rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.approve_join(request.id)  # another organisation's request


def test_invitation_only_organisations_refuse_strangers(rkit: Kit, register: Register) -> None:
    closed = rkit.create_organisation("closed", "Closed", settings={"joining": "invitation"})
    with pytest.raises(JoiningClosed), rkit.begin(org=closed) as tx:
        tx.registration.register(email="a@example.org", password=PASSWORD, display_name="A")
    uid = register(email="ana@example.org")
    with pytest.raises(JoiningClosed), rkit.begin(org=closed, actor=uid) as tx:
        tx.registration.request_to_join()


def test_open_joining_for_a_signed_in_person(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    with rkit.begin(org=rother, actor=uid) as tx:
        tx.registration.join()
    with pytest.raises(AlreadyExists), rkit.begin(org=rother, actor=uid) as tx:
        tx.registration.join()
    with pytest.raises(PermissionDenied), rkit.begin(org=rother) as tx:
        tx.registration.join()


def test_staff_cannot_make_an_existing_account_a_member_without_the_person(
    rkit: Kit, rother: OrgRead, register: Register
) -> None:
    ana = register(email="ana@example.org")
    boss = register(email="boss@example.org")
    with rkit.begin(org=rother, actor=SYSTEM) as tx:
        tx.tenancy.add_member(boss, "admin")
    with pytest.raises(JoinNeedsThePerson) as info, rkit.begin(org=rother, actor=boss) as tx:
        tx.tenancy.add_member(ana)  # core's add_member, refused through ngo_kit_refuse_member
    assert info.value.code == "join_needs_the_person"
    assert "邀请" in info.value.message_in("zh_CN")
    with pytest.raises(NotFound), rkit.begin(org=rother, actor=SYSTEM) as tx:
        tx.tenancy.member(ana)  # nothing written
    outsider = uuid.uuid4()  # an actor that is no account here stays core's business
    with rkit.begin(org=rother, actor=boss) as tx:
        assert tx.tenancy.add_member(outsider).actor_id == outsider
        inv = tx.registration.invite(email="ana@example.org")
    with rkit.begin(org=rother, actor=ana) as tx:
        tx.registration.accept_invitation(inv.token)  # the person's own yes still works
        assert tx.tenancy.member(ana).role == "member"


def test_role_changes_leaving_and_removal_are_audited_and_hooked(
    hkit: Kit, recorder: Recorder
) -> None:
    org = hkit.create_organisation("rainbow", "Rainbow")
    with hkit.begin(org=org) as tx:
        a = tx.registration.register(email="a@example.org", password=PASSWORD, display_name="A").id
        b = tx.registration.register(email="b@example.org", password=PASSWORD, display_name="B").id
    with pytest.raises(PermissionDenied), hkit.begin(org=org, actor=a) as tx:
        tx.registration.set_role(b, "admin")
    with hkit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.set_role(a, "admin")
    with hkit.begin(org=org, actor=a) as tx:
        tx.registration.remove_member(b)
    with hkit.begin(org=org, actor=a) as tx:
        tx.registration.leave()
    assert ("left", b) in recorder.events and ("left", a) in recorder.events
    actions = _actions(hkit, org)
    for action in ("member.role_changed", "member.removed"):
        assert action in actions
    with pytest.raises(NotFound), hkit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.remove_member(b)


def test_every_declared_permission_is_checked_by_some_service(rkit: Kit) -> None:
    import inspect
    import re
    import sys

    from ngo_kit.modules import registration
    from ngo_kit.modules.registration.service import RegistrationService

    parts = [
        k for k in RegistrationService.__mro__ if k.__module__.startswith(registration.__name__)
    ]
    source = "".join(inspect.getsource(sys.modules[k.__module__]) for k in parts)
    checks = re.sub(r'permission="[^"]*"', "", source)  # a declaration names it, a check uses it
    for permission in registration.PERMISSIONS:
        assert f'"{permission.name}"' in checks, permission.name


def test_errors_speak_chinese_for_a_chinese_organisation(rkit: Kit) -> None:
    org = rkit.create_organisation(
        "hongqiao", "虹桥", locale="zh_CN", settings={"joining": "invitation"}
    )
    with pytest.raises(JoiningClosed) as info, rkit.begin(org=org) as tx:
        tx.registration.register(email="a@example.org", password=PASSWORD, display_name="甲")
    assert info.value.message_in("zh_CN") == "本机构仅通过邀请接收新成员。"
    with pytest.raises(ValidationFailed) as failed, rkit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.register(email="a@example.org", password="password", display_name="甲")
    assert (
        failed.value.message_in("zh_CN") == "password：是最常见的密码之一，请换一个不易猜到的密码"
    )


def test_concurrent_acceptances_of_one_invitation_admit_exactly_one_person(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    people = [register(email=f"p{n}@example.org") for n in range(4)]
    closed = rkit.create_organisation("closed", "Closed", settings={"joining": "invitation"})
    with rkit.begin(org=closed, actor=SYSTEM) as tx:
        token = tx.registration.invite(email="someone@example.org").token

    def accept(i: int) -> str:
        with rkit.begin(org=closed, actor=people[i]) as tx:
            tx.registration.accept_invitation(token)
        return "joined"

    outcomes = run_together(len(people), accept)
    assert outcomes.count("joined") == 1, outcomes
    assert all(isinstance(o, TokenUsed) for o in outcomes if o != "joined"), outcomes
    with rkit.begin(org=closed, actor=SYSTEM) as tx:
        assert len(tx.registration.users(people)) == 1


class ClosedList:
    """A plugin that refuses every new membership (a list closed for the season, say)."""

    ngo_kit_plugin_name = "closed-list"

    def __init__(self) -> None:
        self.asked: list[tuple[uuid.UUID, str, bool]] = []

    @hookimpl
    def ngo_kit_refuse_member(self, tx: Any, actor_id: uuid.UUID, role: str) -> Any:
        account = tx.connection.scalar(sa.select(Account.id).where(Account.id == actor_id))
        self.asked.append((actor_id, role, account is not None))
        return PermissionDenied("closed-list.join")


def test_registration_asks_every_plugin_that_may_refuse_a_membership(
    kit_factory: KitFactory,
) -> None:
    closed = ClosedList()
    kit = kit_factory(modules=["registration"], plugins=[closed])
    org = kit.create_organisation("rainbow", "Rainbow")
    with pytest.raises(PermissionDenied) as info, kit.begin(org=org) as tx:
        tx.registration.register(email="ana@example.org", password=PASSWORD, display_name="A")
    assert info.value.params["permission"] == "closed-list.join"
    [(_, role, account_existed)] = closed.asked
    assert role == "member" and account_existed  # asked with the account written, as core does
    with kit.begin(org=org, actor=SYSTEM) as tx:  # nothing was kept
        assert tx.session.scalar(sa.text("SELECT count(*) FROM registration_account")) == 0
        assert tx.session.scalar(sa.text("SELECT count(*) FROM core_membership")) == 0
