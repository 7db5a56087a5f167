"""The machinery of the generated matrices: which methods exist, how to call them, what changed.

* ``discover(kit)``: every public method of every service the kit exposes on a ``tx`` (core's
  ``tenancy``, ``api_keys``, ``events`` and each enabled module's), found by introspection;
* ``build(method)``: the call's arguments, as a tree whose leaves naming objects are ``Ref``\\ s
  to world keys (``proof_resolvers.RESOLVERS``) and whose other leaves are plain values
  (``proof_resolvers.VALUES``); what cannot be built is listed in ``Plan.problems``;
* ``Plan.arguments(sides)``: the concrete arguments, each ``Ref`` taken from the side given;
* ``snapshot(connection, tables)``: a digest of every table's rows, per organisation;
* ``run(...)``: one call in its own unit of work, with what it returned or raised and the
  snapshot inside the transaction before it ends.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import re
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pydantic
import sqlalchemy as sa
from proof_resolvers import OMIT, RESOLVERS, VALUES
from proof_world import NO_PERMISSIONS, Side

from ngo_kit import Kit
from ngo_kit.context import CORE_SERVICES, Context, translate_database_errors
from ngo_kit.errors import NgoKitError, NotFound, PermissionDenied, TokenInvalid, ValidationFailed
from ngo_kit.plugins import Permission, Registrar, collect
from ngo_kit.testing import settings_for_tests

#: Parameter names that always name an object (besides ``*_id``/``*_ids`` and UUID-typed ones).
REFERENCE_NAMES = frozenset(
    {
        "item", "location", "lot", "from_", "to", "parent", "category", "donation",
        "move_or_group", "token", "purpose", "skill", "rule", "member", "ref", "awards",
        "from_member", "to_member", "need",
    }
)  # fmt: skip
_ID_NAME = re.compile(r"(^|_)ids?$")


def installed_plugins() -> list[object]:
    """The plugins other installed distributions offer (the first-party ones of ``plugins/``
    in a checkout); ngo-kit's own load by themselves."""
    found: list[object] = []
    for ep in importlib.metadata.entry_points(group="ngo_kit"):
        dist = ep.dist.name if ep.dist is not None else ""
        if dist.replace("_", "-").lower() != "ngo-kit":
            found.append(ep.load())
    return found


@dataclass(frozen=True)
class Method:
    """One public method of one service (``tx.<service>.<name>``)."""

    service: str
    name: str
    function: Callable[..., Any] = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        """``service.name``, the matrices' test id."""
        return f"{self.service}.{self.name}"


def discover(kit: Kit) -> list[Method]:
    """Every public method of core's services (``tenancy``, ``api_keys``, ``events``) and of
    each enabled module's service."""
    services: dict[str, Any] = dict(CORE_SERVICES)
    for name, module in kit.modules.items():
        if module.service is not None:
            services[name] = module.service
    found = []
    for service, cls in sorted(services.items()):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                found.append(Method(service, name, member))
    return found


# --- arguments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """An argument naming an object of the world (world key ``key``), at ``path``.

    A ``fixed`` reference always comes from the acting organisation's world.
    """

    key: str
    path: str
    fixed: bool = False


@dataclass
class Plan:
    """How to call a method: positional and keyword argument trees, and what is missing."""

    method: Method
    positional: list[Any] = field(default_factory=list)
    keywords: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def refs(self) -> list[Ref]:
        """Every reference that may name another organisation's object, in order."""
        return [r for r in _refs([self.positional, self.keywords]) if not r.fixed]

    def resolvers(self) -> str:
        """Each argument naming an object and its world key, for a failure message."""
        found = [
            f"{r.path} -> {'=' if r.fixed else ''}{r.key}"
            for r in _refs([self.positional, self.keywords])
        ]
        return ", ".join(found) or "no argument names an object"

    def arguments(
        self, side: Side, foreign: Side | None = None, at: str | None = None
    ) -> tuple[list[Any], dict[str, Any]]:
        """The arguments with every reference taken from ``side`` (the one at ``at`` from ``foreign``)."""

        def pick(ref: Ref) -> Any:
            source = foreign if foreign is not None and ref.path == at else side
            assert source is not None
            assert ref.key in source.refs, (
                f"{self.method.id}: world key {ref.key!r} (for {ref.path!r}) is not seeded: "
                "keep one in each organisation in tests/proof/proof_world.py seed()"
            )
            return source.refs[ref.key]

        return _fill(self.positional, pick), _fill(self.keywords, pick)


def _refs(tree: Any) -> Iterator[Ref]:
    if isinstance(tree, Ref):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from _refs(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _refs(value)


def _fill(tree: Any, pick: Callable[[Ref], Any]) -> Any:
    if isinstance(tree, Ref):
        return pick(tree)
    if isinstance(tree, dict):
        return {k: _fill(v, pick) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_fill(v, pick) for v in tree]
    return tree


_MISSING = object()


def _is_reference(name: str, annotation: str) -> bool:
    return "UUID" in annotation or bool(_ID_NAME.search(name)) or name in REFERENCE_NAMES


def _models(annotation: Any, function: Callable[..., Any]) -> list[type[pydantic.BaseModel]]:
    """The pydantic models an annotation (a string under PEP 563, or a type) names."""
    if isinstance(annotation, str):
        names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", annotation)
        scope = getattr(function, "__globals__", {})
        candidates = [scope.get(n) for n in names]
    else:
        candidates = [annotation, *typing.get_args(annotation)]
        for arg in list(candidates):
            candidates.extend(typing.get_args(arg))
    return [c for c in candidates if isinstance(c, type) and issubclass(c, pydantic.BaseModel)]


def _text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else repr(annotation)


def build(method: Method) -> Plan:
    """The arguments of a call of ``method`` (``Plan.problems`` says what the tables lack)."""
    plan = Plan(method)
    signature = inspect.signature(method.function)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    for p in params:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        required = p.default is inspect.Parameter.empty
        models = _models(p.annotation, method.function)
        if models and takes_kwargs and not required and p.kind is p.POSITIONAL_ONLY:
            # ``f(data: XIn | dict | None = None, /, **kwargs)``: the model's fields as keywords
            for name, info in models[0].model_fields.items():
                value = _field(plan, name, info.annotation, info.is_required(), name)
                if value is not _MISSING:
                    plan.keywords[name] = value
            continue
        value = _field(plan, p.name, p.annotation, required, p.name)
        if value is _MISSING:
            if required and p.kind is p.POSITIONAL_ONLY:
                plan.positional.append(None)
            continue
        if p.kind is p.POSITIONAL_ONLY:
            plan.positional.append(value)
        else:
            plan.keywords[p.name] = value
    return plan


def _field(plan: Plan, name: str, annotation: Any, required: bool, path: str) -> Any:
    """One argument or model field: a ``Ref``, a plain value, a nested model, or ``_MISSING``.

    The most specific entry of either table wins. A parameter that names an object takes a
    plain value only from an entry of its service or method (it names nothing that exists
    yet, or it is a free-text label), and needs a resolver otherwise; optional plain
    parameters are left out unless an entry of their service or method names them.
    """
    method = plan.method
    reference = _is_reference(name, _text(annotation))
    scopes = (f"{method.id}.{name}", f"{method.service}.{name}", name)
    for generic, scope in enumerate(scopes, start=-2):
        if scope in RESOLVERS:
            key = RESOLVERS[scope]
            return Ref(key.lstrip("="), path, fixed=key.startswith("="))
        if scope in VALUES:
            if generic == 0 and (reference or not required):
                break
            value = VALUES[scope]
            return _MISSING if value is OMIT else value
    if reference:
        plan.problems.append(
            f"{method.id}: parameter {path!r} names an object, but the matrices have no "
            f"resolver for it: add '{method.service}.{name}' (or '{method.id}.{name}') to "
            "RESOLVERS in tests/proof/proof_resolvers.py, mapping it to a world key"
        )
        return _MISSING
    if not required:
        return _MISSING
    models = _models(annotation, method.function)
    if models:
        nested = {}
        for field_name, info in models[0].model_fields.items():
            inner = f"{path}.{field_name}"
            found = _field(plan, field_name, info.annotation, info.is_required(), inner)
            if found is not _MISSING:
                nested[field_name] = found
        return [nested] if _is_list(annotation) else nested
    plan.problems.append(
        f"{method.id}: required parameter {path!r} has no value: add '{method.id}.{name}' "
        f"(or '{name}') to VALUES in tests/proof/proof_resolvers.py"
    )
    return _MISSING


def _is_list(annotation: Any) -> bool:
    text = _text(annotation)
    return text.startswith(("list[", "Iterable[", "typing.List", "collections.abc.Iterable"))


# --- snapshots ---------------------------------------------------------------------------

Snapshot = dict[tuple[str, str], str]


def tables(kit: Kit) -> list[sa.Table]:
    """Every table of core and the enabled modules."""
    return list(kit.metadata().sorted_tables)


def snapshot(connection: sa.Connection, all_tables: list[sa.Table]) -> Snapshot:
    """A digest of every table's rows, one per (table, organisation); ``""`` for rows of none.

    One statement reads every row of every table as text (a UNION ALL of each table's rows,
    columns cast to text and joined), so a snapshot costs one round trip.
    """
    digests: dict[tuple[str, str], Any] = {}
    everything = _everything(all_tables, connection.dialect.name)
    for name, bucket, text in connection.execute(everything):
        digests.setdefault((name, bucket or ""), []).append(text or "")
    return {
        key: hashlib.sha1("\x1e".join(sorted(texts)).encode()).hexdigest()
        for key, texts in digests.items()
    }


def _as_text(column: sa.Column[Any], dialect: str) -> Any:
    """A column as text; bytes (an uploaded image) as hex, which every database can compare."""
    if isinstance(column.type, sa.LargeBinary):
        return sa.func.encode(column, "hex") if dialect == "postgresql" else sa.func.hex(column)
    return sa.cast(column, sa.Text)


@functools.cache
def _everything_cached(tables_key: tuple[sa.Table, ...], dialect: str) -> sa.CompoundSelect[Any]:
    parts = []
    null = sa.literal_column("'<null>'", sa.Text)
    bar = sa.literal_column("'|'", sa.Text)
    for table in tables_key:
        text: Any = sa.literal_column("''", sa.Text)
        for column in table.columns:
            text = text + bar + sa.func.coalesce(_as_text(column, dialect), null)
        org = table.c.get("org_id")
        bucket = sa.cast(org, sa.Text) if org is not None else sa.literal_column("''", sa.Text)
        name = sa.literal_column(f"'{table.name}'", sa.Text)
        parts.append(sa.select(name, bucket, text).select_from(table))
    return sa.union_all(*parts)


def _everything(all_tables: list[sa.Table], dialect: str) -> sa.CompoundSelect[Any]:
    return _everything_cached(tuple(all_tables), dialect)


def ids_by_organisation(
    connection: sa.Connection, all_tables: list[sa.Table]
) -> dict[str, set[str]]:
    """Every id held in each organisation's rows (any UUID column of a row with ``org_id``)."""
    found: dict[str, set[str]] = {}
    for table in all_tables:
        org = table.c.get("org_id")
        ids = [c for c in table.columns if isinstance(c.type, sa.Uuid) and c is not org]
        if org is None or not ids:
            continue
        for row in connection.execute(sa.select(org, *ids)):
            found.setdefault(str(row[0]), set()).update(str(v) for v in row[1:] if v is not None)
    return found


def changed(before: Snapshot, after: Snapshot, org: uuid.UUID | None = None) -> list[str]:
    """The tables whose rows differ (only those of organisation ``org`` when given)."""
    keys = set(before) | set(after)
    if org is not None:
        keys = {k for k in keys if k[1] == str(org)}
    return sorted({k[0] for k in keys if before.get(k) != after.get(k)})


# --- calls -------------------------------------------------------------------------------


class Rollback(Exception):
    """Raised to end a unit of work without committing it."""


@dataclass
class Outcome:
    """What one call did: its result or error, and the rows as the transaction saw them."""

    result: Any = None
    error: BaseException | None = None
    inside: Snapshot | None = None

    @property
    def refused(self) -> bool:
        """Refused with ``NotFound`` or ``PermissionDenied``."""
        return isinstance(self.error, NotFound | PermissionDenied)

    def describe(self) -> str:
        """One line for a failure message."""
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return f"returned {_short(self.result)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


def invoke(tx: Context, plan: Plan, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call the planned method on ``tx``'s service."""
    service = tx.service(plan.method.service)
    return getattr(service, plan.method.name)(*args, **kwargs)


def run(
    kit: Kit,
    side: Side,
    actor: Any,
    plan: Plan,
    args: list[Any],
    kwargs: dict[str, Any],
    all_tables: list[sa.Table],
) -> Outcome:
    """Call in ``side``'s organisation as ``actor``, then roll the unit of work back.

    A call that raised was rolled back by the kit as any failed call is (its ``on_rollback``
    work included). One that returned has its writes flushed (ORM changes, audit entries)
    and the rows read inside the transaction, before it is rolled back.
    """
    outcome = Outcome()
    try:
        with kit.begin(org=side.org, actor=actor) as tx:
            try:
                outcome.result = invoke(tx, plan, args, kwargs)
            except NgoKitError as exc:
                outcome.error = exc
                raise
            tx.finish()
            outcome.inside = snapshot(tx.connection, all_tables)
            # The call succeeded: what it asked to run after a failure (counting a failed
            # sign-in, say) does not apply to this rollback of ours.
            tx._after_rollback.clear()
            raise Rollback
    except Rollback:
        pass
    except NgoKitError as exc:
        outcome.error = outcome.error or exc
    return outcome


def is_token_error(error: BaseException | None) -> bool:
    """A token refused as not valid here (tampered, wrong purpose, another organisation's)."""
    return isinstance(error, TokenInvalid)


def is_unknown_reference(error: BaseException | None) -> bool:
    """A ``ValidationFailed`` saying the value names nothing known here: an ``unknown_*`` rule,
    or a form refusing a field it does not have (``extra_forbidden``)."""
    return isinstance(error, ValidationFailed) and (
        error.rule.startswith("unknown") or error.rule == "extra_forbidden"
    )


# --- the session's proof: a kit, two seeded organisations, cached controls ----------------


@dataclass
class Control:
    """A method called with organisation a's own objects, by ``actor`` (a world key).

    ``outcome`` is what it did; ``mutating`` says whether it wrote (seen inside its
    transaction). ``actor`` is a's admin (every permission), else the member the call is
    about (self-service), else a person who is no member yet; ``None`` when it refuses all.
    """

    actor: str | None
    outcome: Outcome
    mutating: bool


@dataclass
class Requirements:
    """What an actor without permissions meets calling a method with A's own objects.

    ``refusal`` is the first call's ``PermissionDenied`` (``None``: not refused); then each
    permission named is granted to the actor's role, inside the same rolled-back transaction,
    and the call tried again, so ``permissions`` lists every permission the call checks on
    its way, in order. ``outcome`` is what the last try did.
    """

    refusal: PermissionDenied | None
    permissions: list[str]
    outcome: Outcome


@dataclass
class Proof:
    """The matrices' world: one kit, organisation ``a`` (where calls run) and ``b``."""

    kit: Kit
    a: Side
    b: Side
    all_tables: list[sa.Table]
    baseline: Snapshot
    plans: dict[str, Plan]
    controls: dict[str, Control] = field(default_factory=dict)
    requirements: dict[str, Requirements] = field(default_factory=dict)
    commits: int = 0
    _seen_commits: int = 0

    def __post_init__(self) -> None:
        sa.event.listen(self.kit.engine, "commit", self._committed)

    def _committed(self, connection: sa.Connection) -> None:
        self.commits += 1

    def snapshot(self) -> Snapshot:
        """The committed rows now."""
        with self.kit.engine.connect() as connection:
            return snapshot(connection, self.all_tables)

    def escaped(self) -> list[str]:
        """Tables changed since the baseline by something outside the rolled-back calls.

        Rows change only when a transaction commits: while no connection of the kit's engine
        committed since the last look, nothing can differ. Otherwise every table is compared
        with the baseline, which then moves on, so one failure does not spill into the next
        test.
        """
        if self.commits == self._seen_commits:
            return []
        self._seen_commits = self.commits
        now = self.snapshot()
        different = changed(self.baseline, now)
        self.baseline = now
        return different

    def call(self, plan: Plan, actor: str, foreign: Ref | None = None) -> Outcome:
        """Call ``plan`` in organisation a as a's ``actor``; ``foreign`` taken from b."""
        args, kwargs = plan.arguments(
            self.a, self.b if foreign is not None else None, foreign.path if foreign else None
        )
        return run(self.kit, self.a, self.a.refs[actor], plan, args, kwargs, self.all_tables)

    def control(self, plan: Plan) -> Control:
        """The call with a's own objects, by the first of a's admin, the member it is about and
        a person who is no member yet (``joiner``) for whom it succeeds (else the first it
        does not refuse; ``actor`` is ``None`` when it refuses all of them)."""
        found = self.controls.get(plan.method.id)
        if found is not None:
            return found
        chosen: tuple[str | None, Outcome] | None = None
        fallback: tuple[str | None, Outcome] | None = None
        first: Outcome | None = None
        for name in CONTROL_ACTORS:
            tried = self.call(plan, name)
            first = first or tried
            if tried.error is None:
                chosen = (name, tried)
                break
            if fallback is None and not tried.refused:
                fallback = (name, tried)
        assert first is not None
        # refused to all: a's admin's refusal says why (the others lack the admin's rights)
        actor, outcome = chosen or fallback or (None, first)
        inside = outcome.inside
        mutating = inside is not None and bool(changed(self.baseline, inside))
        found = Control(actor, outcome, mutating)
        self.controls[plan.method.id] = found
        return found

    def without_permissions(self, plan: Plan) -> Requirements:
        """Call ``plan`` with a's objects as a's member whose role holds no permission,
        granting the role each permission the call is refused for, and trying again."""
        found = self.requirements.get(plan.method.id)
        if found is not None:
            return found
        args, kwargs = plan.arguments(self.a)
        kit = self.kit
        permissions: list[str] = []
        refusal: PermissionDenied | None = None
        outcome = Outcome()
        try:
            with kit.begin(org=self.a.org, actor=self.a.refs["nobody"]) as tx:
                for _ in range(8):
                    outcome = Outcome()
                    try:
                        with tx.savepoint():
                            outcome.result = invoke(tx, plan, args, kwargs)
                    except NgoKitError as exc:
                        outcome.error = exc
                    except sa.exc.DBAPIError as exc:  # the kit would translate it on the way out
                        outcome.error = translate_database_errors(exc)
                    if not isinstance(outcome.error, PermissionDenied):
                        break
                    refusal = refusal or outcome.error
                    permissions.append(outcome.error.permission)
                    if outcome.error.permission not in kit.permissions:
                        break  # no role can be granted it: only the person or the system may
                    with tx.elevated():
                        tx.tenancy.grant(NO_PERMISSIONS, outcome.error.permission)
                tx._after_rollback.clear()  # as in ``run``: this rollback is ours
                raise Rollback
        except Rollback:
            pass
        found = Requirements(refusal, permissions, outcome)
        self.requirements[plan.method.id] = found
        return found


#: Who the controls are tried as, in order (world keys).
CONTROL_ACTORS = ("admin", "member", "joiner")


@functools.cache
def collected_plans() -> dict[str, Plan]:
    """The plans of every method, for parametrising (a kit is made, never connected)."""
    kit = Kit(
        settings=settings_for_tests("sqlite:///:memory:"),
        plugins=installed_plugins(),
        autoload=False,
    )
    try:
        return {m.id: build(m) for m in discover(kit)}
    finally:
        kit.dispose()


def nothing_here(plan: Plan, outcome: Outcome) -> bool:
    """The call answered "nothing here": an empty collection, a zero count, or ``None`` from
    a method whose answer may be ``None``."""
    if outcome.error is not None:
        return False
    result = outcome.result
    if isinstance(result, list | dict | tuple | set | frozenset):
        return not result
    if isinstance(result, int) and not isinstance(result, bool):
        return result == 0
    if result is None:
        returns = str(inspect.signature(plan.method.function).return_annotation)
        return "None" in returns and returns.strip() != "None"
    return False


def declared_by(kit: Kit) -> dict[str, set[str]]:
    """For each declared permission, the modules (or ``core``) whose plugin declares it."""
    registrar: Registrar[Permission] = Registrar("permission", Permission, lambda p: p.name)
    for name, module in kit.modules.items():
        registrar.current_plugin = name
        for permission in module.permissions:
            registrar(permission)
    collect(kit.pm, "ngo_kit_register_permissions", registrar)
    modules_of: dict[str, set[str]] = {}
    for name, registered in kit.available_modules.items():
        modules_of.setdefault(registered.plugin, set()).add(name)
    return {
        r.item.name: ({r.plugin} & ({"core"} | set(kit.modules))) | modules_of.get(r.plugin, set())
        for r in registrar
    }


def reachable(kit: Kit, service: str) -> set[str]:
    """``service``'s module, the modules it requires (all the way down) and ``core``."""
    seen = {"core", service}
    todo = [service]
    while todo:
        module = kit.modules.get(todo.pop())
        for name in module.requires if module is not None else ():
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen
