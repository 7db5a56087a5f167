"""The boundary: pydantic input and read models, and translation of pydantic's errors.

Input models subclass :class:`InputModel`: building one with bad data raises
:class:`~ngo_kit.errors.ValidationFailed` naming the field and the rule, never pydantic's
own ``ValidationError``. Read models subclass :class:`ReadModel` (frozen, built from rows).
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from decimal import Decimal
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import urlsplit

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ngo_kit.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def validation_failed(error: pydantic.ValidationError, name: str = "") -> ValidationFailed:
    """Turn pydantic's error into ``ValidationFailed`` (first problem first, all in ``errors``).

    A model validator, whose errors carry no location, names the field it blames with a
    ``field`` entry in its error's context: ``PydanticCustomError("missing", "...",
    {"field": "capacity"})``. ``field`` names the value when it was validated on its own.
    """
    problems: list[ValidationFailed] = []
    for item in error.errors(include_url=False):
        rule = str(item.get("type", "invalid"))
        if rule in ("too_short", "too_long") and isinstance(item.get("input"), str):
            # a length limit on ``Text | None`` is checked around the union: same rule as for str
            rule = f"string_{rule}"
        ctx = {k: _plain(v) for k, v in (item.get("ctx") or {}).items()}
        # a rule across fields (a model validator) names its field in the error's context
        named = ctx.pop("field", None)
        loc = ".".join(str(part) for part in (name, *item.get("loc", ())) if part != "")
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
    """Accept a ready input model, a dict, or keyword arguments; validate at the boundary.

    Anything else in ``data`` (an email given positionally, say) is a ``TypeError`` naming the
    model and the keyword arguments to use instead.
    """
    if isinstance(data, model):
        if kwargs:
            return model.model_validate({**data.model_dump(), **kwargs})
        return data
    if data is not None and not isinstance(data, dict):
        raise TypeError(
            f"expected a {model.__name__}, a dict or keyword arguments"
            f" ({', '.join(model.model_fields)}), not a positional {type(data).__name__}"
        )
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


# --- the shared boundary types --------------------------------------------------------------
#
# Every input model and every service that takes plain keyword arguments checks its values with
# these, so a value the databases cannot store, or a driver would refuse, is a ValidationFailed
# naming the field and the rule before anything is written.

#: The first and last instants (UTC) and days the kit accepts: every supported database stores
#: them exactly, and a window of a few centuries added to them cannot overflow Python's dates.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
#: The largest magnitude of a whole number: a signed 64-bit integer, what every database stores.
INTEGER_LIMIT = 2**63 - 1
#: The largest magnitude of a decimal amount that is not a stock quantity (hours, coordinates...).
AMOUNT_LIMIT = Decimal(10) ** 15

_MULTILINE_ALLOWED = frozenset("\t\n\r")
#: Characters that reorder text when displayed (LRE..RLO, LRI..PDI): a name with one of these can
#: show as someone else's name.
_BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def no_control_characters_but_line_breaks(value: str) -> str:
    """A validator for text of several lines: tabs and line breaks pass, other controls do not."""
    if any(
        unicodedata.category(ch) in ("Cc", "Cs") and ch not in _MULTILINE_ALLOWED for ch in value
    ):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


def no_bidi_overrides(value: str) -> str:
    """A validator for names: refuse the characters that reorder how text is displayed."""
    if any(ch in _BIDI_OVERRIDES for ch in value):
        raise PydanticCustomError("bidi_override", "must not contain text direction overrides")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be a whole number")
    return value


def _not_float(value: Any) -> Any:
    if isinstance(value, float):
        raise PydanticCustomError("float_not_allowed", "must not be a float")
    return value


def _instant(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_aware", "must include a time zone")
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00-12:00 is in the year 10000 in UTC
        raise _out_of_range("datetime_out_of_range") from None
    if not EARLIEST <= value <= LATEST:
        raise _out_of_range("datetime_out_of_range")
    return value


def _moment(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        if not EARLIEST.replace(tzinfo=None) <= value <= LATEST.replace(tzinfo=None):
            raise _out_of_range("datetime_out_of_range")
        return value
    return _instant(value)


def _day(value: dt.date) -> dt.date:
    if not EARLIEST.date() <= value <= LATEST.date():
        raise _out_of_range("date_out_of_range")
    return value


def _out_of_range(rule: str) -> PydanticCustomError:
    return PydanticCustomError(
        rule,
        "must fall between {earliest} and {latest}",
        {"earliest": EARLIEST.date().isoformat(), "latest": LATEST.date().isoformat()},
    )


def _web_url(value: str) -> str:
    if not value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs") for ch in value)
    ):
        raise PydanticCustomError("url_scheme", "must be an http or https address")
    return value


#: One line of text: no control characters (NUL, tabs and line breaks included).
Text = Annotated[str, AfterValidator(no_control_characters)]
#: Text of several lines (notes, descriptions): tabs and line breaks allowed, other controls not.
Prose = Annotated[str, AfterValidator(no_control_characters_but_line_breaks)]
#: A name people read (of a person, a reward, an activity): one line, no text direction overrides.
Name = Annotated[str, AfterValidator(no_control_characters), AfterValidator(no_bidi_overrides)]
#: An address shown or followed by people: http or https only, or empty for none.
WebUrl = Annotated[str, Field(max_length=2000), AfterValidator(_web_url)]
#: A whole number: never a bool (``True`` is not 1 point), within a signed 64-bit integer.
Integer = Annotated[int, BeforeValidator(_not_bool), Field(ge=-INTEGER_LIMIT, le=INTEGER_LIMIT)]
#: An exact decimal amount: finite (no NaN or Infinity), never a float, below ``AMOUNT_LIMIT``.
Amount = Annotated[
    Decimal,
    BeforeValidator(_not_float),
    Field(allow_inf_nan=False, gt=-AMOUNT_LIMIT, lt=AMOUNT_LIMIT),
]
#: An instant: with a time zone, converted to UTC, between ``EARLIEST`` and ``LATEST``.
Instant = Annotated[dt.datetime, AfterValidator(_instant)]
#: A time that may leave out its zone, for modules whose convention reads a naive time in the
#: organisation's zone (volunteer shifts): a naive time stays naive, an aware one is an ``Instant``;
#: either falls between ``EARLIEST`` and ``LATEST``.
Moment = Annotated[dt.datetime, AfterValidator(_moment)]
#: A calendar day between ``EARLIEST`` and ``LATEST``.
Day = Annotated[dt.date, AfterValidator(_day)]


@functools.cache
def _adapter(kind: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(kind)


def check(field: str, kind: Any, value: Any) -> Any:
    """Validate one plain argument of a service with a shared type; return the validated value.

    ``check("served_on", Day, served_on)`` is how a service that takes keyword arguments
    rather than an input model checks them at the boundary: a bad value is a
    ``ValidationFailed`` naming ``field`` and the rule, as from an input model.
    """
    try:
        return _adapter(kind).validate_python(value)
    except pydantic.ValidationError as exc:
        raise validation_failed(exc, field) from None
