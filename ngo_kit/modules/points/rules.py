"""Earning rules: the rule types plugins register, the organisation's rules, their formulas
and caps, firing them for an event, and the daily check-in."""

from __future__ import annotations

import ast
import datetime as dt
import operator
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, KeyReused, NotFound, SelfActionRefused, ValidationFailed
from ngo_kit.modules.points.models import PointsRule, PointsTxn
from ngo_kit.modules.points.posting import Posting
from ngo_kit.modules.points.schemas import MAX_POINTS, RuleIn, RuleRead, TransactionRead
from ngo_kit.operations import operation
from ngo_kit.plugins import Registrar, collect
from ngo_kit.schemas import coerce

if TYPE_CHECKING:
    from ngo_kit.kit import Kit


# --- rule types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleType:
    """A kind of earning rule a plugin offers: the event it listens to and the fields it has.

    ``fields`` are the event fields a rule may use as ``per_unit`` or in a ``formula``.
    """

    name: str
    event: str
    description: str = ""
    fields: tuple[str, ...] = ()


BUILTIN_RULE_TYPES = (
    RuleType("welcome_bonus", "user_registered", "points when an account is registered"),
    RuleType("daily_check_in", "check_in", "points for the first check-in of a day"),
    RuleType("manual", "manual", "manual awards with a reason, within the rule's caps"),
)

_rule_types: weakref.WeakKeyDictionary[Kit, dict[str, RuleType]] = weakref.WeakKeyDictionary()


def rule_types(kit: Kit) -> dict[str, RuleType]:
    """The rule types registered through ``ngo_kit_register_points_rules`` (collected once per kit)."""
    found = _rule_types.get(kit)
    if found is None:
        registrar: Registrar[RuleType] = Registrar("points rule type", RuleType, lambda r: r.name)
        collect(kit.pm, "ngo_kit_register_points_rules", registrar)
        found = _rule_types[kit] = {r.name: r for r in registrar.values()}
    return found


# --- formulas -----------------------------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Decimal, Decimal], Decimal]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Decimal]] = {"min": min, "max": max}


def parse_formula(text: str, names: Iterable[str]) -> ast.Expression:
    """Parse an arithmetic formula over ``names`` (+ - * / // %, min, max, numbers).

    Raises ``ValidationFailed`` (rule ``bad_formula``) for anything else.
    """
    allowed = set(names)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValidationFailed("formula", "bad_formula", detail=exc.msg) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in allowed and node.id not in _FUNCTIONS:
            raise ValidationFailed("formula", "bad_formula", detail=f"unknown name {node.id}")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords
        ):
            raise ValidationFailed("formula", "bad_formula", detail="only min() and max() calls")
        ok = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.USub,
            ast.UAdd,
            ast.Constant,
            ast.Name,
            ast.Load,
            ast.Call,
            *_BINARY,
        )
        if not isinstance(node, ok):
            raise ValidationFailed("formula", "bad_formula", detail=type(node).__name__)
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            raise ValidationFailed("formula", "bad_formula", detail="only numbers")
    return tree


def evaluate_formula(tree: ast.Expression, values: dict[str, Decimal]) -> Decimal:
    """Evaluate a parsed formula with exact decimals."""

    def ev(node: ast.AST) -> Decimal:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return Decimal(str(node.value))
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(type(node).__name__)

    return ev(tree)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        return Decimal(int(bool(value)))
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def _whole(value: Decimal) -> int:
    return max(0, min(MAX_POINTS, int(value.to_integral_value(rounding=ROUND_FLOOR))))


class Rules(Posting):
    """Earning rules and the events that fire them."""

    @operation("GET /rule-types")
    def rule_types(self) -> list[RuleType]:
        """The rule types the enabled plugins registered."""
        return list(rule_types(self.tx.kit).values())

    @operation("POST /rules", status=201, permission="points.configure", errors=(AlreadyExists,))
    def add_rule(self, data: RuleIn | dict[str, Any] | None = None, /, **kwargs: Any) -> RuleRead:
        """Configure an earning rule for this organisation (``points.configure``).

        Raises ``ValidationFailed`` for an unknown rule type, a ``per_unit`` field the type
        does not have or a bad formula; ``AlreadyExists`` for a taken name.
        """
        spec = coerce(RuleIn, data, kwargs)
        self.tx.require("points.configure")
        rtype = rule_types(self.tx.kit).get(spec.rule_type)
        if rtype is None:
            raise ValidationFailed("rule_type", "unknown_rule_type", rule_type=spec.rule_type)
        if spec.per_unit is not None and spec.per_unit not in rtype.fields:
            raise ValidationFailed(
                "per_unit", "literal_error", expected=", ".join(rtype.fields) or "(none)"
            )
        if spec.formula is not None:
            parse_formula(spec.formula, rtype.fields)
        rule_id = new_id()
        values = spec.model_dump()
        values.update(id=rule_id, org_id=self.tx.org_id, event=rtype.event, created_at=utcnow())
        with self.tx.translate_integrity(AlreadyExists("Points rule", spec.name)):
            self.conn.execute(sa.insert(PointsRule).values(values))
        self.tx.audit(
            "points.rule_added",
            "points_rule",
            rule_id,
            f"rule {spec.name} added",
            spec.model_dump(mode="json"),
        )
        return RuleRead.model_validate({**values})

    @operation("PUT /rules/{name}/active", permission="points.configure")
    def set_rule_active(self, name: str, active: bool) -> RuleRead:
        """Switch a rule on or off (``points.configure``)."""
        self.tx.require("points.configure")
        rule = self._rule_by_name(name)
        self.conn.execute(
            sa.update(PointsRule).where(PointsRule.id == rule.id).values(active=active)
        )
        self.tx.audit("points.rule_changed", "points_rule", rule.id, f"rule {name} active={active}")
        self.session.expire(rule)
        return RuleRead.model_validate(self._rule_by_name(name))

    @operation("GET /rules")
    def rules(self) -> list[RuleRead]:
        """This organisation's earning rules."""
        rows = self.session.scalars(
            sa.select(PointsRule)
            .where(PointsRule.org_id == self.tx.org_id)
            .order_by(PointsRule.name)
        )
        return [RuleRead.model_validate(r) for r in rows]

    def _rule_by_name(self, name: str) -> PointsRule:
        rule = self.session.scalar(
            sa.select(PointsRule).where(
                PointsRule.org_id == self.tx.org_id, PointsRule.name == name
            )
        )
        if rule is None:
            raise NotFound("Points rule", name)
        return rule

    @staticmethod
    def _rule_live(rule: PointsRule, now: dt.datetime) -> bool:
        return bool(
            rule.active
            and (rule.starts_at is None or rule.starts_at <= now)
            and (rule.ends_at is None or now < rule.ends_at)
        )

    @operation(
        "POST /members/{member_id}/apply-rules",
        permission="points.award",
        errors=(KeyReused, SelfActionRefused),
    )
    def apply_rules(
        self,
        event: str,
        member_id: uuid.UUID,
        fields: dict[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> list[TransactionRead]:
        """Fire the organisation's active rules for ``event`` for ``member_id``, in this transaction.

        Called by the plugin that owns the event (from its event hook). Each rule's amount is
        its fixed ``points``, ``points`` x the ``per_unit`` field, or its formula over
        ``fields``; caps per day/week/month cut the amount. With ``key``, each rule's award is
        keyed ``<key>:<rule>``, so firing one event twice awards once. Needs ``points.award``:
        a plugin whose own service checked the event calls it inside ``tx.elevated()``.
        Returns the awards made.
        """
        if self.tx.org is None:
            return []
        self.tx.require_for("points.award", member_id)
        return self._fire(event, member_id, fields or {}, key)

    def _fire(
        self, event: str, member_id: uuid.UUID, fields: dict[str, Any], key: str | None
    ) -> list[TransactionRead]:
        now = utcnow()
        rules = self.session.scalars(
            sa.select(PointsRule)
            .where(
                PointsRule.org_id == self.tx.org_id,
                PointsRule.event == event,
                PointsRule.active.is_(True),
            )
            .order_by(PointsRule.name)
        ).all()
        live = [rule for rule in rules if self._rule_live(rule, now)]
        # An event's key is shared (the event is the same whoever reports it), and checked
        # before the caps: a repeated event returns its first awards.
        keyed = {
            rule.name: self._keyed(
                "points.rule_award",
                f"{key}:{rule.name}" if key else None,
                shared=True,
                member_id=member_id,
                rule=rule.name,
            )
            for rule in live
        }
        first = self._existing_many([k for k in keyed.values() if k["key_scope"]]) if key else {}
        made: list[TransactionRead] = []
        for rule in live:
            earlier = first.get(keyed[rule.name]["key_scope"])
            if earlier is not None:
                made.append(earlier)
                continue
            points = self._rule_amount(rule, fields or {})
            left = self._cap_left(rule, member_id)
            if left is not None:
                points = min(points, left)
            if points <= 0:
                continue
            made.append(
                self._earn(
                    member_id,
                    points,
                    reason=rule.reason or rule.name,
                    reference=event,
                    keyed=keyed[rule.name],
                    rule=rule,
                )
            )
        if made:
            self._service._count_badges(member_id, event)
        return made

    def _rule_amount(self, rule: PointsRule, fields: dict[str, Any]) -> int:
        try:
            if rule.formula:
                rtype = rule_types(self.tx.kit).get(rule.rule_type)
                names = rtype.fields if rtype else tuple(fields)
                tree = parse_formula(rule.formula, names)
                values = {n: _decimal(fields.get(n, 0)) for n in names}
                return _whole(evaluate_formula(tree, values))
            if rule.per_unit:
                return _whole(Decimal(rule.points) * _decimal(fields.get(rule.per_unit, 0)))
        except (InvalidOperation, ArithmeticError, TypeError, ValueError):
            return 0
        return int(rule.points)

    def _cap_left(
        self, rule: PointsRule, member_id: uuid.UUID, *, besides: uuid.UUID | None = None
    ) -> int | None:
        """Points the rule may still award the member now (None: no cap), ``besides`` (an
        operation of this call, claimed already) left out."""
        caps = [
            (rule.cap_day, "day"),
            (rule.cap_week, "week"),
            (rule.cap_month, "month"),
        ]
        left: int | None = None
        for cap, period in caps:
            if cap is None:
                continue
            since = self._period_start(period)
            used = self.conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(PointsTxn.points), 0)).where(
                    PointsTxn.org_id == self.tx.org_id,
                    PointsTxn.rule_id == rule.id,
                    PointsTxn.member_id == member_id,
                    PointsTxn.created_at >= since,
                    *([PointsTxn.id != besides] if besides is not None else []),
                )
            )
            room = max(0, int(cap) - int(used or 0))
            left = room if left is None else min(left, room)
        return left

    def _period_start(self, period: str, now: dt.datetime | None = None) -> dt.datetime:
        local = (now or utcnow()).astimezone(self._zone())
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if period == "week":
            day -= dt.timedelta(days=day.weekday())
        elif period == "month":
            day = day.replace(day=1)
        return day.astimezone(dt.UTC)

    @operation(
        "POST /members/{member_id}/check-ins", status=201, permission="points.award", own=True
    )
    def check_in(self, member_id: uuid.UUID) -> list[TransactionRead]:
        """A member's daily check-in: fires ``check_in`` rules once per local day.

        The actor must be the member or hold ``points.award``. Returns the day's awards; a
        second check-in the same day returns them again and writes nothing.
        """
        if self.tx.actor_id != member_id:
            self.tx.require("points.award")
        today = utcnow().astimezone(self._zone()).date().isoformat()
        return self._fire("check_in", member_id, {}, f"check_in:{member_id}:{today}")
