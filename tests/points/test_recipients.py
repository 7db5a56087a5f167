"""With registration enabled, points go to members of the organisation only (no ghost accounts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit, NotFound
from ngo_kit.modules.points.models import PointsAccount
from ngo_kit.tenancy import OrgRead


def _accounts(kit: Kit, org: OrgRead) -> int:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        return int(
            tx.connection.scalar(
                sa.select(sa.func.count())
                .select_from(PointsAccount)
                .where(PointsAccount.org_id == org.id, PointsAccount.kind == "member")
            )
            or 0
        )


@pytest.fixture
def rkit(kit_factory: Callable[..., Kit]) -> Kit:
    return kit_factory(modules=["registration", "points"])


def _member(kit: Kit, org: OrgRead, name: str) -> uuid.UUID:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        user = tx.registration.register(
            email=f"{name}-{uuid.uuid4().hex[:6]}@example.org", display_name=name
        )
    member_id: uuid.UUID = user.id
    return member_id


def test_awarding_nobody_is_refused_and_opens_no_account(rkit: Kit) -> None:
    org = rkit.create_organisation("ghosts", "Ghosts")
    other = rkit.create_organisation("elsewhere", "Elsewhere")
    stranger = _member(rkit, other, "stranger")  # an account, but not a member here
    real = _member(rkit, org, "real")
    with rkit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.add_badge(code="b", name="B", criteria="manual")
    before = _accounts(rkit, org)
    for nobody in (uuid.uuid4(), stranger):
        with rkit.begin(org=org, actor=SYSTEM) as tx:
            calls: list[tuple[str, Callable[..., object]]] = [
                ("member_id", lambda n=nobody: tx.points.award(n, 10, key="ghost")),
                ("awards", lambda n=nobody: tx.points.award_many(awards={real: 1, n: 1})),
                ("member_id", lambda n=nobody: tx.points.grant_badge("b", n)),
            ]
            for field, call in calls:
                with pytest.raises(NotFound) as refused, tx.savepoint():
                    call()
                assert refused.value.to_dict()["field"] == field
                assert refused.value.kind == "Member"
    assert _accounts(rkit, org) == before
    with rkit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.award(real, 10).balance_after == 10


def test_a_transfer_to_nobody_is_refused(rkit: Kit) -> None:
    org = rkit.create_organisation("gifts", "Gifts")
    sender = _member(rkit, org, "sender")
    with rkit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.configure(transfers_allowed=True)
        tx.points.award(sender, 50)
    with rkit.begin(org=org, actor=sender) as tx, pytest.raises(NotFound) as refused:
        tx.points.transfer(from_member=sender, to_member=uuid.uuid4(), points=20)
    assert refused.value.to_dict()["field"] == "to_member"
    with rkit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.balance(sender) == 50


def test_a_former_member_gets_no_more_points(rkit: Kit) -> None:
    org = rkit.create_organisation("leavers", "Leavers")
    leaver = _member(rkit, org, "leaver")
    with rkit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(leaver, 5)
        tx.tenancy.remove_member(leaver)
    with rkit.begin(org=org, actor=SYSTEM) as tx, pytest.raises(NotFound):
        tx.points.award(leaver, 5)


def test_without_registration_member_ids_are_the_applications_own(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = kit_factory(modules=["points"])
    org = kit.create_organisation("own-ids", "Own ids")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.award(uuid.uuid4(), 10).balance_after == 10
