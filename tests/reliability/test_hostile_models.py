"""Hostile input into every input model the kit and its plugins define, found, not listed.

Each ``InputModel`` subclass gets hypothesis-generated payloads for its own fields: very long
strings, control characters, mixed scripts, huge, negative and fractional numbers, NaN,
dates far in the past and future, wrong types. The answer is a valid model or a
``ValidationFailed`` naming one of the model's fields and a rule, never another exception.
Then each field, found by its type, gets the values its kind must refuse
(``ngo_kit.hostile_input``): each is a ``ValidationFailed`` naming that field, in English and
Chinese. A new input model is covered without anyone adding it here.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from decimal import Decimal
from importlib import metadata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngo_kit import ValidationFailed
from ngo_kit.hostile_input import Kind, hostile_fields, hostile_values
from ngo_kit.schemas import InputModel


def _plugin_packages() -> tuple[str, ...]:
    """The top-level packages of every installed distribution that registers an ``ngo_kit``
    entry point: an installed plugin is found, not listed here."""
    packages = {entry.module.split(".")[0] for entry in metadata.entry_points(group="ngo_kit")}
    return tuple(sorted(packages - {"ngo_kit"}))


PLUGIN_PACKAGES = _plugin_packages()


def _import_everything() -> None:
    # No ImportError is swallowed: a plugin whose distribution is installed but whose package
    # does not import is a broken plugin, and its input models would go unchecked.
    for package_name in ("ngo_kit", *PLUGIN_PACKAGES):
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if ".migrations" in info.name or info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)


def _input_models() -> list[type[InputModel]]:
    _import_everything()
    found: dict[str, type[InputModel]] = {}
    todo = list(InputModel.__subclasses__())
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        if model.__module__.startswith(("ngo_kit", *PLUGIN_PACKAGES)) and model.model_fields:
            found[f"{model.__module__}.{model.__qualname__}"] = model
    return [found[name] for name in sorted(found)]


MODELS = _input_models()

words = st.sampled_from(
    ["", " ", "安慰包", "Ａｄａ", "\u202eevil", "a\x00b", "x\ny", "\t", "𝔘𝔫𝔦", "null", "0", "-1"]
)
scalars = st.one_of(
    st.text(max_size=50),
    words,
    st.text(min_size=5_000, max_size=5_000, alphabet="长x"),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("0.5"), Decimal("-0.001"), Decimal("1E+30"), Decimal("1e-30")]),
    st.booleans(),
    st.none(),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.uuids(),
    st.sampled_from(["0001-01-01", "9999-12-31T23:59:59+14:00", "2026-02-30", "1e999"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=6,
)

HOSTILE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_kit_has_input_models_to_check() -> None:
    names = {model.__name__ for model in MODELS}
    assert {"RegisterIn", "AwardIn", "IssueIn", "ShiftIn"} <= names


@pytest.mark.parametrize(
    ("distribution", "model_name"),
    [
        ("ngo-kit-rewards-stock", "ngo_kit_rewards_stock.LinkIn"),
        ("ngo-kit-webhooks", "ngo_kit_webhooks.schemas.EndpointIn"),
    ],
)
def test_an_installed_plugins_input_models_are_checked(distribution: str, model_name: str) -> None:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed here")
    names = {f"{model.__module__}.{model.__qualname__}" for model in MODELS}
    assert model_name in names


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__qualname__}")
@HOSTILE
@given(data=st.data())
def test_hostile_input_is_a_valid_model_or_validation_failed_naming_a_field(
    model: type[InputModel], data: st.DataObject
) -> None:
    fields = list(model.model_fields)
    chosen = data.draw(st.lists(st.sampled_from(fields), unique=True), label="fields")
    payload: dict[str, Any] = {name: data.draw(values, label=name) for name in chosen}
    if data.draw(st.booleans(), label="add an unknown field"):
        payload["not_a_field"] = data.draw(values, label="not_a_field")
    try:
        model.model_validate(payload)
    except ValidationFailed as exc:
        assert exc.rule, exc
        for problem in exc.errors:
            head = problem.field.split(".")[0]
            assert head in (*fields, "not_a_field", "__root__"), problem.field
            str(problem)  # the message renders
            problem.to_dict("zh_CN")


# --- every field against the values its kind must refuse -----------------------------------

#: Passwords are hashed, never stored, shown or compared as text, and NIST 800-63B asks that
#: every character be accepted; they are the only text left out.
NOT_ATTACKED = {"password", "current_password", "new_password"}

FIELDS = [
    (model, key, kind)
    for model in MODELS
    for key, kind in hostile_fields(model)
    if key not in NOT_ATTACKED
]


def test_every_shared_kind_is_attacked_somewhere() -> None:
    kinds = {kind for _, _, kind in FIELDS}
    assert kinds == {
        "text",
        "prose",
        "name",
        "url",
        "integer",
        "decimal",
        "instant",
        "moment",
        "day",
    }


@pytest.mark.parametrize(
    ("model", "key", "kind"),
    FIELDS,
    ids=[f"{m.__qualname__}.{key}:{kind}" for m, key, kind in FIELDS],
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_field_refuses_the_hostile_values_of_its_kind(
    model: type[InputModel], key: str, kind: Kind, data: st.DataObject
) -> None:
    value = data.draw(hostile_values(kind), label=key)
    with pytest.raises(ValidationFailed) as info:
        model.model_validate({key: value})
    refused = {problem.field.split(".")[0]: problem for problem in info.value.errors}
    assert key in refused, [p.field for p in info.value.errors]
    problem = refused[key]
    assert problem.message_in("zh_CN") != problem.message_in("en")
