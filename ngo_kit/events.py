"""The organisation's events: its audit log as a paged feed, for pull-based integrations.

A reporting job or a mini-program back end asks ``GET /api/orgs/{org}/events?after=<seq>`` (or
``tx.events.feed(after=...)``) for what happened since the last event it saw. Events come in
audit order (``seq``, which only grows within an organisation), so ``after`` is a cursor that
never skips or repeats an event. Each event names its actor (a person's id, an API key by its
name, the system) and its subject; the data keeps no personal fields.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from ngo_kit.api_keys import API_KEY_TABLE
from ngo_kit.audit import AUDIT_TABLE
from ngo_kit.operations import operation
from ngo_kit.schemas import InputModel, Instant, Integer, ReadModel, coerce

if TYPE_CHECKING:
    from ngo_kit.context import Context

#: The most events one page holds.
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_KIND = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
#: Keys of audit data that hold (or may hold) a person's details: left out of every event,
#: at any depth. Audit rows refer to people by id; these guard against a plugin's data.
PERSONAL_FIELDS = frozenset(
    {
        "email", "phone", "display_name", "first_name", "last_name", "address",
        "birth_date", "date_of_birth", "id_number", "guardian", "note", "notes", "comment",
        "answers", "fields", "recipient", "ip", "user_agent",
    }
)  # fmt: skip


class EventsQuery(InputModel):
    """Which events: after the ``seq`` last seen, of a ``kind`` (``points`` is every
    ``points.*`` event, ``points.awarded`` only those), at or after ``since``; ``limit`` at most
    500."""

    after: Integer = Field(default=0, ge=0)
    limit: Integer = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    kind: str | None = Field(default=None, min_length=1, max_length=100)
    since: Instant | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and not _KIND.match(value):
            raise PydanticCustomError(
                "invalid_kind", "must be an event kind such as points.awarded"
            )
        return value


class EventActor(ReadModel):
    """Who caused an event: ``kind`` is ``person``, ``api_key``, ``system`` or ``anonymous``."""

    id: str | None
    kind: Literal["person", "api_key", "system", "anonymous"]
    label: str


class EventSubject(ReadModel):
    """What an event is about: the kind of thing and its id."""

    type: str
    id: str


class Event(ReadModel):
    """One event of the organisation."""

    seq: int
    at: dt.datetime
    kind: str
    actor: EventActor
    subject: EventSubject
    data: dict[str, Any]


class EventPage(ReadModel):
    """A page of events; ask again with ``after=next_after`` (``None``: nothing newer yet)."""

    events: list[Event]
    next_after: int | None


class EventsService:
    """``tx.events``: the organisation's audit events as a feed (``audit.view``)."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @operation("GET /events", permission="audit.view", custom=True)
    def feed(self, data: EventsQuery | dict[str, Any] | None = None, /, **kwargs: Any) -> EventPage:
        """The organisation's events after ``after``, oldest first, at most ``limit`` (500).

        ``next_after`` is the last event's ``seq`` when the page is full (there may be more),
        else ``None``; a client keeps the last ``seq`` it processed and asks from there.
        Raises ``ValidationFailed`` for a bad ``kind``, ``limit`` or ``since``.
        """
        tx = self.tx
        tx.require("audit.view")
        query = coerce(EventsQuery, data, kwargs)
        table = AUDIT_TABLE
        stmt = sa.select(
            table.c.seq,
            table.c.at,
            table.c.action,
            table.c.actor,
            table.c.target_type,
            table.c.target_id,
            table.c.data,
        ).where(table.c.org_id == tx.org_id, table.c.seq > query.after)
        if query.kind is not None:
            stmt = stmt.where(
                sa.or_(
                    table.c.action == query.kind,
                    table.c.action.startswith(query.kind + ".", autoescape=True),
                )
            )
        if query.since is not None:
            stmt = stmt.where(table.c.at >= query.since)
        rows = tx.connection.execute(stmt.order_by(table.c.seq).limit(query.limit)).all()
        labels = self._key_names({r.actor for r in rows})
        events = [
            Event(
                seq=r.seq,
                at=r.at,
                kind=r.action,
                actor=_actor(r.actor, labels),
                subject=EventSubject(type=r.target_type, id=r.target_id),
                data=without_personal_fields(r.data or {}),
            )
            for r in rows
        ]
        full = len(events) == query.limit
        return EventPage(events=events, next_after=events[-1].seq if full else None)

    def _key_names(self, actors: set[str]) -> dict[str, str]:
        """The names of the organisation's API keys among ``actors`` (``key:<id>`` labels)."""
        ids = []
        for actor in actors:
            if actor.startswith("key:"):
                try:
                    ids.append(uuid.UUID(actor[4:]))
                except ValueError:
                    continue
        if not ids:
            return {}
        rows = self.tx.connection.execute(
            sa.select(API_KEY_TABLE.c.id, API_KEY_TABLE.c.name).where(
                API_KEY_TABLE.c.org_id == self.tx.org_id, API_KEY_TABLE.c.id.in_(ids)
            )
        )
        return {f"key:{key_id}": name for key_id, name in rows}


def _actor(stored: str, key_names: dict[str, str]) -> EventActor:
    if stored in ("system", "anonymous"):
        return EventActor(id=None, kind=stored, label=stored)
    if stored.startswith("key:"):
        name = key_names.get(stored, "?")
        return EventActor(id=stored[4:], kind="api_key", label=f"API key {name}")
    return EventActor(id=stored, kind="person", label=stored)


def without_personal_fields(value: Any) -> Any:
    """``value`` with every key in ``PERSONAL_FIELDS`` dropped, at any depth."""
    if isinstance(value, dict):
        return {k: without_personal_fields(v) for k, v in value.items() if k not in PERSONAL_FIELDS}
    if isinstance(value, list):
        return [without_personal_fields(v) for v in value]
    return value
