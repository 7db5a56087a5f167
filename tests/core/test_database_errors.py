"""Driver errors become ngo-kit errors by their code (SQLSTATE, error number), not their text."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, ConfigurationError, Kit
from ngo_kit.context import translate_database_errors
from ngo_kit.errors import Conflict, DatabaseUnavailable, NgoKitError


def translated(orig: Exception) -> NgoKitError:
    return translate_database_errors(sa.exc.ProgrammingError("SELECT ...", {}, orig))


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.InvalidSqlStatementName('prepared statement "_pg3_3" does not exist'),
        psycopg.errors.DuplicatePreparedStatement('prepared statement "_pg3_0" already exists'),
        psycopg.errors.ProtocolViolation(
            'bind message supplies 4 parameters, but prepared statement "_pg3_2" requires 5'
        ),
    ],
    ids=["26000", "42P05", "08P01"],
)
def test_prepared_statements_mixed_up_by_a_pooler_are_named_as_such(orig: Exception) -> None:
    error = translated(orig)
    assert isinstance(error, ConfigurationError) and error.check == "core.E018"
    assert f"SQLSTATE {orig.sqlstate}" in error.message_in("en")  # type: ignore[attr-defined]
    assert "NGO_KIT_POSTGRES_PREPARE_THRESHOLD" in error.message_in("en")
    assert "连接池" in error.message_in("zh_CN")


def test_a_missing_table_or_column_is_a_database_not_migrated() -> None:
    for orig in (
        psycopg.errors.UndefinedTable('relation "points_account" does not exist'),
        psycopg.errors.UndefinedColumn('column "kind" does not exist'),
    ):
        error = translated(orig)
        assert isinstance(error, ConfigurationError) and error.check == "core.E015"


def test_the_text_of_an_error_decides_nothing() -> None:
    """A refusal that merely says "does not exist" (a role, here) is not a missing migration."""
    error = translated(psycopg.errors.InvalidAuthorizationSpecification('role "x" does not exist'))
    assert not isinstance(error, ConfigurationError)
    assert isinstance(error, Conflict)


def test_a_connection_lost_on_the_client_side_is_database_unavailable() -> None:
    lost = sa.exc.OperationalError(
        "SELECT 1", {}, psycopg.OperationalError("consuming input failed")
    )
    assert isinstance(translate_database_errors(lost), DatabaseUnavailable)


def test_a_missing_prepared_statement_on_postgresql_is_a_pooler_misconfiguration(
    kit: Kit,
) -> None:
    if kit.engine.dialect.name != "postgresql":
        pytest.skip("prepared statements by name are PostgreSQL's")
    with pytest.raises(ConfigurationError) as caught, kit.begin(actor=SYSTEM) as tx:
        tx.connection.exec_driver_sql("EXECUTE _pg3_0")
    assert caught.value.check == "core.E018"


def test_a_missing_table_is_still_a_database_not_migrated(kit: Kit) -> None:
    with pytest.raises(ConfigurationError) as caught, kit.begin(actor=SYSTEM) as tx:
        tx.connection.execute(sa.text("SELECT * FROM no_such_table"))
    assert caught.value.check == "core.E015"
