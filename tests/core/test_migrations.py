"""Migrations: an upgraded empty database matches the models, and the commands work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit import ConfigurationError, Kit, Module, hookimpl, migrations
from ngo_kit.db import Base, IdMixin, OrgMixin, new_id
from ngo_kit.testing import KitFactory


class SampleNote(IdMixin, OrgMixin, Base):
    """A table of a plugin module that exists only in these tests."""

    __tablename__ = "sample_note"

    text: Mapped[str] = mapped_column(sa.String(100))


class SampleNoteTag(IdMixin, OrgMixin, Base):
    """A table of a second test module, ``sample_note``, whose name starts with ``sample_``."""

    __tablename__ = "sample_note_tag"

    tag: Mapped[str] = mapped_column(sa.String(20))


def drift(kit: Kit) -> list[object]:
    with kit.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, kit.metadata()))


@pytest.mark.parametrize("modules", [[], None], ids=["core", "all-modules"])
def test_upgraded_schema_equals_the_models(
    kit_factory: KitFactory, modules: list[str] | None
) -> None:
    kit = kit_factory(modules=modules, upgrade=False)
    assert migrations.pending_heads(kit) == migrations.heads(kit)
    kit.upgrade()
    assert drift(kit) == []
    assert migrations.pending_heads(kit) == []
    tables = set(sa.inspect(kit.engine).get_table_names())
    assert set(kit.table_names()) <= tables


def test_each_enabled_module_has_its_own_branch(kit_factory: KitFactory) -> None:
    kit = kit_factory(upgrade=False)
    assert set(kit.version_locations()) == {
        "core",
        *(m for m in kit.modules if kit.modules[m].migrations),
    }
    history = migrations.history(kit)
    assert "(core)" in history


@pytest.mark.parametrize("modules", [[], None], ids=["core", "all-modules"])
def test_downgrade_to_base_removes_every_table(
    kit_factory: KitFactory, modules: list[str] | None
) -> None:
    kit = kit_factory(modules=modules, upgrade=False)
    kit.upgrade()
    migrations.downgrade(kit, "base")
    assert migrations.current(kit) == []
    assert not set(kit.table_names()) & set(sa.inspect(kit.engine).get_table_names())


def test_a_database_with_unknown_module_migrations_is_refused(
    kit_factory: KitFactory, empty_database_url: str
) -> None:
    kit = kit_factory(modules=[], upgrade=False)
    kit.upgrade()
    with kit.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('feedfacecafe')"))
    with pytest.raises(ConfigurationError) as info:
        kit.upgrade()
    assert info.value.check == "core.E014"
    assert "feedfacecafe" in str(info.value)


def test_revision_for_a_module_that_is_not_enabled_is_refused(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[], upgrade=False)
    with pytest.raises(ConfigurationError) as info:
        migrations.revision(kit, "nonexistent", "x")
    assert info.value.check == "core.E003"


def test_a_plugin_module_ships_its_own_migration_branch(
    kit_factory: KitFactory, tmp_path: Path
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()

    class SamplePlugin:
        ngo_kit_plugin_name = "sample-migrations"

        @hookimpl
        def ngo_kit_register_modules(self, register: Any) -> None:
            register(Module("sample", migrations=versions))

    kit = kit_factory(modules=["sample"], plugins=[SamplePlugin()], upgrade=False)
    kit.upgrade()  # core only: the sample branch has no revision yet
    path = Path(migrations.revision(kit, "sample", "sample tables"))
    assert path.parent == versions
    text = path.read_text()
    assert "('sample',)" in text and "sample_note" in text
    assert "core_audit" not in text  # autogenerate looked at the sample module's tables only
    kit.upgrade()
    assert drift(kit) == []
    org = kit.create_organisation("notes", "Notes")
    with kit.begin(org=org) as tx:
        tx.session.execute(sa.insert(SampleNote).values(id=new_id(), org_id=org.id, text="hi"))
    migrations.downgrade(kit, "sample@base")
    assert "sample_note" not in sa.inspect(kit.engine).get_table_names()


def test_a_disabled_modules_tables_are_not_taken_for_an_enabled_prefix_module(
    kit_factory: KitFactory,
) -> None:
    class Provider:
        ngo_kit_plugin_name = "prefix-modules"

        @hookimpl
        def ngo_kit_register_modules(self, register: Any) -> None:
            register(Module("sample"))
            register(Module("sample_note"))  # would own "sample_note_*" tables

    kit = kit_factory(modules=["sample"], plugins=[Provider()], upgrade=False)
    assert kit.tables_by_module()["sample"] == ["sample_note"]  # not sample_note's table
    assert "sample_note_tag" not in kit.table_names()
    both = kit_factory(modules=["sample", "sample_note"], plugins=[Provider()], upgrade=False)
    assert both.tables_by_module()["sample_note"] == ["sample_note_tag"]
