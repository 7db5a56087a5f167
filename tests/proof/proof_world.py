"""A seeded "world" per organisation for the isolation and permission matrices.

``seed(kit, tag)`` builds, through the services as the system actor, one object of every kind
the enabled modules keep (and a few in the states their operations need), in an organisation
of its own. Every text it writes carries the side's marker (``proofa`` / ``proofb``) and every
id it is handed back is remembered, so a result that mentions anything of the other side is
found by scanning it (``Side.leaks``).
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pydantic
from PIL import Image

from ngo_kit import SYSTEM, Kit
from ngo_kit.context import Context
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import MessageCatcher


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PASSWORD = "correct horse battery"
#: a 40 x 40 PNG, the logo each organisation's certificates carry
LOGO = _png(40, 40)
#: the role of the matrices' actor without permissions (no grant at all)
NO_PERMISSIONS = "proof-none"


def marker(tag: str) -> str:
    """The text every string of side ``tag`` contains."""
    return f"proof{tag}"


@dataclass
class Side:
    """One organisation's seeded objects: ``refs`` by world key, and every id seen."""

    tag: str
    org: OrgRead
    refs: dict[str, Any] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)

    @property
    def mark(self) -> str:
        """The side's marker text."""
        return marker(self.tag)

    def keep(self, key: str, value: Any, *results: Any) -> Any:
        """Remember ``value`` as world key ``key`` (and every id and text in ``results``)."""
        self.refs[key] = value
        self.remember(value, *results)
        return value

    def remember(self, *results: Any) -> None:
        """Add every id found in ``results`` to those of this side (texts carry the marker)."""
        for found in walk(results):
            if isinstance(found, uuid.UUID):
                self.ids.add(str(found))

    def leaks(self, result: Any, allowed: frozenset[str] = frozenset()) -> list[str]:
        """What ``result`` shows of this side (its ids, its marked texts), ``allowed`` aside.

        Texts are searched, so an id or a code inside a message or an exported file counts;
        the ``allowed`` values (what the caller passed in, say) are cut out first.
        """
        shown: list[str] = []
        for found in walk(result):
            text = str(found) if isinstance(found, uuid.UUID) else found
            if not isinstance(text, str):
                continue
            rest = text
            for value in sorted(allowed, key=len, reverse=True):
                rest = rest.replace(value, "")
            if self.mark in rest or any(i in rest for i in self.ids):
                shown.append(text)
        return sorted(set(shown))

    def allowed(self, keys: tuple[str, ...]) -> frozenset[str]:
        """The ids and texts of world keys ``keys``, which an exempt call may show."""
        out: set[str] = set()
        for key in keys:
            for found in walk(self.refs[key]):
                out.add(str(found))
        return frozenset(out)


def walk(value: Any) -> Iterator[Any]:
    """Every scalar inside ``value``: models, mappings, sequences, bytes (as text), exceptions."""
    if isinstance(value, pydantic.BaseModel):
        yield from walk(value.model_dump())
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk(k)
            yield from walk(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from walk(v)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, BaseException):
        yield str(value)
        params = getattr(value, "params", {})
        yield from walk({k: str(v) for k, v in params.items()})
    else:
        yield value


def _soon(hours: float) -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return now + dt.timedelta(hours=hours)


def seed(kit: Kit, tag: str, messages: MessageCatcher) -> Side:
    """An organisation ``proof-<tag>`` with one of everything, seeded as the system actor.

    ``messages`` is the kit's message catcher (tokens and codes sent to people are kept).
    """
    mark = marker(tag)
    org = kit.create_organisation(f"proof-{tag}", f"Organisation {mark}")
    side = Side(tag, org)
    side.keep("org_name", org.name, org)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        _people(tx, side)
    if "registration" in kit.modules:
        _registration(kit, side, messages)
    for module, build in (
        ("points", _points),
        ("inventory", _inventory),
        ("volunteer", _volunteer),
        ("rewards_stock", _rewards_stock),
        ("webhooks", _webhooks),
    ):
        if module in kit.modules:
            with kit.begin(org=org, actor=SYSTEM) as tx:
                build(tx, side)
    return side


def _account(tx: Context, side: Side, key: str, role: str, **extra: Any) -> uuid.UUID:
    user = tx.registration.register(
        email=f"{key}.{side.mark}@example.org",
        password=PASSWORD,
        display_name=f"{key} {side.mark}",
        **extra,
    )
    if role != "member":
        tx.tenancy.set_role(user.id, role)
    side.keep(f"{key}_email", user.email, user)
    return side.keep(key, user.id)  # type: ignore[no-any-return]


def _people(tx: Context, side: Side) -> None:
    mark = side.mark
    tx.tenancy.create_role(NO_PERMISSIONS, "No permissions")
    side.keep("role", "staff")
    _account(tx, side, "admin", "admin")
    _account(tx, side, "nobody", NO_PERMISSIONS)
    number = "+86139123456" + ("71" if side.tag == "a" else "72")
    member = _account(tx, side, "member", "volunteer", phone=number)
    side.keep("member_phone", number)
    side.keep("member_name", f"member {mark}")
    _account(tx, side, "volunteer2", "volunteer")
    _account(tx, side, "applicant", "volunteer")
    _account(tx, side, "worker", "volunteer")
    newcomer = _account(tx, side, "newcomer", "volunteer")
    side.keep("members", [member])
    side.keep("awards", {member: 5})
    side.keep("profile_rows", [{"user_id": str(newcomer)}])
    key = tx.api_keys.create(name=f"key {mark}", scopes=["members.view"])
    side.keep("api_key", key.id, key)


def _sent(messages: MessageCatcher, recipient: str, key: str) -> str:
    found = [m.data[key] for m in messages.to(recipient) if key in m.data]
    assert found, f"no message with {key!r} was sent to {recipient}"
    return str(found[-1])


def _registration(kit: Kit, side: Side, messages: MessageCatcher) -> None:
    mark = side.mark
    email, phone = side.refs["member_email"], side.refs["member_phone"]
    side.keep("verify_email_token", _sent(messages, email, "token"))
    side.keep("phone_code", _sent(messages, phone, "code"))
    with kit.begin(org=side.org, actor=SYSTEM) as tx:
        reg = tx.registration
        field_read = reg.define_field(name=f"field_{side.tag}", kind="text", label_en=mark)
        side.keep("field", field_read.name, field_read)
        side.keep("field_answers", {field_read.name: f"answer {mark}"})
        reg.request_password_reset(email=email)
        doc = reg.publish_consent(purpose=f"privacy_{mark}", title=mark, body=mark)
        side.keep("purpose", doc.purpose, doc)
        reg.give_consent(doc.purpose, user_id=side.refs["member"])
        reg.save_field_values({field_read.name: f"answer {mark}"}, user_id=side.refs["member"])
        invitation = reg.invite(email=f"invitee.{mark}@example.org")
        side.keep("invitation", invitation.id, invitation)
        side.keep("invitation_token", invitation.token)
        joiner = _account(tx, side, "joiner", "member")
        petitioner = _account(tx, side, "petitioner", "member")
    # Both leave: the joiner is a person who is no member (the controls' last actor, who
    # joins or asks to join), the petitioner one whose request to join is pending.
    for person in (joiner, petitioner):
        with kit.begin(org=side.org, actor=person) as tx:
            tx.registration.leave()
    with kit.begin(org=side.org, actor=petitioner) as tx:
        request = tx.registration.request_to_join(f"let me in {mark}")
        side.keep("join_request", request.id, request)
    kit.outbox.work()  # a reset link is left to the worker
    side.keep("reset_token", _sent(messages, email, "token"))
    changed = f"changed.{mark}@example.org"
    with kit.begin(org=side.org, actor=side.refs["member"]) as tx:
        tx.registration.request_email_change(changed)
    kit.outbox.work()
    side.keep("email_change_token", _sent(messages, changed, "token"))
    side.keep("member_email_changed", changed)
    new_phone = "+86139123456" + ("81" if side.tag == "a" else "82")
    with kit.begin(org=side.org, actor=side.refs["member"]) as tx:
        tx.registration.request_phone_change(new_phone)
    kit.outbox.work()
    side.keep("phone_change_code", _sent(messages, new_phone, "code"))
    with kit.begin(actor=None) as tx:
        signed_in = tx.registration.authenticate(email=side.refs["member_email"], password=PASSWORD)
        side.keep("session_token", signed_in.token)


def _points(tx: Context, side: Side) -> None:
    mark, pts = side.mark, tx.points
    member = side.refs["member"]
    pts.configure(transfers_allowed=True)
    reward = pts.add_reward(code=f"reward-{mark}", name=mark, price=10, stock=20)
    side.keep("reward", reward.id, reward)
    side.keep("reward_code", reward.code)
    plain = pts.add_reward(code=f"plain-{mark}", name=mark, price=5, stock=20)
    side.keep("reward_plain", plain.id, plain)
    rule = pts.add_rule(name=f"rule-{mark}", rule_type="manual", points=5, reason=mark)
    side.keep("rule", rule.name, rule)
    daily = pts.add_rule(name=f"daily-{mark}", rule_type="daily_check_in", points=2)
    side.remember(daily)
    badge = pts.add_badge(code=f"badge-{mark}", name=mark)
    side.keep("badge", badge.code, badge)
    level = pts.add_level(name=f"level-{mark}", threshold=50)
    side.keep("level", level.name, level)
    award = pts.award(member, 137 if side.tag == "b" else 100, reason=f"welcome {mark}")
    side.keep("txn", award.id, award)
    other = pts.award(side.refs["volunteer2"], 40, reason=f"thanks {mark}")
    side.keep("txn_reversible", other.id, other)
    badge_award = pts.grant_badge(badge.code, member, evidence=mark)
    side.keep("badge_award", badge_award.id, badge_award)
    redemption = pts.redeem(reward_id=reward.id, member_id=member)
    side.keep("redemption", redemption.id, redemption)
    side.remember(pts.statement(member), pts.standing(member))


def _inventory(tx: Context, side: Side) -> None:
    mark, inv = side.mark, tx.inventory
    category = inv.create_category(code=f"cat-{mark}", name=mark)
    side.keep("category", category.code, category)
    item = inv.create_item(code=f"item-{mark}", name=mark, category=category.code)
    side.keep("item", item.code, item)
    side.keep("item_id", item.id)
    tracked = inv.create_item(
        code=f"milk-{mark}", name=mark, tracked_by_lot=True, perishable=True, shelf_life_days=90
    )
    side.keep("item_tracked", tracked.code, tracked)
    location = inv.create_location(code=f"wh-{mark}", name=mark)
    side.keep("location", location.code, location)
    side.keep("location_id", location.id)
    shelf = inv.create_location(code=f"shelf-{mark}", name=mark, parent=location.code)
    side.keep("location_other", shelf.code, shelf)
    donation = f"donation-{mark}"
    received = inv.receive(
        item=item.code, quantity=50, to=location.code, donor=f"donor {mark}", donation=donation
    )
    side.keep("donation", donation, received)
    csv = f"item,location,quantity\n{item.code},{location.code},1\n"
    side.keep("opening_stock_csv", csv.encode())
    side.keep("move", received.moves[0].id)
    lot_receipt = inv.receive(
        item=tracked.code, quantity=12, to=location.code, lot=f"lot-{mark}", donation=donation
    )
    side.keep("lot", f"lot-{mark}", lot_receipt)
    need = inv.create_need(item=item.code, quantity=3, requester=f"family {mark}")
    side.keep("need", need.id, need)
    issued = inv.issue(item=item.code, quantity=5, from_=location.code, recipient=f"family {mark}")
    side.keep("issue_group", issued.group_id, issued)
    side.keep("issue_move", issued.moves[0].id)
    draft = inv.create_document(
        kind="receipt",
        reference=f"draft-{mark}",
        location=location.code,
        lines=[{"item": item.code, "quantity": 2}],
        donation=donation,
    )
    side.keep("document", draft.id, draft)
    receipt = inv.create_document(
        kind="receipt",
        reference=f"receipt-{mark}",
        location=location.code,
        lines=[{"item": item.code, "quantity": 2}],
    )
    side.keep("document_confirmed", inv.confirm_document(receipt.id).id, receipt)
    dispatch = inv.create_document(
        kind="dispatch",
        reference=f"dispatch-{mark}",
        location=location.code,
        recipient=f"family {mark}",
        lines=[{"item": item.code, "quantity": 1}],
    )
    side.keep("document_dispatch", inv.confirm_document(dispatch.id).id, dispatch)
    side.remember(inv.history(), inv.locations())


def _volunteer(tx: Context, side: Side) -> None:
    mark, vol = side.mark, tx.volunteer
    member, volunteer2 = side.refs["member"], side.refs["volunteer2"]
    skill = vol.add_skill(f"skill_{side.tag}", mark)
    side.keep("skill", skill.code, skill)
    for person in (member, volunteer2, side.refs["worker"]):
        profile = vol.save_profile(
            user_id=person, emergency_contact_name=f"contact {mark}", city=f"city {mark}"
        )
        side.remember(profile)
        vol.approve(person)
    side.remember(vol.save_profile(user_id=side.refs["applicant"], city=mark))
    activity = vol.create_activity(title=f"activity {mark}", place=mark)
    side.keep("activity", activity.id, activity)
    start = _soon(48 if side.tag == "a" else 72)
    shift = vol.create_shift(
        activity_id=activity.id, starts_at=start, ends_at=start + dt.timedelta(hours=3), capacity=5
    )
    side.keep("shift", shift.id, shift)
    signup = vol.sign_up(shift.id, member)
    side.keep("signup", signup.id, signup)
    side.keep("checkin_pass", vol.checkin_pass(shift.id, member))
    later = start + dt.timedelta(days=2)
    attended = vol.create_shift(
        activity_id=activity.id,
        starts_at=later,
        ends_at=later + dt.timedelta(hours=2),
        capacity=5,
    )
    side.keep("shift_checked_in", attended.id, attended)
    vol.sign_up(attended.id, member)
    side.remember(vol.check_in(attended.id, member))
    claim = vol.claim_hours(
        served_on=dt.date.today(), hours=Decimal(2), user_id=member, description=mark
    )
    side.keep("claim", claim.id, claim)
    hours = vol.record_hours(member, "3", served_on=dt.date.today(), note=mark)
    side.keep("hours_entry", hours.id, hours)
    certificate = vol.issue_certificate(member)
    side.keep("certificate", certificate.id, certificate)
    side.keep("certificate_token", certificate.token)
    side.keep("certificate_number", certificate.number)
    vol.set_certificate_image("logo", LOGO)
    task = vol.create_task(title=f"task {mark}", quantity=10)
    side.keep("task", task.id, task)
    worker = side.refs["worker"]
    offered = vol.assign(task.id, member, 2)
    side.keep("assignment", offered.id, offered)
    accepted = vol.assign(task.id, volunteer2, 2)
    side.keep("assignment_accepted", accepted.id, accepted)
    submitted = vol.assign(task.id, worker, 2)
    side.keep("assignment_submitted", submitted.id, submitted)
    with tx.elevated():
        vol.accept_assignment(accepted.id)
        vol.accept_assignment(submitted.id)
        vol.submit_assignment(submitted.id, note=mark)


def _rewards_stock(tx: Context, side: Side) -> None:
    link = tx.rewards_stock.link(
        reward_id=side.refs["reward"],
        item=side.refs["item"],
        location=side.refs["location"],
        fulfil="by_staff",
    )
    side.keep("link", link.id, link)


def _webhooks(tx: Context, side: Side) -> None:
    endpoint = tx.webhooks.add_endpoint(
        url=f"https://hooks.example.org/{side.mark}",
        events=["points_awarded"],
        description=side.mark,
    )
    side.keep("endpoint", endpoint.id, endpoint)
