"""``ngo-kit <module> <command>``: commands generated from operations declared with ``cli=``.

An operation useful from a shell (an export, an expiry run, an erasure) declares
``cli="name"``; :func:`add_operation_commands` adds it to the module's command group with one
option per parameter (or per field of its input model), plus ``--org SLUG`` and ``--as
ACCOUNT_ID``. Like the modules' own commands it acts as the system actor unless ``--as`` names
an account; the service checks that account's permissions as it would over HTTP. A command a
module already wrote by hand under that name is kept, and the operation is not added twice.
"""

from __future__ import annotations

import json
import types
import typing
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Union

import click
from pydantic import BaseModel

from ngo_kit.operations import (
    Operation,
    Parameter,
    call_arguments,
    input_model_in,
    operations_of_module,
    parameters_of,
    summary_of,
)
from ngo_kit.schemas import check
from ngo_kit.tenancy import SYSTEM

if typing.TYPE_CHECKING:
    from ngo_kit.kit import Kit
    from ngo_kit.plugins import Module


def add_operation_commands(root: click.Group, modules: Iterable[Module]) -> list[str]:
    """Add a command for each ``cli=`` operation of ``modules`` to ``root``'s module groups.

    Returns ``<module> <command>`` for each operation whose command the module already has by
    hand (kept as it is: the generated one could replace it where it does the same).
    """
    kept: list[str] = []
    for module in modules:
        ops = [op for op in operations_of_module(module) if op.cli]
        if not ops:
            continue
        group = root.commands.get(module.name)
        if group is None:
            group = click.Group(module.name, help=module.description or None)
            root.add_command(group)
        if not isinstance(group, click.Group):
            continue
        for op in ops:
            if op.cli in group.commands:
                kept.append(f"{module.name} {op.cli}")
                continue
            group.add_command(operation_command(op))
    return kept


def operation_command(op: Operation) -> click.Command:
    """The click command of ``op``: its options, and a callback running it in one transaction."""
    params: list[click.Parameter] = [
        click.Option(["--org"], required=True, help="The organisation (slug)."),
        click.Option(
            ["--as", "acting_as"],
            default=None,
            metavar="ACCOUNT_ID",
            help="Act as this account (default: the system actor).",
        ),
    ]
    fields = _fields(op)
    params += [_option(name, annotation, required) for name, annotation, required, _ in fields]
    first, _ = summary_of(op)

    @click.pass_obj
    def run(state: Any, /, org: str, acting_as: str | None, **given: Any) -> None:
        kit: Kit = state.kit
        actor = SYSTEM if acting_as is None else check("as", uuid.UUID, acting_as)
        values = _values(op, fields, given)
        args, kwargs = call_arguments(op, values)
        with kit.begin(org=org, actor=actor) as tx:
            result = getattr(tx.service(op.module), op.attribute)(*args, **kwargs)
        _echo(result)

    return click.Command(op.cli, params=params, callback=run, help=first or None)


# (name, annotation, required, the input-model parameter it belongs to, if any)
_Field = tuple[str, Any, bool, str | None]


def _fields(op: Operation) -> list[_Field]:
    found: list[_Field] = []
    for param in parameters_of(op):
        model = input_model_in(param.annotation)
        if model is not None:
            found += [
                (name, info.annotation, info.is_required(), param.name)
                for name, info in model.model_fields.items()
            ]
        else:
            found.append((param.name, param.annotation, param.required, None))
    return found


def _option(name: str, annotation: Any, required: bool) -> click.Option:
    flag = "--" + name.replace("_", "-")
    plain = _plain(annotation)
    if plain is bool:
        return click.Option([f"{flag}/--no-{name.replace('_', '-')}", name], default=None)
    if typing.get_origin(plain) in (list, tuple, set):
        return click.Option([flag, name], multiple=True, required=required, help="Repeatable.")
    kind: Any = click.INT if plain is int else click.STRING
    metavar = getattr(plain, "__name__", "TEXT").upper() if isinstance(plain, type) else "TEXT"
    return click.Option([flag, name], type=kind, required=required, metavar=metavar)


def _plain(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``None``: ``int | None`` gives ``int``."""
    if typing.get_origin(annotation) is Annotated:
        return _plain(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _plain(members[0]) if len(members) == 1 else annotation
    return annotation


def _values(op: Operation, fields: list[_Field], given: dict[str, Any]) -> dict[str, Any]:
    """The method's arguments from the options given: a model's fields gathered into a dict
    (the service validates it), plain parameters checked against their annotation."""
    values: dict[str, Any] = {}
    by_param = {p.name: p for p in parameters_of(op)}
    for name, _, _, owner in fields:
        value = given.get(name)
        if value is None or value == ():
            continue
        if isinstance(value, tuple):
            value = list(value)
        if owner is not None:
            values.setdefault(owner, {})[name] = value
        else:
            values[name] = _checked(by_param[name], value)
    return values


def _checked(param: Parameter, value: Any) -> Any:
    if param.annotation is Any:
        return value
    return check(param.name, param.annotation, value)


def _echo(result: Any) -> None:
    """Print ``result`` the way the CLI prints: one tab-separated line per row, ``name: value``
    lines for one object, nothing for ``None``."""
    if result is None:
        click.echo("done")
    elif isinstance(result, list):
        for row in result:
            data = _plain_data(row)
            click.echo("\t".join(str(v) for v in data.values()) if isinstance(data, dict) else data)
    elif isinstance(result, BaseModel | dict):
        for name, value in _plain_data(result).items():
            click.echo(
                f"{name}: {value if not isinstance(value, list | dict) else json.dumps(value)}"
            )
    else:
        click.echo(result)


def _plain_data(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


__all__ = ["add_operation_commands", "operation_command"]
