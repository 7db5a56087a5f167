"""HTTP routes generated from operation declarations (``ngo_kit.operations``).

For every enabled module whose service declares operations, :func:`mount_operations` adds one
route per operation with ``http`` set and ``custom=False``, under the module's mount
(``/api/orgs/{org}/<module>``), and documents the hand-written (``custom=True``) ones. Each
generated route is the shape of a thin hand-written one: check who is asking, open one unit
of work, call one service method, answer its result. The service still checks permissions;
the route checks them first too, so that a person without them learns nothing about the
input's rules (401 and 403 come before 422).

How a method's signature becomes the route:

- ``{name}`` path parameters are the method's parameters of that name. A uuid parameter named
  ``member_id``, ``user_id`` or ``account_id`` also takes ``me``: the signed-in account
  (``/members/me/statement``).
- For GET and DELETE the other parameters are query parameters. For POST, PUT and PATCH the
  JSON body is the method's input model (``data: XIn | dict[str, Any] | None = None, /,
  **kwargs`` takes ``XIn``), else a model made from the other parameters; both refuse unknown
  fields, and bad input is a 422 problem naming the field.
- A parameter (or input field) named ``key`` is the idempotency key; it may also come in the
  ``Idempotency-Key`` header (the header wins; both given and different is a 422).
- The return annotation is the response model; a method returning ``None`` answers 204.
"""

from __future__ import annotations

import collections.abc
import datetime as dt
import inspect
import re
import types
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from pydantic import BaseModel, create_model

from ngo_kit import errors
from ngo_kit.api_keys import ApiKeyInvalid, ApiKeyThrottled
from ngo_kit.errors import ConfigurationError, NgoKitError, register_rule_messages
from ngo_kit.operations import (
    COMMON_ERRORS,
    MAX_LIMIT,
    Operation,
    Parameter,
    call_arguments,
    errors_of,
    input_model_in,
    is_listing,
    is_page,
    operations_of_module,
    parameters_of,
    result_of,
    summary_of,
    takes_key,
)
from ngo_kit.schemas import Amount, Day, InputModel, Instant, Integer, Prose
from ngo_kit.web import (
    PROBLEM_JSON,
    STATUS,
    AuthenticationRequired,
    Problem,
    RequestContext,
    client_key,
    request_context,
    status_of,
)

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

#: The parameter a method takes its caller's throttling key in: filled from the request (its
#: client's address), never from the caller's input, so nobody can pick their own counter.
CLIENT_PARAMETER = "client"
#: The shared boundary type a plain parameter type becomes in a generated request: the same
#: checks an input model's fields get (no control characters but line breaks in text, strict
#: bounded integers, finite bounded decimals, times with a zone in the kit's range).
BOUNDARY_TYPES: dict[Any, Any] = {
    str: Prose,
    int: Integer,
    Decimal: Amount,
    dt.datetime: Instant,
    dt.date: Day,
}

#: Abstract collection types a generated request takes as a list.
_LAZY_COLLECTIONS = (
    collections.abc.Iterable,
    collections.abc.Sequence,
    collections.abc.Collection,
)

#: Path parameters that accept ``me`` for the signed-in account.
ME_PARAMETERS = frozenset({"member_id", "user_id", "account_id"})
ME = "me"
#: The header an idempotency key may come in, for operations taking ``key``.
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: What every route of an operation may answer with, declared or not: the common errors and
#: the refusals of whoever calls (no session, a bad or throttled API key).
ALWAYS: tuple[type[NgoKitError], ...] = (
    *COMMON_ERRORS,
    AuthenticationRequired,
    ApiKeyInvalid,
    ApiKeyThrottled,
)
_UUID_OR_ME = (
    r"^(me|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})$"
)

register_rule_messages({"key_differs": "differs from the Idempotency-Key header"})


@dataclass(frozen=True)
class HttpShape:
    """How one operation is reached over HTTP: its path, query and body parameters."""

    op: Operation
    path: tuple[Parameter, ...]
    query: tuple[Parameter, ...]
    #: the method's parameter that takes the input model, if the body is one
    body_parameter: Parameter | None
    #: the body's model (the method's input model, or one made from its parameters)
    body: type[BaseModel] | None
    result: Any

    @property
    def takes_key(self) -> bool:
        """True when the operation takes an idempotency ``key``."""
        return takes_key(self.op)

    @property
    def status(self) -> int:
        """The status of a successful answer: the declared one, else 200 (204 for ``None``)."""
        if self.op.status is not None:
            return self.op.status
        return 204 if self.result is None else 200


def shape_of(op: Operation) -> HttpShape:
    """The HTTP shape of ``op`` (which must have ``http``), from its method's signature.

    Raises ``ConfigurationError`` (``core.E054``) when a path parameter names no parameter of
    the method, or a parameter's type cannot be taken from a request.
    """
    params = parameters_of(op)
    by_name = {p.name: p for p in params}
    missing = [name for name in op.path_parameters if name not in by_name]
    if missing:
        raise ConfigurationError(
            "core.E054",
            "operation '{name}': path parameter '{param}' is not a parameter of its method",
            name=op.qualified_name,
            param=missing[0],
        )
    path = tuple(by_name[name] for name in op.path_parameters)
    rest = [p for p in params if p.name not in op.path_parameters and p.name != CLIENT_PARAMETER]
    result = result_of(op)
    if op.method == "GET" and is_listing(op) and not is_page(result):
        raise ConfigurationError(
            "core.E054",
            "operation '{name}' takes limit and after, so it must return Page[...]",
            name=op.qualified_name,
        )
    if op.method in ("GET", "DELETE"):
        return HttpShape(op, path, tuple(rest), None, None, result)
    model_params = [p for p in rest if input_model_in(p.annotation) is not None]
    if model_params:
        carrier = model_params[0]
        others = tuple(p for p in rest if p is not carrier)
        return HttpShape(op, path, others, carrier, input_model_in(carrier.annotation), result)
    if not rest:
        return HttpShape(op, path, (), None, None, result)
    fields: dict[str, Any] = {
        p.name: (boundary_annotation(p.annotation), ... if p.required else p.default) for p in rest
    }
    title = "".join(part.title() for part in f"{op.module}_{op.name}".split("_")) + "In"
    try:
        body = create_model(
            title, __base__=InputModel, __doc__=f"Input of {op.qualified_name}.", **fields
        )
    except Exception as exc:
        raise ConfigurationError(
            "core.E054",
            "operation '{name}': its parameters cannot make a request body: {reason}",
            name=op.qualified_name,
            reason=str(exc).splitlines()[0],
        ) from None
    return HttpShape(op, path, (), None, body, result)


def declared_errors(op: Operation) -> tuple[type[NgoKitError], ...]:
    """Every error class ``op``'s route may answer with: :func:`errors_of` and the refusals
    of the caller (:data:`ALWAYS`: no session, a bad or throttled API key)."""
    return tuple(dict.fromkeys((*errors_of(op), *ALWAYS)))


def problem_responses(op: Operation) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of ``op``'s problems, by status, each listing its codes."""
    by_status: dict[int, list[type[NgoKitError]]] = {}
    for cls in declared_errors(op):
        by_status.setdefault(_status_of_class(cls), []).append(cls)
    if op.public:
        by_status.pop(401, None)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, classes in sorted(by_status.items()):
        responses[status] = {
            "model": Problem,
            "content": {PROBLEM_JSON: {}},
            "description": "Problem: " + ", ".join(f"`{c.code}`" for c in classes),
        }
        if status == 429:  # every throttle answers how long to wait
            responses[status]["headers"] = {
                "Retry-After": {"description": "Seconds until the lock or window ends"}
            }
    return responses


def _status_of_class(cls: type[NgoKitError]) -> int:
    for klass in cls.__mro__:
        if klass in STATUS:
            return STATUS[klass]
    return 400


def _description(op: Operation) -> str:
    first, rest = summary_of(op)
    lines = [first] + ([rest] if rest else [])
    permission = op.permission or "none"
    if op.own:
        permission += " (or the member's own)"
    lines.append(f"Permission: `{permission}`" + (" — no sign-in needed." if op.public else "."))
    codes = ", ".join(f"`{cls.code}`" for cls in declared_errors(op))
    lines.append(f"Errors: {codes}.")
    return "\n\n".join(lines)


def _openapi_extra(op: Operation) -> dict[str, Any]:
    return {"x-ngo-kit-permission": op.permission, "x-ngo-kit-own": op.own}


# --- the route --------------------------------------------------------------------------------


def guard(op: Operation) -> Callable[..., RequestContext]:
    """A dependency checking, before the request's input is read, that the caller may call
    ``op``: signed in (unless ``public``), a member of the path's organisation (404 otherwise,
    as if it did not exist), and holding ``op.permission`` (unless ``own`` or ``public``)."""

    def check(ctx: Annotated[RequestContext, Depends(request_context)]) -> RequestContext:
        if op.public:
            return ctx
        ctx.require_actor()
        with ctx.begin() as tx:
            if op.permission and not op.own:
                tx.require(op.permission)
        return ctx

    return check


def boundary_annotation(annotation: Any) -> Any:
    """``annotation`` with each plain scalar type replaced by its shared boundary type
    (``str | None`` becomes ``Prose | None``) and each abstract collection by a list
    (``Iterable[X]`` becomes ``list[X]``); annotated and other types are kept."""
    if annotation in BOUNDARY_TYPES:
        return BOUNDARY_TYPES[annotation]
    if get_origin(annotation) in _LAZY_COLLECTIONS:
        # pydantic checks an Iterable's items only while the service iterates (a string is
        # an iterable of characters): a list is checked whole, at the boundary
        (item,) = get_args(annotation) or (Any,)
        return list[boundary_annotation(item)]  # type: ignore[misc]
    if get_origin(annotation) in (Union, types.UnionType):
        members = tuple(boundary_annotation(a) for a in get_args(annotation))
        return Union[members]  # noqa: UP007 - built from a tuple of types
    return annotation


def _path_annotation(param: Parameter) -> Any:
    if param.name in ME_PARAMETERS and _accepts(param.annotation, uuid.UUID):
        return Annotated[
            str, Path(pattern=_UUID_OR_ME, description="An account id, or `me` for yours")
        ]
    for kind in (uuid.UUID, int):
        if _accepts(param.annotation, kind):
            return Annotated[kind, Path()]
    return Annotated[str, Path()]


def _accepts(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    if get_origin(annotation) is Annotated:
        return _accepts(get_args(annotation)[0], kind)
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_accepts(a, kind) for a in get_args(annotation))
    return False


def _query_annotation(op: Operation, param: Parameter) -> Any:
    if is_listing(op) and param.name == "limit":
        return Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description=f"Rows per page (at most {MAX_LIMIT})")
        ]
    if is_listing(op) and param.name == "after":
        return Annotated[
            str | None,
            Query(max_length=2000, description="The `next` cursor of the page before"),
        ]
    return Annotated[boundary_annotation(param.annotation), Query()]


def endpoint_of(op: Operation, shape: HttpShape) -> Callable[..., Any]:
    """The route function of ``op``: its ``__signature__`` is what FastAPI reads the request
    and writes the OpenAPI entry from."""
    module = op.module
    names = {p.name for p in (*shape.path, *shape.query)}
    body_name = "body" if "body" not in names else "request_body"
    takes_client = any(p.name == CLIENT_PARAMETER for p in parameters_of(op))

    def endpoint(**values: Any) -> Any:
        ctx: RequestContext = values.pop("_ctx")
        header_key: str | None = values.pop("_idempotency_key", None)
        body = values.pop(body_name, None)
        for param in shape.path:
            if values.get(param.name) == ME and param.name in ME_PARAMETERS:
                values[param.name] = ctx.require_actor()
            elif param.name in ME_PARAMETERS and isinstance(values.get(param.name), str):
                values[param.name] = uuid.UUID(values[param.name])
        if shape.body_parameter is not None:
            values[shape.body_parameter.name] = _with_key(body, header_key)
        elif body is not None:
            body = _with_key(body, header_key)
            values.update({name: getattr(body, name) for name in type(body).model_fields})
        elif header_key is not None:
            values["key"] = _merged_key(values.get("key"), header_key)
        if takes_client:
            values[CLIENT_PARAMETER] = client_key(values.pop("_request"))
        args, kwargs = call_arguments(op, values)
        with ctx.begin() as tx:
            result = getattr(tx.service(module), op.attribute)(*args, **kwargs)
        if shape.result is None:
            return Response(status_code=shape.status)
        return result

    params = [
        inspect.Parameter(
            "_ctx",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[RequestContext, Depends(guard(op))],
        )
    ]
    params += [
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=_path_annotation(p))
        for p in shape.path
    ]
    params += [
        inspect.Parameter(
            p.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_query_annotation(op, p),
            default=inspect.Parameter.empty if p.required else p.default,
        )
        for p in shape.query
    ]
    if shape.body is not None:
        optional = shape.body_parameter is not None and not shape.body_parameter.required
        params.append(
            inspect.Parameter(
                body_name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=shape.body | None if optional else shape.body,
                default=None if optional else inspect.Parameter.empty,
            )
        )
    if takes_client:
        params.append(
            inspect.Parameter("_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )
    if shape.takes_key:
        params.append(
            inspect.Parameter(
                "_idempotency_key",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    str | None,
                    Header(
                        alias=IDEMPOTENCY_HEADER,
                        min_length=1,
                        max_length=200,
                        description="The idempotency key: a repeat with the same key answers "
                        "the first result; the same key with other input is a 409.",
                    ),
                ],
                default=None,
            )
        )
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"{op.module}_{op.name}"
    endpoint.__doc__ = op.function.__doc__ if op.function else None
    return endpoint


def _with_key(body: Any, header_key: str | None) -> Any:
    if header_key is None or body is None or "key" not in type(body).model_fields:
        return body
    merged = _merged_key(getattr(body, "key", None), header_key)
    return body.model_copy(update={"key": merged})


def _merged_key(given: Any, header_key: str) -> str:
    if given is not None and given != header_key:
        raise errors.ValidationFailed("key", "key_differs")
    return header_key


def _route_kwargs(op: Operation) -> dict[str, Any]:
    summary, _ = summary_of(op)
    return {
        "operation_id": op.qualified_name,
        "summary": summary.split(". ")[0].rstrip(".") or op.name,
        "description": _description(op),
        "responses": problem_responses(op),
        "openapi_extra": _openapi_extra(op),
    }


def operation_router(ops: Iterable[Operation]) -> APIRouter:
    """An APIRouter with a generated route for each of ``ops`` over HTTP and not ``custom``."""
    router = APIRouter()
    for op in ops:
        if op.method is None or op.path is None or op.custom:
            continue
        shape = shape_of(op)
        extra: dict[str, Any] = {"response_class": Response} if shape.result is None else {}
        router.add_api_route(
            op.path,
            endpoint_of(op, shape),
            methods=[op.method],
            status_code=shape.status,
            response_model=shape.result,
            **extra,
            **_route_kwargs(op),
        )
    return router


# --- mounting ---------------------------------------------------------------------------------


def module_operations(kit: Kit) -> dict[str, list[Operation]]:
    """The declared operations of every enabled module with a service class, by module."""
    return {
        name: operations_of_module(module)
        for name, module in kit.modules.items()
        if isinstance(module.service, type)
    }


def _route_key(method: str, path: str) -> tuple[str, str]:
    return method, re.sub(r"{[^}]*}", "{}", path)


def _hand_written(router: APIRouter | None) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    for route in router.routes if router is not None else ():
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                found[_route_key(method, route.path)] = route
    return found


def check_permissions(kit: Kit, ops: Iterable[Operation]) -> None:
    """Refuse (``core.E055``) an operation naming a permission no plugin registered."""
    for op in ops:
        if op.permission and op.permission not in kit.permissions:
            raise ConfigurationError(
                "core.E055",
                "operation '{name}' names the permission '{permission}', which nobody registered",
                name=op.qualified_name,
                permission=op.permission,
            )


def prepare(app: FastAPI, kit: Kit, hand_written: dict[str, APIRouter]) -> dict[str, APIRouter]:
    """Check every enabled module's declarations against its hand-written router and return the
    generated routers to mount, by module.

    A hand-written route of a ``custom=True`` operation gains the operation's OpenAPI entry
    (operationId, responses, permission) and its guard. Raises ``ConfigurationError``:
    ``core.E052`` when a generated route has the method and path of a hand-written one,
    ``core.E053`` when a ``custom=True`` operation has no hand-written route at its method and
    path, ``core.E055`` for an unregistered permission.
    """
    generated: dict[str, APIRouter] = {}
    by_endpoint: dict[Callable[..., Any], Operation] = app.state.operations
    for name, ops in module_operations(kit).items():
        check_permissions(kit, ops)
        existing = _hand_written(hand_written.get(name))
        for op in ops:
            if op.method is None or op.path is None:
                continue
            route = existing.get(_route_key(op.method, op.path))
            if op.custom and route is None:
                raise ConfigurationError(
                    "core.E053",
                    "operation '{name}' is custom=True but module '{module}' has no "
                    "hand-written route {method} {path}",
                    name=op.qualified_name,
                    module=name,
                    method=op.method,
                    path=op.path,
                )
            if not op.custom and route is not None:
                raise ConfigurationError(
                    "core.E052",
                    "operation '{name}' would generate {method} {path}, which module "
                    "'{module}' has a hand-written route for (declare it custom=True)",
                    name=op.qualified_name,
                    module=name,
                    method=op.method,
                    path=op.path,
                )
            if route is not None:
                _document_custom(route, op)
                by_endpoint[route.endpoint] = op
        router = operation_router(ops)
        for made in router.routes:
            if isinstance(made, APIRoute):
                by_endpoint[made.endpoint] = next(
                    op for op in ops if made.operation_id == op.qualified_name
                )
        if router.routes:
            generated[name] = router
    return generated


def _document_custom(route: APIRoute, op: Operation) -> None:
    """Give a hand-written route its operation's OpenAPI entry and guard (before it is
    included: ``include_router`` copies these)."""
    kwargs = _route_kwargs(op)
    route.operation_id = kwargs["operation_id"]
    route.responses = {**route.responses, **kwargs["responses"]}
    route.openapi_extra = {**(route.openapi_extra or {}), **kwargs["openapi_extra"]}
    if not route.description:
        route.description = kwargs["description"]
    route.dependencies.append(DependsParam(guard(op)))


# --- keeping declarations true in tests -----------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """A problem a route answered, with the operation it belongs to."""

    op: Operation
    error: NgoKitError
    method: str
    path: str


def note_problem(request: Request, error: NgoKitError) -> None:
    """Record ``error`` against its operation when the app keeps a problem log (tests do)."""
    log: list[Answered] | None = getattr(request.app.state, "problem_log", None)
    if log is None:
        return
    op = request.app.state.operations.get(request.scope.get("endpoint"))
    if op is not None:
        log.append(Answered(op, error, request.method, request.url.path))


def undeclared(answers: Iterable[Answered]) -> list[str]:
    """The answers whose error class their operation does not declare (5xx aside)."""
    found: list[str] = []
    for answer in answers:
        if status_of(answer.error) >= 500:
            continue
        allowed = declared_errors(answer.op)
        if not isinstance(answer.error, allowed):
            found.append(
                f"{answer.op.qualified_name} ({answer.method} {answer.path}) answered "
                f"{type(answer.error).__name__} ({answer.error.code}), which its declaration "
                "does not list in errors=(...)"
            )
    return found


__all__ = [
    "ALWAYS",
    "IDEMPOTENCY_HEADER",
    "ME",
    "ME_PARAMETERS",
    "Answered",
    "HttpShape",
    "declared_errors",
    "endpoint_of",
    "guard",
    "module_operations",
    "note_problem",
    "operation_router",
    "operations_of_module",
    "prepare",
    "problem_responses",
    "shape_of",
    "undeclared",
]
