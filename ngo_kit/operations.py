"""Operations: each public operation of a service, declared once, next to its code.

A module's service method becomes an operation with the :func:`operation` decorator::

    @operation("POST /awards", permission="points.award", errors=(LimitReached,))
    def award(self, data: AwardIn | dict[str, Any] | None = None, /, **kwargs: Any) -> ...:

The declaration states what the method already is — its name, the permission it needs, whether
it changes data, how it is reached over HTTP, whether it is useful from a shell — so that the
HTTP route, its OpenAPI entry, the CLI command, the permission matrix and the reference docs
are derived from it instead of written again by hand. The Python call is the method itself:
``tx.points.award(...)`` is unchanged. The decorator only records; it never wraps the method.

``http`` is ``"METHOD /path"`` relative to the module's mount (``/api/orgs/{org}/<module>``
for organisation-scoped modules); ``{name}`` in the path is the method's parameter of that
name. An operation not reached over HTTP says why in ``not_http`` (``"SYSTEM only"``...). One
served by a hand-written route (a file download, an image) sets ``custom=True``: the route
must exist at that method and path, and is documented with the operation.

Permissions stay checked by the service (``tx.require``): the declaration names the
permission so that docs, OpenAPI and the generated permission tests can say and prove it.
``own=True`` means a member may do it for themselves without the permission (their own
statement); ``public=True`` that no sign-in is needed (sign-in itself, a public trace).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, Field

from ngo_kit import errors
from ngo_kit.errors import ConfigurationError, NgoKitError

if typing.TYPE_CHECKING:
    from ngo_kit.plugins import Module

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
HTTP_METHODS: tuple[HttpMethod, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")

#: The attribute the decorator sets on the method it declares.
ATTRIBUTE = "__ngo_kit_operation__"

_HTTP = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_{}./-]*)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Operation:
    """One declared operation. ``module`` and ``method`` are filled in when it is collected."""

    name: str
    permission: str | None = None
    own: bool = False
    public: bool = False
    method: HttpMethod | None = None
    path: str | None = None
    status: int | None = None
    not_http: str | None = None
    custom: bool = False
    changes: bool = False
    errors: tuple[type[NgoKitError], ...] = ()
    cli: str | None = None
    module: str = ""
    attribute: str = ""
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        """``<module>.<name>`` (``points.award``)."""
        return f"{self.module}.{self.name}" if self.module else self.name

    @property
    def over_http(self) -> bool:
        """True when the operation has an HTTP route (generated or hand-written)."""
        return self.method is not None

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """The ``{name}`` parameters of the HTTP path, in order."""
        return tuple(re.findall(r"{([A-Za-z_][A-Za-z0-9_]*)}", self.path or ""))


def operation(
    http: str | None = None,
    *,
    permission: str | None = None,
    own: bool = False,
    public: bool = False,
    not_http: str | None = None,
    custom: bool = False,
    status: int | None = None,
    changes: bool | None = None,
    errors: tuple[type[NgoKitError], ...] = (),
    cli: str | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Declare the decorated service method as an operation (see the module docstring).

    ``status`` defaults to 200 (204 when the method returns ``None``); ``changes`` defaults to
    True for every HTTP method but GET, and must be given for an operation not over HTTP.
    ``errors`` lists the error classes the operation raises beyond the ones every operation
    may raise (``ValidationFailed``, ``NotFound``, ``PermissionDenied``). ``cli`` names the
    command under ``ngo-kit <module>`` when the operation is useful from a shell.
    """
    method: HttpMethod | None = None
    path: str | None = None
    if http is not None:
        match = _HTTP.match(http)
        if match is None:
            raise ConfigurationError(
                "core.E050",
                "operation http '{http}' must be 'METHOD /path' (GET, POST, PUT, PATCH, DELETE)",
                http=http,
            )
        method = match.group(1)  # type: ignore[assignment]
        path = match.group(2)
        if not_http is not None:
            raise ConfigurationError(
                "core.E050", "operation '{http}' cannot also give not_http", http=http
            )
    elif not not_http:
        raise ConfigurationError(
            "core.E050", "an operation without http must say why in not_http", http=""
        )
    if custom and method is None:
        raise ConfigurationError("core.E050", "custom=True needs an http route", http="")
    if changes is None:
        if method is None:
            raise ConfigurationError(
                "core.E050", "an operation not over HTTP must say whether it changes data", http=""
            )
        changes = method != "GET"

    def declare(function: F) -> F:
        op_name = name or function.__name__
        if not _NAME.match(op_name):
            raise ConfigurationError(
                "core.E050", "operation name '{http}' must be snake_case", http=op_name
            )
        spec = Operation(
            name=op_name,
            permission=permission,
            own=own,
            public=public,
            method=method,
            path=path,
            status=status,
            not_http=not_http,
            custom=custom,
            changes=bool(changes),
            errors=tuple(errors),
            cli=cli,
            attribute=function.__name__,
        )
        setattr(function, ATTRIBUTE, spec)
        return function

    return declare


def declared(function: Callable[..., Any]) -> Operation | None:
    """The operation declared on ``function``, if any."""
    spec = getattr(function, ATTRIBUTE, None)
    return spec if isinstance(spec, Operation) else None


def operations_of(service: type[Any], module: str) -> list[Operation]:
    """Every operation declared on ``service`` (and the classes it is composed of), by name.

    Raises ``ConfigurationError`` (``core.E051``) when two operations share a name or an HTTP
    method and path.
    """
    found: dict[str, Operation] = {}
    routes: dict[tuple[str, str], str] = {}
    for attribute, function in _methods(service):
        spec = declared(function)
        if spec is None:
            continue
        spec = replace(spec, module=module, attribute=attribute, function=function)
        if spec.name in found:
            raise ConfigurationError(
                "core.E051",
                "operation '{name}' is declared twice in module '{module}'",
                name=spec.name,
                module=module,
            )
        if spec.method is not None and spec.path is not None:
            route = (spec.method, spec.path)
            if route in routes:
                raise ConfigurationError(
                    "core.E051",
                    "operations '{name}' and '{other}' share the route {method} {path}",
                    name=spec.name,
                    other=routes[route],
                    method=spec.method,
                    path=spec.path,
                )
            routes[route] = spec.name
        found[spec.name] = spec
    return sorted(found.values(), key=lambda op: op.name)


def operations_of_module(module: Module) -> list[Operation]:
    """The operations ``module``'s service declares (none when its service is not a class)."""
    if not isinstance(module.service, type):
        return []
    return operations_of(module.service, module.name)


def public_methods(service: type[Any]) -> list[str]:
    """The names of ``service``'s public methods (no leading underscore), declared or not."""
    return sorted(attribute for attribute, _ in _methods(service) if not attribute.startswith("_"))


def _methods(service: type[Any]) -> Iterator[tuple[str, Callable[..., Any]]]:
    seen: set[str] = set()
    for klass in service.__mro__:
        if klass is object:
            continue
        for attribute, value in vars(klass).items():
            if attribute in seen:
                continue
            seen.add(attribute)
            function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
            if callable(function) and not isinstance(value, type):
                yield attribute, function


# --- what an operation takes and returns ------------------------------------------------------

#: The errors every operation may raise, declared or not.
COMMON_ERRORS: tuple[type[NgoKitError], ...] = (
    errors.ValidationFailed,
    errors.NotFound,
    errors.PermissionDenied,
)

#: Marks a parameter without a default (a required one).
REQUIRED: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation's method, its annotation resolved to a real type."""

    name: str
    annotation: Any
    default: Any = REQUIRED
    positional_only: bool = False

    @property
    def required(self) -> bool:
        """True when the caller must give it (no default)."""
        return self.default is REQUIRED


def parameters_of(op: Operation) -> list[Parameter]:
    """The parameters of ``op``'s method, without ``self``, ``*args`` and ``**kwargs``.

    Annotations are resolved one by one in the method's module (a name imported only for type
    checking resolves to ``Any``), so that a route, a command and a reference page can be built
    from them.
    """
    function = _function(op)
    hints = _hints(function)
    found: list[Parameter] = []
    for index, param in enumerate(inspect.signature(function).parameters.values()):
        if index == 0 and param.name in ("self", "cls"):
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        found.append(
            Parameter(
                name=param.name,
                annotation=hints.get(param.name, _resolve(function, param.annotation)),
                default=param.default,
                positional_only=param.kind is inspect.Parameter.POSITIONAL_ONLY,
            )
        )
    return found


def result_of(op: Operation) -> Any:
    """The resolved return annotation of ``op``'s method (``None`` for a method returning
    nothing, ``Any`` when it is not annotated)."""
    function = _function(op)
    annotation = inspect.signature(function).return_annotation
    if annotation is inspect.Signature.empty:
        return Any
    resolved = _hints(function).get("return", _resolve(function, annotation))
    return None if resolved is type(None) else resolved


def input_model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model ``annotation`` accepts (``XIn | dict[str, Any] | None`` gives ``XIn``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for member in typing.get_args(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                return member
    return None


def takes_key(op: Operation) -> bool:
    """True when ``op`` takes an idempotency ``key`` (a parameter, or a field of its input)."""
    for param in parameters_of(op):
        model = input_model_in(param.annotation)
        if param.name == "key" or (model is not None and "key" in model.model_fields):
            return True
    return False


def errors_of(op: Operation) -> tuple[type[NgoKitError], ...]:
    """Every error class ``op`` may raise: its declared ones, :data:`COMMON_ERRORS`, and
    ``KeyReused`` when it takes an idempotency key."""
    found = [*op.errors, *COMMON_ERRORS]
    if takes_key(op):
        found.append(errors.KeyReused)
    return tuple(dict.fromkeys(found))


def summary_of(op: Operation) -> tuple[str, str]:
    """``op``'s docstring as ``(first paragraph, the rest)``."""
    doc = inspect.getdoc(_function(op)) or ""
    first, _, rest = doc.partition("\n\n")
    return " ".join(first.split()), rest.strip()


def call_arguments(op: Operation, values: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """``values`` by parameter name as ``(args, kwargs)`` for ``op``'s method: positional-only
    parameters positionally, in order; the others by keyword."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in parameters_of(op):
        if param.name not in values:
            if param.positional_only and param.required:
                raise TypeError(f"{op.qualified_name} needs {param.name}")
            if param.positional_only:
                args.append(param.default)
            continue
        if param.positional_only:
            args.append(values[param.name])
        else:
            kwargs[param.name] = values[param.name]
    return args, kwargs


def _function(op: Operation) -> Callable[..., Any]:
    if op.function is None:
        raise ConfigurationError(
            "core.E050", "operation '{http}' was not collected with operations_of", http=op.name
        )
    return op.function


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints`` of ``function``; empty when one of them cannot be resolved
    (each annotation is then resolved on its own by :func:`_resolve`)."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        return {}


def _resolve(function: Callable[..., Any], annotation: Any) -> Any:
    """``annotation`` evaluated in ``function``'s module; ``Any`` when it names a type that only
    exists for type checkers."""
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    namespace = dict(getattr(function, "__globals__", {}))
    try:
        return eval(annotation, namespace)
    except Exception:
        return Any


# --- listings: keyset pages ---------------------------------------------------------------------

#: The most rows one page of a listing may ask for (``limit``).
MAX_LIMIT = 500
#: A page size: a whole number from 1 to :data:`MAX_LIMIT`.
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]

errors.register_rule_messages(
    {"cursor_invalid": "is not a cursor this listing gave out; start again without it"}
)


class Page(BaseModel, Generic[T]):
    """One page of a listing: its ``items`` and, when more follow, the ``next`` cursor.

    A listing operation takes ``limit`` (at most :data:`MAX_LIMIT`) and ``after`` (the ``next``
    of the page before, or ``None`` for the first page) and orders by a unique key (keyset
    paging: a page costs the same however deep it is, and rows added meanwhile are neither
    skipped nor repeated).
    """

    items: list[T]
    next: str | None = None


def encode_cursor(*key: Any) -> str:
    """An opaque cursor for the keyset ``key`` of the last row of a page (JSON-ready values).

    Opaque, not secret: clients pass it back unchanged; a changed one is refused by
    :func:`decode_cursor`.
    """
    body = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    token = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return f"{token}.{_cursor_digest(body)}"


def decode_cursor(cursor: str | None, field: str = "after") -> list[Any] | None:
    """The keyset values in ``cursor`` (``None`` for none); ``ValidationFailed`` naming
    ``field`` (rule ``cursor_invalid``) for a cursor that was altered or never given out."""
    if cursor is None:
        return None
    token, _, digest = cursor.partition(".")
    try:
        body = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(body)
    except ValueError:
        raise errors.ValidationFailed(field, "cursor_invalid") from None
    if digest != _cursor_digest(body) or not isinstance(values, list):
        raise errors.ValidationFailed(field, "cursor_invalid")
    return values


def _cursor_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=8, person=b"ngo-kit-cursor").hexdigest()


def is_listing(op: Operation) -> bool:
    """True when ``op`` pages: its method takes ``limit`` and ``after``."""
    names = {p.name for p in parameters_of(op)}
    return {"limit", "after"} <= names


def is_page(annotation: Any) -> bool:
    """True when ``annotation`` is ``Page[...]``."""
    return isinstance(annotation, type) and issubclass(annotation, Page)
