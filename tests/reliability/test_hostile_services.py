"""Hostile input through the services: each value a field's kind must refuse, generated, is a
``ValidationFailed`` naming the field (never a driver's or Python's own exception), and nothing
is written. The fields are found from each operation's input model; plain keyword arguments of
services are attacked the same way. Runs on every database the suite runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngo_kit import SYSTEM, Kit, ValidationFailed
from ngo_kit.context import Context
from ngo_kit.hostile_input import Kind, hostile_fields, hostile_values
from ngo_kit.modules.inventory.schemas import ReceiveIn
from ngo_kit.modules.points.schemas import AwardIn, RewardIn
from ngo_kit.modules.registration.schemas import RegisterIn
from ngo_kit.modules.volunteer.schemas import ActivityIn, ShiftIn
from ngo_kit.schemas import InputModel
from ngo_kit.tenancy import OrgRead

ORG = "hostile"
FEW = settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class World:
    """An organisation with a member, an item, a location, an activity and a shift."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.org: OrgRead = kit.create_organisation(ORG, "Hostile Input")
        with kit.begin(org=ORG, actor=SYSTEM) as tx:
            self.member = tx.registration.register(
                email="member@example.org", display_name="Member"
            ).id
            tx.volunteer.save_profile(user_id=self.member)
            tx.inventory.create_item(code="rice", name="Rice")
            tx.inventory.create_location(code="main", name="Main")
            self.activity = tx.volunteer.create_activity(title="Sorting").id

    def rows(self) -> dict[str, int]:
        """How many rows each of the kit's tables holds."""
        with self.kit.engine.connect() as conn:
            return {
                name: conn.scalar(sa.select(sa.func.count()).select_from(sa.table(name))) or 0
                for name in self.kit.table_names()
            }


@pytest.fixture
def world(kit: Kit) -> World:
    """The organisation, on a kit with every built-in module."""
    return World(kit)


def _valid(world: World) -> dict[type[InputModel], tuple[str, dict[str, Any]]]:
    """A valid call of each operation: its name on ``tx`` and its keyword arguments."""
    when = "2030-05-01T09:00:00+08:00"
    return {
        AwardIn: ("points.award", {"member_id": world.member, "points": 5, "reason": "thanks"}),
        RewardIn: ("points.add_reward", {"code": "mug", "name": "Mug", "price": 10}),
        ReceiveIn: ("inventory.receive", {"item": "rice", "quantity": "1", "to": "main"}),
        ActivityIn: ("volunteer.create_activity", {"title": "Cooking"}),
        ShiftIn: (
            "volunteer.create_shift",
            {
                "activity_id": world.activity,
                "starts_at": when,
                "ends_at": "2030-05-01T12:00+08:00",
                "capacity": 3,
            },
        ),
        RegisterIn: ("registration.register", {"email": "new@example.org", "display_name": "New"}),
    }


OPERATIONS: list[type[InputModel]] = [AwardIn, RewardIn, ReceiveIn, ActivityIn, ShiftIn, RegisterIn]
NOT_ATTACKED = {"password"}
CASES = [
    (model, key, kind)
    for model in OPERATIONS
    for key, kind in hostile_fields(model)
    if key not in NOT_ATTACKED
]


def _call(tx: Context, operation: str, **kwargs: Any) -> Any:
    module, name = operation.split(".")
    return getattr(getattr(tx, module), name)(**kwargs)


def test_a_valid_call_of_each_operation_writes(world: World) -> None:
    """The baseline the attacks start from is valid: each change below is the only fault."""
    for operation, kwargs in _valid(world).values():
        before = world.rows()
        with world.kit.begin(org=ORG, actor=SYSTEM) as tx:
            _call(tx, operation, **kwargs)
        assert world.rows() != before, operation


@pytest.mark.parametrize(
    ("model", "key", "kind"), CASES, ids=[f"{m.__name__}.{k}:{kind}" for m, k, kind in CASES]
)
@FEW
@given(data=st.data())
def test_a_hostile_value_in_any_field_is_refused_and_nothing_is_written(
    world: World, model: type[InputModel], key: str, kind: Kind, data: st.DataObject
) -> None:
    operation, kwargs = _valid(world)[model]
    value = data.draw(hostile_values(kind), label=key)
    before = world.rows()
    with pytest.raises(ValidationFailed) as info, world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        _call(tx, operation, **{**kwargs, key: value})
    assert info.value.field.split(".")[0] == key
    assert world.rows() == before


def _record_hours(world: World, **attack: Any) -> Callable[[Context], Any]:
    args = {"hours": "2", "served_on": "2026-05-01", "note": "sorting", **attack}
    return lambda tx: tx.volunteer.record_hours(world.member, **args)


KEYWORDS: list[tuple[str, Kind, Callable[[World, Any], Callable[[Context], Any]]]] = [
    ("hours", "decimal", lambda w, v: _record_hours(w, hours=v)),
    ("served_on", "day", lambda w, v: _record_hours(w, served_on=v)),
    ("note", "prose", lambda w, v: _record_hours(w, note=v)),
    ("since", "instant", lambda w, v: lambda tx: tx.inventory.history(since=v)),
    ("until", "instant", lambda w, v: lambda tx: tx.inventory.history(until=v)),
    ("today", "day", lambda w, v: lambda tx: tx.inventory.warn_expiring(today=v)),
    ("starts_after", "moment", lambda w, v: lambda tx: tx.volunteer.shifts(starts_after=v)),
    ("at", "instant", lambda w, v: lambda tx: tx.points.leaderboard(at=v)),
    ("now", "instant", lambda w, v: lambda tx: tx.points.expire(now=v)),
    ("served_from", "day", lambda w, v: lambda tx: tx.volunteer.hours_report(served_from=v)),
    (
        "period_to",
        "day",
        lambda w, v: lambda tx: tx.volunteer.issue_certificate(w.member, period_to=v),
    ),
]


@pytest.mark.parametrize(
    ("key", "kind", "call"), KEYWORDS, ids=[f"{k}:{kind}" for k, kind, _ in KEYWORDS]
)
@FEW
@given(data=st.data())
def test_a_hostile_keyword_argument_is_refused_and_nothing_is_written(
    world: World,
    key: str,
    kind: Kind,
    call: Callable[[World, Any], Callable[[Context], Any]],
    data: st.DataObject,
) -> None:
    value = data.draw(hostile_values(kind), label=key)
    before = world.rows()
    with pytest.raises(ValidationFailed) as info, world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        call(world, value)(tx)
    assert info.value.field == key
    assert world.rows() == before


def test_reasons_of_reversals_refuse_control_characters(world: World) -> None:
    with world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        award = tx.points.award(world.member, 5, reason="thanks")
        move = tx.inventory.receive(item="rice", quantity="1", to="main")
    before = world.rows()
    reversals: list[Callable[[Context], Any]] = [
        lambda tx: tx.points.reverse(award.id, reason="oops\x00"),
        lambda tx: tx.inventory.reverse(move.moves[0].id, reason="oops\x00"),
    ]
    for reverse in reversals:
        with pytest.raises(ValidationFailed) as info, world.kit.begin(org=ORG, actor=SYSTEM) as tx:
            reverse(tx)
        assert (info.value.field, info.value.rule) == ("reason", "control_characters")
    assert world.rows() == before


def test_an_input_model_given_as_a_positional_string_is_a_type_error(world: World) -> None:
    with pytest.raises(TypeError, match="RegisterIn"), world.kit.begin(org=ORG) as tx:
        tx.registration.register("x@example.org", display_name="X")
    with pytest.raises(TypeError, match="ReceiveIn"), world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        tx.inventory.receive("rice", quantity="1", to="main")


def test_points_given_as_true_are_not_one_point(world: World) -> None:
    with pytest.raises(ValidationFailed) as info, world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        tx.points.award(world.member, True, reason="bool")
    assert (info.value.field, info.value.rule) == ("points", "int_type")


def test_record_hours_refuses_nan_hours(world: World) -> None:
    with pytest.raises(ValidationFailed) as info, world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        tx.volunteer.record_hours(world.member, "NaN", served_on="2026-05-01")
    assert (info.value.field, info.value.rule) == ("hours", "finite_number")
    assert Decimal(2) == _record_hours_ok(world)


def _record_hours_ok(world: World) -> Decimal:
    with world.kit.begin(org=ORG, actor=SYSTEM) as tx:
        return Decimal(tx.volunteer.record_hours(world.member, "2", served_on="2026-05-01").hours)
