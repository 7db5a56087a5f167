"""The boundary: pydantic input and read models, and translation of pydantic's errors.

Input models subclass :class:`InputModel`: building one with bad data raises
:class:`~ngo_kit.errors.ValidationFailed` naming the field and the rule, never pydantic's
own ``ValidationError``. Read models subclass :class:`ReadModel` (frozen, built from rows).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Self, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from ngo_kit.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def validation_failed(error: pydantic.ValidationError) -> ValidationFailed:
    """Turn pydantic's error into ``ValidationFailed`` (first problem first, all in ``errors``).

    A model validator, whose errors carry no location, names the field it blames with a
    ``field`` entry in its error's context: ``PydanticCustomError("missing", "...",
    {"field": "capacity"})``.
    """
    problems: list[ValidationFailed] = []
    for item in error.errors(include_url=False):
        rule = str(item.get("type", "invalid"))
        ctx = {k: _plain(v) for k, v in (item.get("ctx") or {}).items()}
        # a rule across fields (a model validator) names its field in the error's context
        named = ctx.pop("field", None)
        loc = ".".join(str(part) for part in item.get("loc", ()))
        field = ".".join(p for p in (loc, str(named or "")) if p) or "__root__"
        ctx.pop("rule", None)
        problems.append(ValidationFailed(field, rule, **ctx))
    if not problems:
        return ValidationFailed("__root__", "invalid")
    first = problems[0]
    return ValidationFailed(first.field, first.rule, errors=problems, **_extra(first))


def _extra(error: ValidationFailed) -> dict[str, Any]:
    return {k: v for k, v in error.params.items() if k not in ("field", "rule", "reason")}


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class InputModel(BaseModel):
    """Base of every input model: strict about unknown fields, errors as ``ValidationFailed``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise validation_failed(exc) from None

    # Tell pydantic this ``__init__`` only translates errors, so a nested input model is
    # validated in place and its errors keep their path (``guardian.name``, not ``name``).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except pydantic.ValidationError as exc:
            raise validation_failed(exc) from None


class ReadModel(BaseModel):
    """Base of every read model a service returns: frozen, built from rows or mappings."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


def coerce(model: type[M], data: M | dict[str, Any] | None, kwargs: dict[str, Any]) -> M:
    """Accept a ready input model, a dict, or keyword arguments; validate at the boundary."""
    if isinstance(data, model):
        if kwargs:
            return model.model_validate({**data.model_dump(), **kwargs})
        return data
    payload = dict(data or {})
    payload.update(kwargs)
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise validation_failed(exc) from None


def no_control_characters(value: str) -> str:
    """A validator for one-line text: refuse control characters (tabs and newlines included)."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value
