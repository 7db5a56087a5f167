"""Hostile input for tests: values each shared boundary type of ``ngo_kit.schemas`` must refuse.

For the kit's own suite and for plugin authors (it needs ``hypothesis``, a test dependency):
``hostile_fields(model)`` finds every field of an input model whose type is one of the shared
types (``Text``, ``Name``, ``Prose``, ``WebUrl``, ``Integer``, ``Amount``, ``Instant``,
``Moment``, ``Day``, or a plain ``str``, ``int``, ``Decimal``, date or time that should have
been one), and ``hostile_values(kind)`` draws values the field must refuse: control characters
and NUL bytes, text direction overrides in names, ``javascript:`` and other non-http(s) URLs,
bools and numbers past 64 bits for whole numbers, NaN, Infinity, floats and huge decimals, times
without a zone and dates and times outside ``EARLIEST``..``LATEST``.
"""

from __future__ import annotations

import datetime as dt
import types
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ngo_kit import schemas

Kind = Literal["text", "prose", "name", "url", "integer", "decimal", "instant", "moment", "day"]

#: Characters that reorder displayed text (refused in names).
BIDI_OVERRIDES = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_LINE_BREAKS = "\t\n\r"

_controls = st.characters(categories=["Cc"])
_controls_not_line_breaks = st.characters(categories=["Cc"], exclude_characters=_LINE_BREAKS)
_word = st.text(alphabet="ab长", min_size=1, max_size=4)


def _inside(middle: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # In the middle: input models strip whitespace at the ends, and some controls are whitespace.
    return st.tuples(_word, middle, _word).map("".join)


_text = _inside(_controls)
_prose = _inside(_controls_not_line_breaks)
_name = _text | _inside(st.sampled_from(BIDI_OVERRIDES))
_schemes = st.sampled_from(["javascript", "JavaScript", "data", "vbscript", "file", "ftp"]) | (
    st.from_regex(r"[a-z][a-z0-9+.\-]{0,9}", fullmatch=True).filter(
        lambda s: s not in ("http", "https")
    )
)
_url = (
    st.tuples(_schemes, st.sampled_from([":alert(1)", "://example.org/a", ":x"])).map("".join)
    | st.sampled_from(["//example.org/a", "http://", "https:///a", "example.org", "http//x"])
    | st.tuples(st.just("https://exa"), _controls, st.just("mple.org/")).map("".join)
)
_integer = st.booleans() | st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1)
_decimal = (
    st.sampled_from(
        [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"), "NaN", "-inf"]
    )
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=10**20, max_value=10**40).map(Decimal)
)
_EARLY = schemas.EARLIEST.replace(tzinfo=None) - dt.timedelta(microseconds=1)
_LATE = schemas.LATEST.replace(tzinfo=None) + dt.timedelta(microseconds=1)
_zones = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(-dt.timedelta(hours=12))]
)
_far_time = (
    st.datetimes(max_value=_EARLY - dt.timedelta(days=1), timezones=_zones)
    | st.datetimes(min_value=_LATE + dt.timedelta(days=1), timezones=_zones)
    | st.sampled_from(["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
)
_naive_time = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2150, 1, 1))
_far_day = (
    st.dates(max_value=_EARLY.date())
    | st.dates(min_value=_LATE.date())
    | st.sampled_from(["9999-12-31", "0001-01-01"])
)

_STRATEGIES: dict[Kind, st.SearchStrategy[Any]] = {
    "text": _text,
    "prose": _prose,
    "name": _name,
    "url": _url,
    "integer": _integer,
    "decimal": _decimal,
    "instant": _far_time | _naive_time,
    "moment": _far_time,
    "day": _far_day,
}


def hostile_values(kind: Kind) -> st.SearchStrategy[Any]:
    """A hypothesis strategy of values a field of ``kind`` must refuse with ``ValidationFailed``."""
    return _STRATEGIES[kind]


def hostile_fields(model: type[BaseModel]) -> list[tuple[str, Kind]]:
    """The fields of ``model`` (by the key input uses: alias or name) with a kind to attack.

    Fields whose type is a model, a choice (``Literal``), a bool, an identifier or a container
    are not listed; nested input models are checked as models of their own.
    """
    found: list[tuple[str, Kind]] = []
    for name, info in model.model_fields.items():
        kind = field_kind(info)
        if kind is not None:
            found.append((info.alias or name, kind))
    return found


def field_kind(info: FieldInfo) -> Kind | None:
    """The kind of a model field's value, from its type and the shared validators it carries."""
    annotation, metadata = _scalar(info.annotation)
    validators = {getattr(m, "func", None) for m in (*info.metadata, *metadata)}
    if annotation is str:
        if schemas._web_url in validators:
            return "url"
        if schemas.no_bidi_overrides in validators:
            return "name"
        if schemas.no_control_characters_but_line_breaks in validators:
            return "prose"
        return "text"
    if annotation is int:
        return "integer"
    if annotation is Decimal:
        return "decimal"
    if annotation is dt.datetime:
        return "moment" if schemas._moment in validators else "instant"
    if annotation is dt.date:
        return "day"
    return None


def _scalar(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """The type under ``Optional`` and ``Annotated``, and the metadata met on the way."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata.extend(extra)
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return None, ()
            annotation = options[0]
        else:
            return annotation, tuple(metadata)


__all__ = ["BIDI_OVERRIDES", "Kind", "field_kind", "hostile_fields", "hostile_values"]
