"""Levels, badges (with Open Badges 2.0 export) and leaderboards kept as period totals."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from points_helpers import member

from ngo_kit import SYSTEM, AlreadyExists, Kit, NotFound, ValidationFailed, hookimpl
from ngo_kit.context import Context
from ngo_kit.modules.points.models import PointsTally
from ngo_kit.modules.points.schemas import BadgeAwardRead, LevelRead
from ngo_kit.tenancy import OrgRead


class Recogniser:
    """Records ``ngo_kit_level_reached`` and ``ngo_kit_badge_awarded``."""

    ngo_kit_plugin_name = "test.recogniser"

    def __init__(self) -> None:
        self.levels: list[tuple[uuid.UUID, str]] = []
        self.badges: list[BadgeAwardRead] = []

    @hookimpl
    def ngo_kit_level_reached(self, tx: Context, member_id: uuid.UUID, level: LevelRead) -> None:
        self.levels.append((member_id, level.name))

    @hookimpl
    def ngo_kit_badge_awarded(self, tx: Context, badge: BadgeAwardRead) -> None:
        self.badges.append(badge)


@pytest.fixture
def watched(kit_factory: Callable[..., Kit]) -> tuple[Kit, OrgRead, Recogniser]:
    plugin = Recogniser()
    kit = kit_factory(modules=["points"], plugins=[plugin])
    return kit, kit.create_organisation("recog", "Recognition"), plugin


def test_levels_follow_lifetime_earned_points_and_fire_once(
    watched: tuple[Kit, OrgRead, Recogniser],
) -> None:
    kit, org, seen = watched
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        for name, threshold in (("seed", 0), ("sprout", 50), ("tree", 200)):
            tx.points.add_level(name=name, threshold=threshold)
        with pytest.raises(AlreadyExists):
            tx.points.add_level(name="tree", threshold=300)
        tx.points.award(m, 60)
        tx.points.deduct(m, 60)  # spending does not lower a level
        tx.points.award(m, 150)
        assert tx.points.standing(m).level == "tree"
        assert [lvl.name for lvl in tx.points.levels()] == ["seed", "sprout", "tree"]
    assert seen.levels == [(m, "sprout"), (m, "tree")]


def test_badges_by_threshold_event_count_and_hand(
    watched: tuple[Kit, OrgRead, Recogniser],
) -> None:
    kit, org, seen = watched
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.add_badge(code="hundred", name="100 points", criteria="threshold", threshold=100)
        tx.points.add_badge(
            code="regular", name="Regular", criteria="event_count", threshold=2, event="check_in"
        )
        tx.points.add_badge(code="helper", name="Helper")
        with pytest.raises(ValidationFailed) as info:
            tx.points.add_badge(code="broken", name="Broken", criteria="threshold")
        assert (info.value.field, info.value.rule) == ("threshold", "badge_criteria_incomplete")
        tx.points.add_rule(name="check-in", rule_type="daily_check_in", points=1)
        tx.points.award(m, 120)
        tx.points.award(m, 120)  # crossing once is enough
        tx.points.check_in(m)
        tx.points.apply_rules("check_in", m, key="second-day")
        first = tx.points.grant_badge("helper", m, evidence="ran the stall")
        assert tx.points.grant_badge("helper", m) == first
        with pytest.raises(NotFound):
            tx.points.grant_badge("nope", m)
        held = [b.badge_code for b in tx.points.member_badges(m)]
    assert sorted(held) == ["helper", "hundred", "regular"]
    assert sorted(b.badge_code for b in seen.badges) == ["helper", "hundred", "regular"]


def test_a_badge_award_exports_as_an_open_badges_assertion(sys_tx: Context) -> None:
    m = member()
    sys_tx.points.add_badge(code="helper", name="Helper", description="Helped out")
    award = sys_tx.points.grant_badge("helper", m)
    doc = sys_tx.points.badge_assertion(award.id, base_url="https://ngo.example/badges/")
    assert doc["@context"] == "https://w3id.org/openbadges/v2"
    assert doc["type"] == "Assertion"
    assert doc["id"] == f"https://ngo.example/badges/assertions/{award.id}"
    assert doc["verification"] == {"type": "hosted"}
    assert doc["recipient"]["hashed"] is True and str(m) not in str(doc)
    assert doc["badge"]["name"] == "Helper" and doc["badge"]["issuer"]["type"] == "Profile"
    assert doc["issuedOn"].endswith("Z")


def test_leaderboards_rank_ties_together_and_page(sys_tx: Context) -> None:
    a, b, c, d = (uuid.UUID(int=i) for i in (1, 2, 3, 4))
    sys_tx.points.award_many(awards={a: 30, b: 50, c: 30, d: 10})
    board = sys_tx.points.leaderboard("week")
    assert [(r.rank, r.member_id, r.points) for r in board] == [
        (1, b, 50),
        (2, a, 30),
        (2, c, 30),
        (4, d, 10),
    ]
    assert [(r.rank, r.member_id) for r in sys_tx.points.leaderboard("all", limit=2, offset=2)] == [
        (2, c),
        (4, d),
    ]
    assert sys_tx.points.leaderboard("month", offset=10) == []
    with pytest.raises(ValidationFailed):
        sys_tx.points.leaderboard("decade")


def test_leaderboards_count_earned_points_per_period_and_reversals_take_them_back(
    sys_tx: Context,
) -> None:
    a, b = member(), member()
    award = sys_tx.points.award(a, 40)
    sys_tx.points.award(b, 30)
    sys_tx.points.deduct(b, 30)  # spending keeps the leaderboard place
    sys_tx.points.reverse(award.id)
    assert [(r.member_id, r.points) for r in sys_tx.points.leaderboard("week")] == [(b, 30)]
    next_year = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    assert sys_tx.points.leaderboard("week", at=next_year) == []
    assert [r.points for r in sys_tx.points.leaderboard("all", at=next_year)] == [30]
    periods = set(sys_tx.session.scalars(sa.select(PointsTally.period)))
    assert "all" in periods and any("-W" in p for p in periods) and len(periods) == 3
