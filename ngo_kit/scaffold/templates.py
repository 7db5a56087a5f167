"""The files of a new plugin package, with ``{{token}}`` placeholders.

Tokens: ``dist`` (ngo-kit-food-bank), ``package`` (ngo_kit_food_bank), ``module`` (food_bank),
``Class`` (FoodBank), ``title`` (Food bank), ``name`` (food-bank). Kept as Python strings so
they ship inside the ngo-kit wheel with no package-data rules.
"""

from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{{dist}}"
version = "0.1.0"
description = "An ngo-kit plugin: {{title}}."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["ngo-kit>=0.1"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How ngo-kit finds the plugin once it is installed.
[project.entry-points.ngo_kit]
{{module}} = "{{package}}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
{{package}} = ["py.typed", "migrations/versions/*.py"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--import-mode=importlib"
"""

README = """\
# {{dist}}

An [ngo-kit](https://pypi.org/project/ngo-kit/) plugin providing the `{{module}}` module:
notes kept per organisation, reached as `tx.{{module}}` in a unit of work.

What is here, one file per job (the same vocabulary as ngo-kit's own modules):

| file | what it holds |
| --- | --- |
| `pyproject.toml` | the package, and its entry point in the `ngo_kit` group |
| `src/{{package}}/__init__.py` | the `Module` object and the hook implementations |
| `src/{{package}}/models.py` | the table `{{module}}_note` (`org_id` on every row) |
| `src/{{package}}/schemas.py` | input and read models (the boundary) |
| `src/{{package}}/service.py` | the rules: `add_note`, `list_notes` |
| `src/{{package}}/hookspecs.py` | the event other plugins can listen to |
| `src/{{package}}/migrations/versions/` | the module's Alembic branch, `{{module}}` |
| `tests/` | tests using the `ngo_kit.testing` fixtures |

## Develop

```console
$ pip install -e .
$ python -m pytest
$ ngo-kit plugins                       # lists {{module}} [{{dist}} 0.1.0]
$ ngo-kit db upgrade                    # creates {{module}}_note
```

## Change the models

The first migration was generated from `models.py` when the package was created. After
changing a model, generate the next revision of the `{{module}}` branch against an upgraded
database and check it in:

```console
$ ngo-kit db upgrade
$ ngo-kit db revision --module {{module}} -m "what changed"
```

## Use it

```python
from ngo_kit import SYSTEM, Kit

kit = Kit("sqlite:///{{module}}.db", modules=["{{module}}"])
kit.upgrade()
org = kit.create_organisation("rainbow", "Rainbow Aid")
with kit.begin(org=org, actor=SYSTEM) as tx:
    tx.{{module}}.add_note(text="Doors open at nine")
    print([note.text for note in tx.{{module}}.list_notes()])
```
"""

INIT = '''\
"""{{dist}}: {{title}}, an ngo-kit plugin.

It provides the ``{{module}}`` module: notes kept per organisation (table ``{{module}}_note``),
the service ``tx.{{module}}``, the permission ``{{module}}.write``, the event hook
``ngo_kit_{{module}}_note_added`` and its own migration branch. Installed, it is found through
the ``ngo_kit`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ngo_kit import Module, Permission, hookimpl
from {{package}} import hookspecs
from {{package}}.service import WRITE, {{Class}}Service

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.plugins import Registrar
    from ngo_kit.tenancy import OrgRead

__version__ = "0.1.0"
HERE = Path(__file__).parent

MODULE = Module(
    name="{{module}}",
    version=__version__,
    description="{{title}}",
    service={{Class}}Service,
    models="{{package}}.models",
    hookspecs=hookspecs,
    migrations=HERE / "migrations" / "versions",
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the ``{{module}}`` module."""
    register(MODULE)


@hookimpl
def ngo_kit_register_permissions(register: Registrar[Permission]) -> None:
    """Staff may add notes (owners and admins hold every permission)."""
    register(Permission(WRITE, "add {{title}} notes", default_roles=("staff",)))


@hookimpl
def ngo_kit_org_created(tx: Context, org: OrgRead) -> None:
    """Start every new organisation with a welcome note, in the creating transaction."""
    with tx.elevated():
        tx.service("{{module}}").add_note(text=f"Welcome to {{title}}, {org.name}")
'''

MODELS = '''\
"""The module's tables: ``{{module}}_<noun>``, with ``org_id`` on every tenant-owned row."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin


class {{Class}}Note(IdMixin, OrgMixin, TimestampMixin, Base):
    """A note of one organisation."""

    __tablename__ = "{{module}}_note"

    text: Mapped[str] = mapped_column(sa.String(500))
'''

SCHEMAS = '''\
"""The boundary: input models refuse bad data with ``ValidationFailed``; read models go out."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, Field

from ngo_kit.schemas import InputModel, ReadModel, no_control_characters


class NoteIn(InputModel):
    """A note to add."""

    text: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(no_control_characters)]


class NoteRead(ReadModel):
    """A note as the service returns it."""

    id: uuid.UUID
    text: str
    created_at: dt.datetime
'''

HOOKSPECS = '''\
"""The events this module fires; other plugins implement them with ``@hookimpl``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngo_kit import hookspec

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from {{package}}.schemas import NoteRead


@hookspec
def ngo_kit_{{module}}_note_added(tx: Context, note: NoteRead) -> None:
    """Event: a note was added, inside the adding transaction. Returns nothing."""
'''

SERVICE = '''\
"""``tx.{{module}}``: the module's rules, the only place that writes its tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.schemas import coerce
from {{package}}.models import {{Class}}Note
from {{package}}.schemas import NoteIn, NoteRead

if TYPE_CHECKING:
    from ngo_kit.context import Context

WRITE = "{{module}}.write"
_NOTE = cast("sa.Table", {{Class}}Note.__table__)


class {{Class}}Service:
    """Notes of the organisation the ``tx`` is bound to."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    def add_note(self, data: NoteIn | dict[str, Any] | None = None, /, **kwargs: Any) -> NoteRead:
        """Add a note (``{{module}}.write``); fires ``ngo_kit_{{module}}_note_added``.

        Raises ``ValidationFailed`` for bad input and ``PermissionDenied`` without the right.
        """
        spec = coerce(NoteIn, data, kwargs)
        self.tx.require(WRITE)
        values = {
            "id": new_id(),
            "org_id": self.tx.org_id,
            "text": spec.text,
            "created_at": utcnow(),
        }
        self.tx.connection.execute(sa.insert(_NOTE).values(**values))
        note = NoteRead.model_validate(values)
        self.tx.audit("{{module}}.note_added", "{{module}}_note", note.id, spec.text[:100])
        self.tx.emit("ngo_kit_{{module}}_note_added", note=note)
        return note

    def list_notes(self) -> list[NoteRead]:
        """The organisation's notes, oldest first."""
        rows = self.tx.connection.execute(
            sa.select(_NOTE.c.id, _NOTE.c.text, _NOTE.c.created_at)
            .where(_NOTE.c.org_id == self.tx.org_id)
            .order_by(_NOTE.c.created_at, _NOTE.c.id)
        )
        return [NoteRead.model_validate(row._mapping) for row in rows]
'''

TESTS = '''\
"""Tests of the {{module}} module, with the fixtures ngo-kit ships (``ngo_kit.testing``)."""

from __future__ import annotations

import uuid
from typing import Any

import {{package}}
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ngo_kit import SYSTEM, Kit, PermissionDenied, ValidationFailed, hookimpl
from ngo_kit.testing import KitFactory


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    """A kit with only this plugin's module, on an empty migrated database."""
    return kit_factory(modules=["{{module}}"], plugins=[{{package}}])


def test_a_new_organisation_starts_with_a_welcome_note(kit: Kit) -> None:
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        [note] = tx.{{module}}.list_notes()
    assert note.text == "Welcome to {{title}}, Rainbow Aid"


def test_staff_add_notes_and_listeners_hear_of_them(kit_factory: KitFactory) -> None:
    heard: list[str] = []

    class Listener:
        @hookimpl
        def ngo_kit_{{module}}_note_added(self, tx: Any, note: Any) -> None:
            heard.append(note.text)

    kit = kit_factory(modules=["{{module}}"], plugins=[{{package}}, Listener()])
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    staff = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(staff, "staff")
    with kit.begin(org=org, actor=staff) as tx:
        tx.{{module}}.add_note(text="Doors open at nine")
    with kit.begin(org=org, actor=staff) as tx:
        assert [n.text for n in tx.{{module}}.list_notes()][-1] == "Doors open at nine"
    assert heard[-1] == "Doors open at nine"
    assert kit.verify() == []  # the audit chain holds the note


def test_notes_stay_in_their_organisation(kit: Kit) -> None:
    rainbow = kit.create_organisation("rainbow", "Rainbow Aid")
    sunrise = kit.create_organisation("sunrise", "Sunrise Relief")
    with kit.begin(org=rainbow, actor=SYSTEM) as tx:
        tx.{{module}}.add_note(text="only for rainbow")
    with kit.begin(org=sunrise, actor=SYSTEM) as tx:
        assert "only for rainbow" not in [n.text for n in tx.{{module}}.list_notes()]


def test_adding_a_note_needs_the_permission(kit: Kit) -> None:
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=uuid.uuid4()) as tx, pytest.raises(PermissionDenied) as caught:
        tx.{{module}}.add_note(text="not a member")
    assert caught.value.permission == "{{module}}.write"


def test_bad_input_names_the_field_and_rule(kit: Kit) -> None:
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=SYSTEM) as tx, pytest.raises(ValidationFailed) as caught:
        tx.{{module}}.add_note(text="")
    assert (caught.value.field, caught.value.rule) == ("text", "string_too_short")


def test_the_migrations_create_exactly_the_models(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["{{module}}"], plugins=[{{package}}], upgrade=False)
    kit.upgrade()
    assert "{{module}}_note" in sa.inspect(kit.engine).get_table_names()
    with kit.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, kit.metadata()) == []
'''

GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
*.db
"""

# --- ngo-kit new-plugin NAME --no-tables: a plugin that only reacts to events -------------

README_NO_TABLES = """\
# {{dist}}

An [ngo-kit](https://pypi.org/project/ngo-kit/) plugin providing the `{{module}}` module, which
only reacts to events: it has no tables and no migrations. When an organisation is created, it
emails the platform's operators (`OPERATORS` in `src/{{package}}/__init__.py`: change it)
through the outbox, after the creating transaction commits.

| file | what it holds |
| --- | --- |
| `pyproject.toml` | the package, and its entry point in the `ngo_kit` group |
| `src/{{package}}/__init__.py` | the `Module` object (no models, no migrations) and the hook implementation |
| `tests/` | tests using ngo-kit's pytest fixtures |

A module without tables is a valid module: it still gives the hooks it implements a name to
enable and disable (`Kit(modules=[...])`), and can declare permissions and the modules it
`requires`. A hook on another module's event (say `ngo_kit_hours_approved` of `volunteer`)
needs `requires=("volunteer",)`, so a kit without that module refuses the plugin at start-up
instead of failing on the first event.

## Develop

```console
$ pip install -e .
$ python -m pytest
$ ngo-kit plugins                       # lists {{module}} [{{dist}} 0.1.0]
```

When the module needs tables after all, add `models.py` and a migrations folder as
`ngo-kit new-plugin` (without `--no-tables`) lays them out.
"""

INIT_NO_TABLES = '''\
"""{{dist}}: {{title}}, an ngo-kit plugin that reacts to events.

It provides the ``{{module}}`` module, which has no tables and no migrations: it implements
``ngo_kit_org_created`` and emails the platform's operators about each new organisation,
through the outbox, after the creating transaction commits. Installed, it is found through the
``ngo_kit`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngo_kit import Module, hookimpl

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.plugins import Registrar
    from ngo_kit.tenancy import OrgRead

__version__ = "0.1.0"

#: who hears of each new organisation (change it to your operators' address)
OPERATORS = "operators@example.org"

MODULE = Module(
    name="{{module}}",
    version=__version__,
    description="{{title}}",
    sends_messages=True,
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the ``{{module}}`` module (no tables, no migrations)."""
    register(MODULE)


@hookimpl
def ngo_kit_org_created(tx: Context, org: OrgRead) -> None:
    """Email the operators about a new organisation (sent once the creation commits)."""
    tx.send(
        "email",
        OPERATORS,
        f"New organisation: {org.name}",
        f"{org.name} ({org.slug}) was created on the platform.",
    )
'''

TESTS_NO_TABLES = '''\
"""Tests of the {{module}} module, with the fixtures ngo-kit ships."""

from __future__ import annotations

import {{package}}
import pytest

from ngo_kit import Kit
from ngo_kit.outbox import OutboxMessage
from ngo_kit.testing import KitFactory


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    """A kit with only this plugin's module, on an empty migrated database."""
    return kit_factory(modules=["{{module}}"], plugins=[{{package}}])


def test_operators_hear_of_each_new_organisation(
    kit: Kit, delivered_messages: list[OutboxMessage]
) -> None:
    kit.create_organisation("rainbow", "Rainbow Aid")
    [message] = [m for m in delivered_messages if m.recipient == {{package}}.OPERATORS]
    assert (message.channel, message.subject) == ("email", "New organisation: Rainbow Aid")


def test_the_module_has_no_tables(kit: Kit) -> None:
    assert kit.tables_by_module()["{{module}}"] == []
    assert "{{module}}" not in kit.version_locations()
'''

#: Relative path (with tokens) -> file content (with tokens).
FILES: dict[str, str] = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    ".gitignore": GITIGNORE,
    "src/{{package}}/__init__.py": INIT,
    "src/{{package}}/py.typed": "",
    "src/{{package}}/models.py": MODELS,
    "src/{{package}}/schemas.py": SCHEMAS,
    "src/{{package}}/hookspecs.py": HOOKSPECS,
    "src/{{package}}/service.py": SERVICE,
    "src/{{package}}/migrations/versions/.keep": "",
    "tests/test_{{module}}.py": TESTS,
}

#: The files of ``ngo-kit new-plugin NAME --no-tables``.
FILES_NO_TABLES: dict[str, str] = {
    "pyproject.toml": PYPROJECT.replace(
        '{{package}} = ["py.typed", "migrations/versions/*.py"]', '{{package}} = ["py.typed"]'
    ),
    "README.md": README_NO_TABLES,
    ".gitignore": GITIGNORE,
    "src/{{package}}/__init__.py": INIT_NO_TABLES,
    "src/{{package}}/py.typed": "",
    "tests/test_{{module}}.py": TESTS_NO_TABLES,
}
