"""The pytest plugin's databases: each kit gets an empty, migrated one, whatever ran before."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit
from ngo_kit.tenancy import Organisation
from ngo_kit.testing import DatabaseProvider, settings_for_tests


def build(url: str) -> None:
    kit = Kit(settings=settings_for_tests(url), modules=[], autoload=False)
    kit.upgrade()
    kit.dispose()


def test_a_database_handed_out_again_is_empty_but_still_migrated(
    ngo_kit_databases: DatabaseProvider,
) -> None:
    key = ("test_test_databases",)
    url = ngo_kit_databases.acquire(key, build)
    kit = Kit(settings=settings_for_tests(url), modules=[], autoload=False)
    kit.create_organisation("leftover", "Left over")
    with kit.begin(org="leftover", actor=SYSTEM) as tx:
        tx.audit("test.wrote", "thing", "1", "a row the next test must not see")
    kit.dispose()
    ngo_kit_databases.release(key, url)

    again = ngo_kit_databases.acquire(key, build)
    kit = Kit(settings=settings_for_tests(again), modules=[], autoload=False)
    try:
        with kit.engine.connect() as conn:
            for table in kit.table_names():
                count = conn.scalar(sa.select(sa.func.count()).select_from(sa.table(table)))
                assert count == 0, table
        made = kit.create_organisation("leftover", "Made again")  # the schema is still there
        assert made.slug == "leftover"
        assert kit.verify() == []  # chains start again from the beginning
        with kit.begin(actor=SYSTEM) as tx:
            assert tx.connection.scalar(sa.select(sa.func.count()).select_from(Organisation)) == 1
    finally:
        kit.dispose()
        ngo_kit_databases.release(key, again)


def schema_of(url: str) -> dict[str, Any]:
    """Tables with their columns, keys, indexes and foreign keys, and the migration versions."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = {
                name: (
                    [
                        (c["name"], str(c["type"]), c["nullable"])
                        for c in inspector.get_columns(name)
                    ],
                    inspector.get_pk_constraint(name)["constrained_columns"],
                    sorted(
                        (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(name)
                    ),
                    sorted(
                        (u["name"], tuple(u["column_names"]))
                        for u in inspector.get_unique_constraints(name)
                    ),
                    sorted(
                        (f["name"], f["referred_table"], tuple(f["constrained_columns"]))
                        for f in inspector.get_foreign_keys(name)
                    ),
                )
                for name in inspector.get_table_names()
            }
            versions = sorted(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()
    return {"tables": tables, "versions": versions}


def test_a_second_database_for_the_same_modules_has_the_same_schema(
    ngo_kit_databases: DatabaseProvider,
) -> None:
    key = ("test_test_databases", "two at once")

    def build_all(url: str) -> None:
        kit = Kit(settings=settings_for_tests(url), autoload=False)
        kit.upgrade()
        kit.dispose()

    first = ngo_kit_databases.acquire(key, build_all)
    second = ngo_kit_databases.acquire(key, build_all)  # made while the first is in use
    try:
        assert second != first
        assert schema_of(second) == schema_of(first)
        kit = Kit(settings=settings_for_tests(second), autoload=False)
        kit.create_organisation("works", "Works")
        assert kit.verify() == []
        kit.dispose()
    finally:
        ngo_kit_databases.release(key, first)
        ngo_kit_databases.release(key, second)
