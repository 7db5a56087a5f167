"""Matching volunteers to shifts with explained scores, recommendations, and search."""

from __future__ import annotations

import datetime as dt
from typing import Any

from volunteer_helpers import World, soon

from ngo_kit import hookimpl
from ngo_kit.modules.volunteer.schemas import MatchFactor
from ngo_kit.testing import KitFactory


def _saturday_shift(world: World, **fields: Any) -> Any:
    return world.shift(**fields)


def test_match_ranks_eligible_volunteers_and_explains_each_score(world: World) -> None:
    shift = world.shift(
        required_skills=["first_aid"],
        city="上海",
        district="徐汇区",
        latitude="31.19",
        longitude="121.44",
    )
    near = world.person(
        "near",
        skills={"first_aid": 5},
        city="上海",
        district="徐汇区",
        latitude="31.20",
        longitude="121.45",
    )
    far = world.person(
        "far", skills={"first_aid": 5}, city="北京", latitude="39.90", longitude="116.40"
    )
    novice = world.person("novice", skills={"first_aid": 1}, city="上海", district="徐汇区")
    unskilled = world.person("unskilled", city="上海", district="徐汇区")
    applicant = world.person("applicant", skills={"first_aid": 5}, approve=False)
    with world.as_(world.coordinator) as tx:
        ranked = tx.volunteer.match(shift.id)
    order = [m.user_id for m in ranked]
    assert order[0] == near
    assert set(order) == {near, far, novice}
    assert unskilled not in order and applicant not in order
    top = ranked[0]
    assert {f.name for f in top.factors} == {
        "skills",
        "availability",
        "distance",
        "reliability",
        "load",
    }
    assert any("km" in f.reason for f in top.factors)
    assert top.score == round(sum(f.score for f in top.factors), 2)


def test_match_leaves_out_people_already_booked_at_that_time(world: World) -> None:
    shift = world.shift(24)
    overlapping = world.shift(25)
    busy, free = world.person("busy"), world.person("free")
    with world.as_(busy) as tx:
        tx.volunteer.sign_up(overlapping.id)
    with world.as_(world.coordinator) as tx:
        assert [m.user_id for m in tx.volunteer.match(shift.id)] == [free]


def test_reliability_and_recent_load_change_the_ranking(world: World) -> None:
    shift = world.shift(48)
    earlier = world.shift(2)
    busy, rested = world.person("busy"), world.person("rested")
    with world.as_(busy) as tx:
        tx.volunteer.sign_up(earlier.id)
    with world.as_(world.coordinator) as tx:
        ranked = tx.volunteer.match(shift.id)
    assert [m.user_id for m in ranked] == [rested, busy]
    load = {m.user_id: next(f for f in m.factors if f.name == "load") for m in ranked}
    assert load[busy].reason.startswith("1 shift")


def test_plugins_add_a_factor_through_match_score(kit_factory: KitFactory) -> None:
    class Languages:
        ngo_kit_plugin_name = "prefer-english"

        @hookimpl
        def ngo_kit_match_score(self, tx: Any, shift: Any, profile: Any) -> MatchFactor | None:
            if "en" in profile.languages:
                return MatchFactor(name="language", score=50.0, reason="speaks English")
            return None

    kit = kit_factory(modules=["registration", "volunteer"], plugins=[Languages()])
    world = World(kit, kit.create_organisation("lang", "Lang"))
    shift = world.shift()
    zh, en = world.person("zh", languages=["zh"]), world.person("en", languages=["en"])
    with world.as_(world.coordinator) as tx:
        ranked = tx.volunteer.match(shift.id)
    assert [m.user_id for m in ranked] == [en, zh]
    assert ranked[0].factors[-1].reason == "speaks English"


def test_recommend_offers_open_shifts_the_volunteer_can_take(world: World) -> None:
    ok = world.shift(24)
    needs_skill = world.shift(48, required_skills=["driving"])
    clash = world.shift(72)
    clash_overlap = world.shift(73)
    person = world.person()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(clash.id)
        shown = [m.shift_id for m in tx.volunteer.recommend()]
    assert ok.id in shown
    assert needs_skill.id not in shown and clash.id not in shown and clash_overlap.id not in shown


def test_search_by_name_pinyin_initials_skill_and_area(world: World) -> None:
    zhang = world.person("张三丰", skills={"driving": 2}, city="上海", district="徐汇区")
    li = world.person("李四", city="上海", district="静安区")
    smith = world.person(
        "Anna Smith", availability=[{"weekday": 5, "start": "09:00", "end": "17:00"}]
    )
    with world.as_(world.coordinator) as tx:
        search = tx.volunteer.search
        assert search("张三") == [zhang]
        assert search("zhangsan") == [zhang]
        assert search("zsf") == [zhang]
        assert search("ls") == [li]
        assert search("smith") == [smith]
        assert search("as") == [smith]
        assert search(skill="driving") == [zhang]
        assert sorted(search(city="上海")) == sorted([zhang, li])
        assert search(district="静安区") == [li]
        day = soon(24).astimezone(tx.volunteer.zone)
        while day.weekday() != 5:
            day += dt.timedelta(days=1)
        at_ten = day.replace(hour=10, minute=0)
        assert search(available_at=at_ten) == [smith]
