"""Earning rules: welcome bonus, daily check-in, per-unit and formula rules, caps, windows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from points_helpers import ledger_invariants, member
from registration_stand_in import RegistrationStandIn

from ngo_kit import SYSTEM, Kit, NotFound, PermissionDenied, ValidationFailed, hookimpl
from ngo_kit.context import Context
from ngo_kit.modules.points import LimitReached, RuleType
from ngo_kit.modules.points.schemas import TransactionRead
from ngo_kit.plugins import Registrar


@dataclass(frozen=True)
class User:
    """What the registration module passes: an object with the account ``id``."""

    id: uuid.UUID


class HoursBridge:
    """A bridge plugin: approved volunteer hours earn points per hour (issue 7's shape)."""

    ngo_kit_plugin_name = "test.hours_bridge"

    @hookimpl
    def ngo_kit_register_points_rules(self, register: Registrar[RuleType]) -> None:
        register(
            RuleType("volunteer_hours", "hours_approved", "points per hour", ("hours", "shifts"))
        )


def make_kit(kit_factory: Callable[..., Kit], *plugins: object) -> Kit:
    return kit_factory(
        modules=["points", "reg_stand_in"], plugins=[RegistrationStandIn(), *plugins]
    )


def test_welcome_bonus_fires_on_user_registered_once(kit_factory: Callable[..., Kit]) -> None:
    kit = make_kit(kit_factory)
    org = kit.create_organisation("welcome", "Welcome")
    user = User(uuid.uuid4())
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.add_rule(name="welcome", rule_type="welcome_bonus", points=50, reason="Welcome!")
    for _ in range(2):  # a retried registration event awards once
        with kit.begin(org=org, actor=SYSTEM) as tx:
            tx.emit("ngo_kit_user_registered", user=user)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.balance(user.id) == 50
        entry = tx.points.statement(user.id)[0]
        assert entry.reason == "Welcome!" and entry.reference == "user_registered"
    ledger_invariants(kit)


def test_welcome_bonus_does_nothing_without_an_organisation_or_a_rule(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = make_kit(kit_factory)
    org = kit.create_organisation("quiet", "Quiet")
    user = User(uuid.uuid4())
    with kit.begin(actor=SYSTEM) as tx:
        tx.emit("ngo_kit_user_registered", user=user)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_user_registered", user=user)
        assert tx.points.balance(user.id) == 0


def test_daily_check_in_awards_once_a_day(pkit: Kit, porg: Any) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.tenancy.add_member(m, "member")
        tx.points.add_rule(name="check-in", rule_type="daily_check_in", points=5)
    with pkit.begin(org=porg, actor=m) as tx:
        first = tx.points.check_in(m)
        assert [a.points for a in first] == [5]
        assert tx.points.check_in(m) == first  # the day's award again, nothing new
        with pytest.raises(PermissionDenied):
            tx.points.check_in(member())
        assert tx.points.balance(m) == 5


def test_per_unit_rules_read_the_events_fields(kit_factory: Callable[..., Kit]) -> None:
    kit = make_kit(kit_factory, HoursBridge())
    org = kit.create_organisation("hours", "Hours")
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert "volunteer_hours" in {t.name for t in tx.points.rule_types()}
        tx.points.add_rule(
            name="per-hour", rule_type="volunteer_hours", points=10, per_unit="hours"
        )
        made = tx.points.apply_rules("hours_approved", m, {"hours": Decimal("2.5")}, key="h1")
        assert [(a.points, a.rule) for a in made] == [(25, "per-hour")]
        assert tx.points.apply_rules("hours_approved", m, {"hours": 9}, key="h1")[0].points == 25
        assert tx.points.balance(m) == 25


def test_formula_rules_compute_over_fields_with_exact_decimals(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = make_kit(kit_factory, HoursBridge())
    org = kit.create_organisation("formula", "Formula")
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.add_rule(
            name="bonus", rule_type="volunteer_hours", formula="min(hours * 12 + shifts * 5, 100)"
        )
        assert (
            tx.points.apply_rules("hours_approved", m, {"hours": 1.5, "shifts": 2})[0].points == 28
        )
        assert (
            tx.points.apply_rules("hours_approved", m, {"hours": 40, "shifts": 1})[0].points == 100
        )
        for bad in ("__import__('os')", "hours ** 2", "minutes * 2", "hours.real", "'a'"):
            with pytest.raises(ValidationFailed) as info:
                tx.points.add_rule(name="bad", rule_type="volunteer_hours", formula=bad)
            assert info.value.rule == "bad_formula"


def test_rule_configuration_is_validated(kit_factory: Callable[..., Kit]) -> None:
    kit = make_kit(kit_factory, HoursBridge())
    org = kit.create_organisation("config", "Config")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        with pytest.raises(ValidationFailed) as info:
            tx.points.add_rule(name="x", rule_type="no_such_type", points=1)
        assert info.value.rule == "unknown_rule_type"
        with pytest.raises(ValidationFailed) as info:
            tx.points.add_rule(name="x", rule_type="volunteer_hours", points=1, per_unit="minutes")
        assert info.value.field == "per_unit"
        with pytest.raises(ValidationFailed) as info:
            tx.points.add_rule(
                name="x", rule_type="volunteer_hours", per_unit="hours", formula="hours"
            )
        assert (info.value.field, info.value.rule) == ("formula", "per_unit_and_formula")
        with pytest.raises(NotFound):
            tx.points.set_rule_active("nope", False)


def test_caps_cut_rule_awards_per_member_and_period(kit_factory: Callable[..., Kit]) -> None:
    kit = make_kit(kit_factory, HoursBridge())
    org = kit.create_organisation("caps", "Caps")
    a, b = member(), member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.add_rule(
            name="per-hour", rule_type="volunteer_hours", points=10, per_unit="hours", cap_day=40
        )
        got = [tx.points.apply_rules("hours_approved", a, {"hours": 3})[0].points]
        got.append(tx.points.apply_rules("hours_approved", a, {"hours": 3})[0].points)
        assert got == [30, 10]
        assert tx.points.apply_rules("hours_approved", a, {"hours": 1}) == []
        assert tx.points.balance(a) == 40
        assert tx.points.apply_rules("hours_approved", b, {"hours": 1})[0].points == 10


def test_manual_rules_refuse_awards_over_their_cap(pkit: Kit, porg: Any) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.add_rule(name="kudos", rule_type="manual", cap_week=30, reason="kudos")
        assert tx.points.award(m, 20, rule="kudos").rule == "kudos"
        with pytest.raises(LimitReached):
            tx.points.award(m, 11, rule="kudos")
        tx.points.set_rule_active("kudos", False)
        with pytest.raises(ValidationFailed):
            tx.points.award(m, 1, rule="kudos")


def test_inactive_or_out_of_window_rules_do_not_fire(pkit: Kit, porg: Any) -> None:
    m = member()
    now = dt.datetime.now(dt.UTC)
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.add_rule(name="off", rule_type="daily_check_in", points=5, active=False)
        tx.points.add_rule(
            name="future",
            rule_type="daily_check_in",
            points=5,
            starts_at=now + dt.timedelta(days=1),
        )
        tx.points.add_rule(
            name="past", rule_type="daily_check_in", points=5, ends_at=now - dt.timedelta(days=1)
        )
        assert tx.points.check_in(m) == []
        assert {r.name for r in tx.points.rules()} == {"off", "future", "past"}


class AwardWatcher:
    """Records ``ngo_kit_points_awarded`` and ``ngo_kit_points_spent`` events."""

    ngo_kit_plugin_name = "test.award_watcher"

    def __init__(self) -> None:
        self.awarded: list[TransactionRead] = []
        self.spent: list[TransactionRead] = []

    @hookimpl
    def ngo_kit_points_awarded(self, tx: Context, award: TransactionRead) -> None:
        self.awarded.append(award)

    @hookimpl
    def ngo_kit_points_spent(self, tx: Context, spending: TransactionRead) -> None:
        self.spent.append(spending)


def test_award_and_spend_hooks_run_inside_the_transaction(kit_factory: Callable[..., Kit]) -> None:
    watcher = AwardWatcher()
    kit = kit_factory(modules=["points"], plugins=[watcher])
    org = kit.create_organisation("hooks", "Hooks")
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(m, 10)
        tx.points.award_many(awards={m: 5, member(): 5})
        tx.points.deduct(m, 3)
    assert [a.points for a in watcher.awarded] == [10, 5, 5]
    assert [(s.kind, s.points, s.balance_after) for s in watcher.spent] == [("deduct", 3, 12)]
