"""Start-up refuses unsafe or broken settings."""

from __future__ import annotations

import pytest

from ngo_kit import ConfigurationError, Kit, KitSettings, Module, hookimpl
from ngo_kit.testing import KitFactory


def test_the_default_secret_is_refused_outside_development(tmp_path: object) -> None:
    settings = KitSettings(environment="production", database_url="sqlite://")
    with pytest.raises(ConfigurationError) as info:
        Kit(settings=settings, modules=[], autoload=False)
    assert info.value.check == "core.E012"


def test_the_default_secret_is_fine_in_development() -> None:
    kit = Kit(
        settings=KitSettings(environment="development", database_url="sqlite://"),
        modules=[],
        autoload=False,
    )
    assert kit.settings.uses_default_secret


def test_secret_keys_come_from_the_environment_newest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NGO_KIT_SECRET_KEYS", "new-key, old-key")
    keys = [k.get_secret_value() for k in KitSettings().secret_keys]
    assert keys == ["new-key", "old-key"]


def test_production_refuses_to_start_with_only_the_console_channel(kit_factory: KitFactory) -> None:
    class Sender:
        ngo_kit_plugin_name = "sender"

        @hookimpl
        def ngo_kit_register_modules(self, register: object) -> None:
            register(Module("sender", sends_messages=True))  # type: ignore[operator]

    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=["sender"], plugins=[Sender()], upgrade=False, environment="production")
    assert info.value.check == "core.E007"
    assert "sender" in str(info.value)


def test_pool_settings_reach_the_engine(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[], upgrade=False)
    if kit.engine.dialect.name == "sqlite":
        pytest.skip("SQLite files are not pooled over a network")
    server = kit_factory(modules=[], upgrade=False, pool_pre_ping=True, pool_recycle_seconds=60)
    assert server.engine.pool._pre_ping is True
    assert server.engine.pool._recycle == 60
    assert kit.engine.pool._pre_ping is False


@pytest.mark.parametrize(("value", "expected"), [("", None), ("none", None), ("5", 5)])
def test_the_prepare_threshold_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None
) -> None:
    monkeypatch.setenv("NGO_KIT_POSTGRES_PREPARE_THRESHOLD", value)
    assert KitSettings().postgres_prepare_threshold == expected


def test_postgresql_connections_prepare_no_statements_unless_asked(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=[], upgrade=False)
    if kit.engine.dialect.name != "postgresql":
        pytest.skip("psycopg's prepare_threshold is PostgreSQL's")
    eager = kit_factory(modules=[], upgrade=False, postgres_prepare_threshold=2)
    with kit.engine.connect() as conn, eager.engine.connect() as eager_conn:
        assert conn.connection.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
        assert eager_conn.connection.driver_connection.prepare_threshold == 2  # type: ignore[union-attr]
