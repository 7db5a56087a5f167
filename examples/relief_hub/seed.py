"""Demo data telling two of ngo-kit's use cases, one organisation each.

* ``rainbow`` 彩虹儿童关爱中心 (Shanghai): a children's cancer charity with a volunteer programme
  and a store of donated comfort kits (安慰包) and nutrition packs (营养包); every item received
  and issued is traced back to its donor on the public transparency page.
* ``riverside`` Riverside Flood Relief (London time): after a flood, donations of blankets,
  bottled water and medicine (lots with expiry) arrive; volunteers sort and deliver.

Each has staff and volunteers with the demo passwords below, a required privacy consent,
activities with upcoming shifts, donations received and partly issued, approved hours (which
earned points and a badge through ``hours_points``), rewards backed by stock
(``rewards_stock``), a redemption and an hours claim waiting for staff, and a certificate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ngo_kit import SYSTEM, Kit
from ngo_kit.context import Context


@dataclass(frozen=True)
class DemoPerson:
    """A demo account: who, where, how to sign in."""

    org: str
    key: str
    name: str
    email: str
    password: str
    role: str


PEOPLE = (
    DemoPerson(
        "rainbow",
        "staff",
        "王老师",
        "wang.staff@rainbow.example.org",
        "rainbow-staff-demo-2024",
        "staff",
    ),
    DemoPerson(
        "rainbow",
        "volunteer",
        "李小红",
        "li.volunteer@rainbow.example.org",
        "rainbow-volunteer-demo-2024",
        "volunteer",
    ),
    DemoPerson(
        "rainbow",
        "volunteer2",
        "张伟",
        "zhang.volunteer@rainbow.example.org",
        "rainbow-volunteer2-demo-2024",
        "volunteer",
    ),
    DemoPerson(
        "riverside",
        "staff",
        "Sam Carter",
        "sam.staff@riverside.example.org",
        "riverside-staff-demo-2024",
        "staff",
    ),
    DemoPerson(
        "riverside",
        "volunteer",
        "Alex Morgan",
        "alex.volunteer@riverside.example.org",
        "riverside-volunteer-demo-2024",
        "volunteer",
    ),
    DemoPerson(
        "riverside",
        "volunteer2",
        "Priya Shah",
        "priya.volunteer@riverside.example.org",
        "riverside-volunteer2-demo-2024",
        "volunteer",
    ),
)

ORGANISATIONS: dict[str, dict[str, Any]] = {
    "rainbow": {
        "name": "彩虹儿童关爱中心",
        "timezone": "Asia/Shanghai",
        "locale": "zh_CN",
        "settings": {
            "phone_region": "CN",
            "inventory.public_trace": True,
            "volunteer": {
                "self_service_certificates": True,
                "certificate_verify_url": "/certificates/verify",  # the readable page
            },
            "about": {
                "zh_CN": "我们陪伴在上海接受治疗的患癌儿童和他们的家庭：志愿者在病房陪伴孩子，"
                "把爱心企业和市民捐赠的物资分装成安慰包和营养包送到孩子手中。",
                "en": "We stand by children treated for cancer in Shanghai and their families: "
                "volunteers keep the children company on the wards and pack donated goods "
                "into comfort kits and nutrition packs for them.",
            },
        },
    },
    "riverside": {
        "name": "Riverside Flood Relief",
        "timezone": "Europe/London",
        "locale": "en",
        "settings": {
            "phone_region": "GB",
            "inventory.public_trace": True,
            "volunteer": {
                "self_service_certificates": True,
                "certificate_verify_url": "/certificates/verify",  # the readable page
            },
            "about": {
                "en": "After the river flooded, we collect blankets, water and medicine for "
                "the households it hit, and volunteers sort and deliver them.",
                "zh_CN": "河水泛滥之后，我们为受灾家庭募集毛毯、饮用水和药品，由志愿者分拣并送达。",
            },
        },
    },
}


def is_seeded(kit: Kit) -> bool:
    """True when the demo organisations exist already."""
    with kit.begin(actor=SYSTEM) as tx:
        return any(o.slug in ORGANISATIONS for o in tx.tenancy.list_organisations())


def seed(kit: Kit) -> bool:
    """Create the demo data; ``False`` (and nothing written) when it is there already."""
    if is_seeded(kit):
        return False
    for slug, spec in ORGANISATIONS.items():
        kit.create_organisation(slug, **spec)
    _rainbow(kit)
    _riverside(kit)
    return True


def _people(tx: Context, org: str) -> dict[str, Any]:
    found = {}
    for person in PEOPLE:
        if person.org != org:
            continue
        user = tx.registration.register(
            email=person.email,
            display_name=person.name,
            password=person.password,
            consents=["privacy"],
            consent_method="seeded demo account",
        )
        tx.tenancy.set_role(user.id, person.role)
        found[person.key] = user.id
        if person.role == "volunteer":
            tx.volunteer.save_profile(user_id=user.id, city=_CITY[org])
            tx.volunteer.approve(user.id)
    return found


_CITY = {"rainbow": "上海", "riverside": "Riverside"}


def _local(tx: Context, days: int, hour: int) -> dt.datetime:
    """``hour`` o'clock in the organisation's zone, ``days`` from today."""
    zone = tx.require_org().zone
    today = dt.datetime.now(zone).date() + dt.timedelta(days=days)
    return dt.datetime(today.year, today.month, today.day, hour, tzinfo=zone)


def _common(tx: Context, privacy: tuple[str, str]) -> None:
    tx.registration.publish_consent(
        purpose="privacy", title=privacy[0], body=privacy[1], required=True
    )
    tx.points.add_rule(
        name="per-hour", rule_type="volunteer_hours", points=10, per_unit="hours", cap_week=400
    )


def _rainbow(kit: Kit) -> None:
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        _common(
            tx,
            (
                "个人信息保护声明",
                "我们只为安排志愿服务和联系您而收集姓名、电话和邮箱，不会提供给第三方。",
            ),
        )
        tx.points.add_badge(code="helper", name="爱心志愿者", criteria="threshold", threshold=50)
        people = _people(tx, "rainbow")
        tx.inventory.create_location(code="store", name="爱心仓库")
        tx.inventory.create_item(code="comfort-kit", name="Comfort kit", name_zh="安慰包")
        tx.inventory.create_item(
            code="nutrition-pack",
            name="Nutrition pack",
            name_zh="营养包",
            tracked_by_lot=True,
            perishable=True,
        )
        tx.inventory.create_item(code="tshirt", name="Volunteer T-shirt", name_zh="志愿者T恤")
        tx.inventory.receive(
            item="comfort-kit",
            quantity=120,
            to="store",
            donor="上海爱心企业",
            donation="RB-2024-001",
        )
        tx.inventory.receive(
            item="nutrition-pack",
            quantity=80,
            to="store",
            lot="NP-0601",
            expires_on=_local(tx, 240, 0).date(),
            donor="张女士",
            donation="RB-2024-002",
        )
        tx.inventory.receive(
            item="tshirt", quantity=30, to="store", donor="彩虹之友", donation="RB-2024-003"
        )
        tx.inventory.issue(
            item="comfort-kit", quantity=45, from_="store", recipient="儿童医院血液科"
        )
        tx.inventory.issue(
            item="comfort-kit",
            quantity=20,
            from_="store",
            recipient="病房活动",
            recipient_kind="activity",
        )
        tx.inventory.issue(
            item="nutrition-pack",
            quantity=24,
            from_="store",
            lot="NP-0601",
            recipient="家庭 A",
            recipient_kind="household",
        )
        activity = tx.volunteer.create_activity(
            title="安慰包分装", description="把捐赠的物资分装成安慰包", place="爱心仓库"
        )
        visit = tx.volunteer.create_activity(title="病房陪伴", place="儿童医院")
        shifts = [
            tx.volunteer.create_shift(
                activity_id=activity.id,
                starts_at=_local(tx, days, 9),
                ends_at=_local(tx, days, 12),
                capacity=6,
                place="爱心仓库",
            )
            for days in (2, 9)
        ]
        tx.volunteer.create_shift(
            activity_id=visit.id,
            starts_at=_local(tx, 4, 14),
            ends_at=_local(tx, 4, 17),
            capacity=2,
            place="儿童医院",
        )
        last_month = _local(tx, -20, 9).date()
        tx.volunteer.record_hours(
            people["volunteer"], "6", served_on=last_month, activity_id=activity.id
        )
        tx.volunteer.record_hours(
            people["volunteer2"], "3", served_on=last_month, activity_id=visit.id
        )
        shirt = tx.points.add_reward(
            code="tshirt", name="Volunteer T-shirt", name_zh="志愿者T恤", price=30
        )
        tx.rewards_stock.link(reward_id=shirt.id, item="tshirt", location="store")
        pack = tx.points.add_reward(
            code="comfort-kit-gift",
            name="A comfort kit for a child you choose",
            name_zh="以您的名义送出一份安慰包",
            price=20,
        )
        tx.rewards_stock.link(
            reward_id=pack.id, item="comfort-kit", location="store", fulfil="by_staff"
        )
    _volunteer_activity(kit, "rainbow", people, shifts[0].id, pack.id)


def _riverside(kit: Kit) -> None:
    with kit.begin(org="riverside", actor=SYSTEM) as tx:
        _common(
            tx,
            (
                "Privacy notice",
                "We keep your name, phone and email only to organise volunteering and to reach "
                "you; we never share them.",
            ),
        )
        tx.points.add_badge(code="helper", name="Flood helper", criteria="threshold", threshold=50)
        people = _people(tx, "riverside")
        tx.inventory.create_location(code="depot", name="Town hall depot")
        tx.inventory.create_item(code="blanket", name="Blanket")
        tx.inventory.create_item(
            code="water", name="Bottled water (6 x 1.5 l)", tracked_by_lot=True, perishable=True
        )
        tx.inventory.create_item(
            code="medicine", name="First-aid medicine kit", tracked_by_lot=True, perishable=True
        )
        tx.inventory.create_item(code="flask", name="Thermal flask")
        tx.inventory.receive(
            item="blanket", quantity=300, to="depot", donor="Town Council", donation="RS-001"
        )
        tx.inventory.receive(
            item="water",
            quantity=500,
            to="depot",
            lot="W-2406",
            expires_on=_local(tx, 300, 0).date(),
            donor="Valley Supermarkets",
            donation="RS-002",
        )
        tx.inventory.receive(
            item="medicine",
            quantity=60,
            to="depot",
            lot="MED-17",
            expires_on=_local(tx, 25, 0).date(),
            donor="St Mary's Pharmacy",
            donation="RS-003",
        )
        tx.inventory.receive(
            item="flask", quantity=20, to="depot", donor="Outdoor Co-op", donation="RS-004"
        )
        tx.inventory.issue(
            item="blanket",
            quantity=120,
            from_="depot",
            recipient="Mill Lane shelter",
            recipient_kind="site",
        )
        tx.inventory.issue(
            item="water",
            quantity=200,
            from_="depot",
            lot="W-2406",
            recipient="Household 14",
            recipient_kind="household",
        )
        tx.inventory.issue(
            item="medicine",
            quantity=12,
            from_="depot",
            lot="MED-17",
            recipient="Mr Evans",
            recipient_kind="beneficiary",
        )
        tx.inventory.create_need(
            item="blanket", quantity=80, requester="Church Street site", priority=1
        )
        sorting = tx.volunteer.create_activity(title="Sort donations", place="Town hall depot")
        delivery = tx.volunteer.create_activity(title="Deliver supplies", place="Flooded streets")
        shifts = [
            tx.volunteer.create_shift(
                activity_id=sorting.id,
                starts_at=_local(tx, days, 8),
                ends_at=_local(tx, days, 12),
                capacity=8,
                place="Town hall depot",
            )
            for days in (1, 3)
        ]
        tx.volunteer.create_shift(
            activity_id=delivery.id,
            starts_at=_local(tx, 2, 13),
            ends_at=_local(tx, 2, 17),
            capacity=4,
            place="Meet at the depot",
        )
        last_week = _local(tx, -6, 8).date()
        tx.volunteer.record_hours(
            people["volunteer"], "8", served_on=last_week, activity_id=sorting.id
        )
        tx.volunteer.record_hours(
            people["volunteer2"], "4", served_on=last_week, activity_id=delivery.id
        )
        flask = tx.points.add_reward(code="flask", name="Thermal flask", price=40)
        tx.rewards_stock.link(reward_id=flask.id, item="flask", location="depot", fulfil="by_staff")
        tx.points.add_reward(code="thanks", name="Thank-you card from the mayor", price=10)
    _volunteer_activity(kit, "riverside", people, shifts[0].id, flask.id)


def _volunteer_activity(
    kit: Kit, org: str, people: dict[str, Any], shift_id: Any, reward_id: Any
) -> None:
    """What the demo volunteer did themselves: a place, a redemption, a claim, a certificate."""
    volunteer = people["volunteer"]
    with kit.begin(org=org, actor=volunteer) as tx:
        tx.volunteer.sign_up(shift_id)
        tx.points.redeem(reward_id=reward_id, member_id=volunteer, key="seed-redemption")
        tx.volunteer.claim_hours(
            served_on=_local(tx, -2, 0).date(), hours="2", description="Phone calls to donors"
        )
        tx.volunteer.issue_certificate(volunteer)
    with kit.begin(org=org, actor=people["volunteer2"]) as tx:
        tx.volunteer.sign_up(shift_id)


__all__ = ["ORGANISATIONS", "PEOPLE", "DemoPerson", "is_seeded", "seed"]
