"""Alembic environment for ngo-kit: the kit in ``config.attributes`` supplies engine and models."""

from __future__ import annotations

from typing import Any

from alembic import context

from ngo_kit.migrations import VERSION_TABLE

config = context.config
kit = config.attributes["kit"]
only_module = config.attributes.get("only_module")
target_metadata = kit.metadata()


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate looks only at the tables of the module being revised (or all enabled)."""
    if type_ != "table" or name is None:
        return True
    if name == VERSION_TABLE:
        return False
    if only_module is None:
        return name in target_metadata.tables
    from ngo_kit.plugins import tables_by_module

    owned = tables_by_module(["core", *kit.modules]).get(only_module, [])
    return name in owned


def run_migrations_online() -> None:
    with kit.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=include_object,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():
            connection.commit()


if context.is_offline_mode():
    raise SystemExit("ngo-kit runs migrations online only: ngo-kit db upgrade")
run_migrations_online()
