"""Settings come from NGO_KIT_SMTP_*; a bad one stops the kit at start-up, naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ngo_kit_smtp import SmtpChannel, SmtpSettings, load_settings, plugin

from ngo_kit import ConfigurationError, Module, hookimpl
from ngo_kit.plugins import Registrar
from ngo_kit.testing import KitFactory


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("NGO_KIT_SMTP_"):
            monkeypatch.delenv(name)


def configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    defaults = {"HOST": "smtp.example.org", "FROM": "Relief Hub <noreply@example.org>"}
    for name, value in {**defaults, **values}.items():
        monkeypatch.setenv(f"NGO_KIT_SMTP_{name}", value)


def refused(kit_factory: KitFactory) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        kit_factory(modules=[], plugins=[plugin], upgrade=False)
    return caught.value


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, PORT="2525", TLS="tls", USERNAME="hub", PASSWORD="pw", TIMEOUT="3.5")
    settings = load_settings()
    assert (settings.host, settings.effective_port, settings.tls) == (
        "smtp.example.org",
        2525,
        "tls",
    )
    assert (settings.username, settings.password.get_secret_value()) == ("hub", "pw")
    assert settings.timeout == 3.5
    assert settings.sender == "noreply@example.org"
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(("tls", "port"), [("none", 25), ("starttls", 587), ("tls", 465)])
def test_the_port_defaults_to_the_usual_one_for_the_tls_mode(tls: str, port: int) -> None:
    assert SmtpSettings(host="h", from_address="a@example.org", tls=tls).effective_port == port


def test_without_a_host_the_plugin_stays_out_of_the_way(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from ngo_kit import SYSTEM

    kit = kit_factory(modules=[], plugins=[plugin], catch_messages=False)
    assert "email" not in kit.channels
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Hello", "printed instead")
    assert kit.outbox.status(message_id).receipt == "console"
    assert "printed instead" in capsys.readouterr().out


def test_a_configured_plugin_registers_a_production_ready_email_channel(
    kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch)
    kit = kit_factory(modules=[], plugins=[plugin], upgrade=False)
    channel = kit.channels["email"]
    assert channel.production_ready
    assert channel.description == "SMTP via smtp.example.org:587 (starttls)"


class Mailer:
    """A module that sends messages, so production needs a real channel."""

    ngo_kit_plugin_name = "mailer"

    @hookimpl
    def ngo_kit_register_modules(self, register: Registrar[Module]) -> None:
        register(Module("mailer", sends_messages=True))


def test_production_starts_only_with_smtp_configured(
    kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    make: dict[str, Any] = {
        "modules": ["mailer"],
        "plugins": [Mailer(), plugin],
        "upgrade": False,
        "environment": "production",
    }
    with pytest.raises(ConfigurationError) as caught:
        kit_factory(**make)
    assert caught.value.check == "core.E007"
    configure(monkeypatch)
    assert kit_factory(**make).channels["email"].production_ready


@pytest.mark.parametrize(
    ("values", "check", "named"),
    [
        ({"TLS": "ssl"}, "smtp.E001", "NGO_KIT_SMTP_TLS"),
        ({"PORT": "70000"}, "smtp.E001", "NGO_KIT_SMTP_PORT"),
        ({"PORT": "smtp"}, "smtp.E001", "NGO_KIT_SMTP_PORT"),
        ({"TIMEOUT": "0"}, "smtp.E001", "NGO_KIT_SMTP_TIMEOUT"),
        ({"HOST": "", "PORT": "25"}, "smtp.E002", "NGO_KIT_SMTP_PORT"),
        ({"FROM": ""}, "smtp.E003", "NGO_KIT_SMTP_FROM"),
        ({"FROM": "noreply"}, "smtp.E003", "NGO_KIT_SMTP_FROM"),
        ({"USERNAME": "hub"}, "smtp.E004", "NGO_KIT_SMTP_PASSWORD"),
        ({"PASSWORD": "pw"}, "smtp.E004", "NGO_KIT_SMTP_USERNAME"),
        ({"USERNAME": "hub", "PASSWORD": "密码"}, "smtp.E004", "ASCII"),
        ({"USERNAME": "hub", "PASSWORD": "pw", "TLS": "none"}, "smtp.E005", "unencrypted"),
        ({"CA_FILE": "/nowhere/ca.pem"}, "smtp.E006", "/nowhere/ca.pem"),
    ],
)
def test_a_bad_setting_stops_the_kit_naming_it(
    kit_factory: KitFactory,
    monkeypatch: pytest.MonkeyPatch,
    values: dict[str, str],
    check: str,
    named: str,
) -> None:
    configure(monkeypatch, **values)
    error = refused(kit_factory)
    assert error.check == check
    assert named in str(error)
    assert "\n" not in str(error)


def test_a_password_without_tls_is_allowed_to_a_relay_on_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(monkeypatch, HOST="127.0.0.1", USERNAME="hub", PASSWORD="pw", TLS="none")
    assert load_settings().tls == "none"


def test_settings_given_in_code_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SmtpChannel(SmtpSettings(host="smtp.example.org"))
    assert caught.value.check == "smtp.E003"
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate")
    channel = SmtpChannel(SmtpSettings(host="h", from_address="a@example.org", ca_file=ca))
    assert channel.settings().ca_file == ca
