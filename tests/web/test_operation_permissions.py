"""The permission and tenant matrix of every declared HTTP operation, generated or custom.

For each operation of every enabled module (the four built-in ones and the first-party
plugins), derived from the declarations alone: nobody signed in gets 401 (unless the operation
is ``public``); a member of the organisation whose role holds no permission gets 403 when the
operation names a ``permission`` and is neither ``own`` nor ``public``; a member of another
organisation never gets a 2xx. Path parameters are filled with random ids, so an operation that
looked its object up before checking the permission would answer 404: the matrix names it.
New declarations are picked up without a change here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import ngo_kit_rewards_stock
import ngo_kit_volunteer_points
import ngo_kit_webhooks
from web_api_support import OTHER, Api

from ngo_kit.operations import Operation
from ngo_kit.tenancy import SYSTEM
from ngo_kit.web.operations import ME_PARAMETERS, module_operations, shape_of

PLUGINS = (ngo_kit_webhooks, ngo_kit_rewards_stock, ngo_kit_volunteer_points)


def _path(op: Operation, site: Api) -> str:
    """``op``'s URL with every path parameter filled with a dummy value of its type."""
    shape = shape_of(op) if not op.custom else None
    path = op.path or ""
    for name in op.path_parameters:
        param = next((p for p in shape.path if p.name == name), None) if shape else None
        annotation = repr(param.annotation) if param else ""
        if "int" in annotation and "uuid" not in annotation.lower():
            value = "1"
        elif param is None or "uuid" in annotation.lower() or name in ME_PARAMETERS:
            value = str(uuid.uuid4())
        else:
            value = "x"
        path = path.replace(f"{{{name}}}", value)
    return site.url(f"{op.module}{path}")


def _call(site: Api, op: Operation, headers: dict[str, str]) -> Any:
    body: dict[str, Any] | None = {} if op.method in ("POST", "PUT", "PATCH") else None
    return site.client.request(op.method or "GET", _path(op, site), headers=headers, json=body)


def test_every_http_operation_answers_strangers_and_members_without_rights(
    api_factory: Callable[..., Api],
) -> None:
    site = api_factory(plugins=PLUGINS)
    with site.kit.begin(org=site.org, actor=SYSTEM) as tx:
        tx.tenancy.create_role("nobody", "No rights")
    member = site.join("nora")
    site.set_role(member, "nobody")
    stranger = site.join("olga", org=OTHER)
    ops = [
        op for ops in module_operations(site.kit).values() for op in ops if op.method is not None
    ]
    assert {op.module for op in ops} >= {"webhooks", "rewards_stock", "hours_points"}
    wrong: list[str] = []
    for op in ops:
        where = f"{op.qualified_name} ({op.method} {op.path})"
        if not op.public:
            res = _call(site, op, {})
            if res.status_code != 401:
                wrong.append(f"{where}: anonymous got {res.status_code}, not 401")
        if op.permission and not (op.own or op.public):
            res = _call(site, op, member.auth)
            if res.status_code == 404:
                wrong.append(f"{where}: looks its object up before checking {op.permission}")
            elif res.status_code != 403:
                wrong.append(f"{where}: a member without {op.permission} got {res.status_code}")
        if op.public:
            continue  # for anyone (a registration form's fields): a stranger may read it too
        res = _call(site, op, stranger.auth)
        if res.status_code not in (403, 404):
            wrong.append(f"{where}: a member of another organisation got {res.status_code}")
    assert not wrong, "\n".join(wrong)
