"""Endpoints are an organisation's data: validated, permission-checked, audited, isolated."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import ngo_kit_webhooks
import pytest
import sqlalchemy as sa
from ngo_kit_webhooks.models import WebhookEndpoint

from ngo_kit import (
    SYSTEM,
    AlreadyExists,
    ConfigurationError,
    Kit,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from ngo_kit import migrations as kit_migrations
from ngo_kit.audit import AuditEntry
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory

URL = "https://hooks.example.org/ngo"


@pytest.fixture(autouse=True)
def strict_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NGO_KIT_WEBHOOKS_ALLOW_LOCAL", raising=False)


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    return kit_factory(modules=["webhooks"], plugins=[ngo_kit_webhooks])


@pytest.fixture
def org(kit: Kit) -> OrgRead:
    return kit.create_organisation("rainbow", "Rainbow Aid")


@pytest.fixture
def other_org(kit: Kit) -> OrgRead:
    return kit.create_organisation("sunrise", "Sunrise Relief")


def as_system(kit: Kit, org: OrgRead) -> Any:
    return kit.begin(org=org, actor=SYSTEM)


def test_an_endpoint_is_added_with_a_generated_secret_and_audited_without_it(
    kit: Kit, org: OrgRead
) -> None:
    with as_system(kit, org) as tx:
        created = tx.webhooks.add_endpoint(
            url=URL, events=["stock_moved", "points_awarded", "stock_moved"], description="CRM"
        )
        assert created.secret.startswith("whsec_") and len(created.secret) > 40
        assert created.events == ["points_awarded", "stock_moved"]  # sorted, no duplicates
        [listed] = tx.webhooks.list_endpoints()
        assert listed.id == created.id and not hasattr(listed, "secret")
        tx.flush_audit()  # audit entries are otherwise appended at commit
        audit = tx.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "webhooks.endpoint_added")
        ).one()
    assert created.secret not in str(audit.data) and created.secret not in audit.summary
    assert kit.verify() == []


def test_an_own_secret_can_be_given_and_rotated(kit: Kit, org: OrgRead) -> None:
    with as_system(kit, org) as tx:
        created = tx.webhooks.add_endpoint(
            url=URL, events=["org_created"], secret="my-own-secret-1234"
        )
        assert created.secret == "my-own-secret-1234"
        rotated = tx.webhooks.rotate_secret(created.id)
        stored = tx.session.scalar(sa.select(WebhookEndpoint.secret))
    assert rotated.secret != created.secret and stored == rotated.secret


def test_endpoints_are_changed_and_removed(kit: Kit, org: OrgRead) -> None:
    with as_system(kit, org) as tx:
        endpoint = tx.webhooks.add_endpoint(url=URL, events=["points_awarded"])
        changed = tx.webhooks.update_endpoint(endpoint.id, events=["hours_approved"], active=False)
        assert (changed.events, changed.active, changed.url) == (["hours_approved"], False, URL)
        tx.webhooks.remove_endpoint(endpoint.id)
        assert tx.webhooks.list_endpoints() == []
        with pytest.raises(NotFound):
            tx.webhooks.get_endpoint(endpoint.id)


def test_one_url_once_per_organisation(kit: Kit, org: OrgRead, other_org: OrgRead) -> None:
    with as_system(kit, org) as tx:
        tx.webhooks.add_endpoint(url=URL, events=["points_awarded"])
        with pytest.raises(AlreadyExists):
            tx.webhooks.add_endpoint(url=URL, events=["stock_moved"])
        assert len(tx.webhooks.list_endpoints()) == 1  # the transaction is still usable
    with as_system(kit, other_org) as tx:
        tx.webhooks.add_endpoint(url=URL, events=["points_awarded"])  # another organisation may


@pytest.mark.parametrize(
    ("values", "field", "rule"),
    [
        ({"url": "ftp://example.org/x"}, "url", "url_invalid"),
        ({"url": "https://user:pw@example.org/x"}, "url", "url_credentials"),
        ({"url": "http://example.org/hook"}, "url", "https_required"),
        ({"url": "https://10.0.0.8/hook"}, "url", "local_address"),
        ({"url": "https://[::1]/hook"}, "url", "local_address"),
        ({"events": []}, "events", "too_short"),
        ({"events": ["points_spent"]}, "events", "unknown_event"),
        ({"secret": "short"}, "secret", "string_too_short"),
        ({"description": "line\nbreak"}, "description", "control_characters"),
    ],
)
def test_bad_input_is_refused_naming_field_and_rule(
    kit: Kit, org: OrgRead, values: dict[str, Any], field: str, rule: str
) -> None:
    data = {"url": URL, "events": ["points_awarded"], **values}
    with as_system(kit, org) as tx, pytest.raises(ValidationFailed) as caught:
        tx.webhooks.add_endpoint(data)
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_local_urls_are_allowed_with_allow_local(
    kit: Kit, org: OrgRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NGO_KIT_WEBHOOKS_ALLOW_LOCAL", "1")
    with as_system(kit, org) as tx:
        assert tx.webhooks.add_endpoint(url="http://127.0.0.1:8000/x", events=["org_created"])


def test_a_bad_setting_is_a_configuration_error(
    kit: Kit, org: OrgRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NGO_KIT_WEBHOOKS_TIMEOUT", "-1")
    with as_system(kit, org) as tx, pytest.raises(ConfigurationError) as caught:
        tx.webhooks.add_endpoint(url=URL, events=["org_created"])
    assert caught.value.check == "webhooks.E001"
    assert "NGO_KIT_WEBHOOKS_TIMEOUT" in str(caught.value)


def test_managing_endpoints_needs_webhooks_manage(kit: Kit, org: OrgRead) -> None:
    staff, owner = uuid.uuid4(), uuid.uuid4()
    with as_system(kit, org) as tx:
        tx.tenancy.add_member(staff, "staff")
        tx.tenancy.add_member(owner, "owner")
        endpoint = tx.webhooks.add_endpoint(url=URL, events=["org_created"])
    with kit.begin(org=org, actor=staff) as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.webhooks.add_endpoint(url=URL + "/2", events=["org_created"]),
            lambda: tx.webhooks.list_endpoints(),
            lambda: tx.webhooks.get_endpoint(endpoint.id),
            lambda: tx.webhooks.update_endpoint(endpoint.id, active=False),
            lambda: tx.webhooks.rotate_secret(endpoint.id),
            lambda: tx.webhooks.remove_endpoint(endpoint.id),
            lambda: tx.webhooks.publish("org_created", org={"forged": True}),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied) as caught:
                call()
            assert caught.value.permission == "webhooks.manage"
    with kit.begin(org=org, actor=owner) as tx:
        assert [e.id for e in tx.webhooks.list_endpoints()] == [endpoint.id]


def test_another_organisations_endpoint_is_not_found(
    kit: Kit, org: OrgRead, other_org: OrgRead
) -> None:
    with as_system(kit, other_org) as tx:
        theirs = tx.webhooks.add_endpoint(url=URL, events=["org_created"])
    with as_system(kit, org) as tx:
        assert tx.webhooks.list_endpoints() == []
        calls: list[Callable[[], object]] = [
            lambda: tx.webhooks.get_endpoint(theirs.id),
            lambda: tx.webhooks.update_endpoint(theirs.id, active=False),
            lambda: tx.webhooks.rotate_secret(theirs.id),
            lambda: tx.webhooks.remove_endpoint(theirs.id),
        ]
        for call in calls:
            with pytest.raises(NotFound):
                call()
    with as_system(kit, other_org) as tx:
        [still] = tx.webhooks.list_endpoints()
        assert still.active


def test_publishing_an_unknown_event_is_a_programming_error(kit: Kit, org: OrgRead) -> None:
    with as_system(kit, org) as tx, pytest.raises(ValueError, match="unknown webhook event"):
        tx.webhooks.publish("points_spent", spending={})


def test_the_plugin_ships_its_own_migration_branch(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["webhooks"], plugins=[ngo_kit_webhooks], upgrade=False)
    kit.upgrade()
    assert "webhooks_endpoint" in sa.inspect(kit.engine).get_table_names()
    assert kit_migrations.pending_heads(kit) == []
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with kit.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, kit.metadata()) == []
    kit_migrations.downgrade(kit, "webhooks@base")
    assert "webhooks_endpoint" not in sa.inspect(kit.engine).get_table_names()


def test_the_channel_and_permission_are_registered(kit: Kit) -> None:
    assert kit.channels["webhook"].production_ready
    assert "webhooks.manage" in kit.permissions
    assert "webhooks" in kit.modules


def test_errors_speak_chinese_for_a_chinese_organisation(kit: Kit) -> None:
    org = kit.create_organisation("caihong", "彩虹公益", locale="zh_CN")
    with as_system(kit, org) as tx:
        with pytest.raises(ValidationFailed) as invalid:
            tx.webhooks.add_endpoint(url="http://example.org/hook", events=["org_created"])
        with pytest.raises(NotFound) as missing:
            tx.webhooks.get_endpoint(uuid.uuid4())
    assert invalid.value.message == "url：必须是 https:// 地址"
    assert missing.value.message.startswith("未找到Webhook 端点 ")
