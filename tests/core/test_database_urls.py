"""Database URLs: each form picks ngo-kit's driver and its set-up for that database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ngo_kit import Kit
from ngo_kit.kit import normalise_url


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@db/ngo", "postgresql+psycopg"),
        ("postgres://u@db/ngo", "postgresql+psycopg"),
        ("mysql://u@db/ngo", "mysql+pymysql"),
        ("mariadb://u@db/ngo", "mysql+pymysql"),
        ("mariadb+pymysql://u@db/ngo", "mysql+pymysql"),
        ("mysql+pymysql://u@db/ngo", "mysql+pymysql"),
        ("sqlite:///ngo.db", "sqlite"),
    ],
)
def test_every_url_form_gets_the_driver_ngo_kit_sets_up(given: str, driver: str) -> None:
    assert normalise_url(given).drivername == driver


def test_mysql_sessions_read_committed_rows_in_utf8mb4(kit: Kit) -> None:
    if kit.engine.dialect.name != "mysql":
        pytest.skip("MySQL/MariaDB's session set-up")
    with kit.engine.connect() as conn:
        rows = conn.execute(  # tx_isolation on MariaDB 10, transaction_isolation on MySQL 8
            sa.text(
                "SHOW SESSION VARIABLES WHERE variable_name IN "
                "('tx_isolation', 'transaction_isolation')"
            )
        )
        levels = {str(name): str(value) for name, value in rows}
        charset = conn.scalar(sa.text("SELECT @@character_set_connection"))
    assert levels and set(levels.values()) == {"READ-COMMITTED"}
    assert charset == "utf8mb4"
