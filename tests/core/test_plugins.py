"""The plugin system: module declarations, ordering, hook checks and plugin failures."""

from __future__ import annotations

import types
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, ConfigurationError, Kit, Module, PluginError, hookimpl, hookspec
from ngo_kit.audit import AuditEntry
from ngo_kit.plugins import Registrar, resolve_order
from ngo_kit.testing import KitFactory


class ProvidesModules:
    def __init__(self, *modules: Module, name: str = "provider") -> None:
        self.modules = modules
        self.ngo_kit_plugin_name = name

    @hookimpl
    def ngo_kit_register_modules(self, register: Registrar[Module]) -> None:
        for module in self.modules:
            register(module)


def test_modules_are_ordered_after_what_they_require() -> None:
    mods = {
        "a": Module("aa", requires=()),
        "b": Module("bb", requires=("aa",)),
        "c": Module("cc", requires=("bb", "aa")),
    }
    by_name = {m.name: m for m in mods.values()}
    order = [m.name for m in resolve_order(by_name, ["cc", "bb", "aa"])]
    assert order.index("aa") < order.index("bb") < order.index("cc")


def test_missing_requirement_names_both_modules() -> None:
    mods = {"bb": Module("bb", requires=("aa",)), "aa": Module("aa")}
    with pytest.raises(ConfigurationError) as info:
        resolve_order(mods, ["bb"])
    assert info.value.check == "core.E004"
    assert "'bb'" in str(info.value) and "'aa'" in str(info.value)


def test_cycle_is_refused_naming_its_members() -> None:
    mods = {"aa": Module("aa", requires=("bb",)), "bb": Module("bb", requires=("aa",))}
    with pytest.raises(ConfigurationError) as info:
        resolve_order(mods, ["aa", "bb"])
    assert info.value.check == "core.E005"
    assert "aa -> bb -> aa" in str(info.value)


def test_unknown_module_is_refused_listing_installed_ones(kit_factory: KitFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=["no_such_module"], upgrade=False)
    assert info.value.check == "core.E003"
    assert "no_such_module" in str(info.value)


def test_duplicate_module_names_name_both_plugins(kit_factory: KitFactory) -> None:
    first = ProvidesModules(Module("twin"), name="first-plugin")
    second = ProvidesModules(Module("twin"), name="second-plugin")
    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=[], plugins=[first, second], upgrade=False)
    assert info.value.check == "core.E002"
    assert "first-plugin" in str(info.value) and "second-plugin" in str(info.value)


@pytest.mark.parametrize("name", ["tenancy", "api_keys", "events"])
def test_a_module_named_for_a_core_service_is_refused(kit_factory: KitFactory, name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=[], plugins=[ProvidesModules(Module(name))], upgrade=False)
    assert info.value.check == "core.E002"
    assert f"tx.{name}" in str(info.value)


def test_bad_module_name_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        Module("Bad Name")
    assert info.value.check == "core.E001"


def test_unknown_hook_name_is_refused_at_start_up(kit_factory: KitFactory) -> None:
    class Typo:
        ngo_kit_plugin_name = "typo-plugin"

        @hookimpl
        def ngo_kit_stock_moovd(self, tx: Any) -> None:
            raise AssertionError("never called")

    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=[], plugins=[Typo()], upgrade=False)
    assert info.value.check == "core.E011"
    assert "ngo_kit_stock_moovd" in str(info.value)


def test_a_module_configures_itself_as_each_kit_that_enables_it_is_built(
    kit_factory: KitFactory,
) -> None:
    seen: list[Kit] = []

    def configure(kit: Kit) -> None:
        seen.append(kit)
        if kit.settings.environment == "production":
            raise ConfigurationError("meals.E001", "meals needs a kitchen in production")

    plugin = ProvidesModules(Module("meals", configure=configure))
    kit_factory(modules=[], plugins=[plugin], upgrade=False)
    assert seen == []  # installed but not enabled: not asked
    kit = kit_factory(modules=["meals"], plugins=[plugin], upgrade=False)
    assert seen == [kit]
    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=["meals"], plugins=[plugin], upgrade=False, environment="production")
    assert info.value.check == "meals.E001"


def test_optional_hook_of_a_disabled_module_is_accepted(kit_factory: KitFactory) -> None:
    class Bridge:
        ngo_kit_plugin_name = "bridge"

        @hookimpl(optionalhook=True)
        def ngo_kit_something_happened(self, tx: Any) -> None:
            raise AssertionError("never called")

    kit = kit_factory(modules=[], plugins=[Bridge()], upgrade=False)
    assert kit.pm.has_plugin("bridge")


def _spec_module() -> types.ModuleType:
    specs = types.ModuleType("sample_specs")

    @hookspec
    def ngo_kit_sample_happened(tx: Any, value: int) -> None:
        """Event: a sample thing happened."""

    specs.ngo_kit_sample_happened = ngo_kit_sample_happened  # type: ignore[attr-defined]
    return specs


def test_module_hookspecs_are_added_and_event_hooks_write_in_the_same_transaction(
    kit_factory: KitFactory,
) -> None:
    seen: list[int] = []

    class Listener:
        ngo_kit_plugin_name = "listener"

        @hookimpl
        def ngo_kit_sample_happened(self, tx: Any, value: int) -> None:
            seen.append(value)
            tx.audit("sample.heard", "sample", value, "listener heard it")

    provider = ProvidesModules(Module("sample", hookspecs=_spec_module()), name="sample-plugin")
    kit = kit_factory(modules=["sample"], plugins=[provider, Listener()])
    org = kit.create_organisation("hooks", "Hooks")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_sample_happened", value=7)
    assert seen == [7]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.session.scalar(
            sa.select(sa.func.count()).where(AuditEntry.action == "sample.heard")
        )


def test_a_failing_event_hook_rolls_everything_back_and_names_the_plugin(
    kit_factory: KitFactory,
) -> None:
    class Faulty:
        ngo_kit_plugin_name = "faulty-plugin"

        @hookimpl
        def ngo_kit_sample_happened(self, tx: Any, value: int) -> None:
            tx.audit("faulty.wrote", "sample", value, "written before failing")
            raise KeyError("boom")

    provider = ProvidesModules(Module("sample", hookspecs=_spec_module()), name="sample-plugin")
    kit = kit_factory(modules=["sample"], plugins=[provider, Faulty()])
    org = kit.create_organisation("faults", "Faults")
    with pytest.raises(PluginError) as info, kit.begin(org=org, actor=SYSTEM) as tx:
        tx.audit("caller.wrote", "sample", 1, "the caller's own write")
        tx.emit("ngo_kit_sample_happened", value=1)
    assert info.value.plugin == "faulty-plugin"
    assert "faulty-plugin" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        actions = set(tx.session.scalars(sa.select(AuditEntry.action)))
    assert "faulty.wrote" not in actions and "caller.wrote" not in actions


def test_ngo_kit_errors_from_a_hook_keep_their_type_and_name_the_plugin(
    kit_factory: KitFactory,
) -> None:
    from ngo_kit import InsufficientPoints

    class Strict:
        ngo_kit_plugin_name = "strict-plugin"

        @hookimpl
        def ngo_kit_sample_happened(self, tx: Any, value: int) -> None:
            raise InsufficientPoints(requested=value, available=0)

    provider = ProvidesModules(Module("sample", hookspecs=_spec_module()), name="sample-plugin")
    kit = kit_factory(modules=["sample"], plugins=[provider, Strict()])
    org = kit.create_organisation("strict", "Strict")
    with pytest.raises(InsufficientPoints) as info, kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_sample_happened", value=5)
    assert info.value.plugin == "strict-plugin"  # type: ignore[attr-defined]


def test_each_kit_owns_its_plugin_manager(kit_factory: KitFactory) -> None:
    provider = ProvidesModules(Module("sample", hookspecs=_spec_module()), name="sample-plugin")
    with_plugin = kit_factory(modules=["sample"], plugins=[provider], upgrade=False)
    without = kit_factory(modules=[], upgrade=False)
    assert with_plugin.pm.has_plugin("sample-plugin")
    assert not without.pm.has_plugin("sample-plugin")
    assert "sample" not in without.modules


def test_disabled_modules_plugins_are_not_loaded(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[], upgrade=False)
    assert kit.modules == {}
    assert not kit.pm.has_plugin("points")
    assert kit.pm.has_plugin("core")


def test_a_collect_hook_registering_the_wrong_type_is_refused(kit_factory: KitFactory) -> None:
    class Wrong:
        ngo_kit_plugin_name = "wrong-plugin"

        @hookimpl
        def ngo_kit_register_modules(self, register: Registrar[Any]) -> None:
            register("not a module")

    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=[], plugins=[Wrong()], upgrade=False)
    assert "wrong-plugin" in str(info.value)


def test_plugin_listing_names_modules_and_hooks(kit: Kit) -> None:
    infos = {i.name: i for i in kit.plugin_info()}
    assert infos["core"].builtin
    assert "ngo_kit_register_permissions" in infos["core"].hooks
    assert infos["console"].hooks == ["ngo_kit_deliver_message", "ngo_kit_register_channels"]


def test_org_created_event_lets_a_plugin_seed_the_new_organisation(kit_factory: KitFactory) -> None:
    seeded: list[str] = []

    class Seeder:
        ngo_kit_plugin_name = "seeder"

        @hookimpl
        def ngo_kit_org_created(self, tx: Any, org: Any) -> None:
            assert tx.org_id == org.id  # the tx is bound to the new organisation
            tx.audit("seed.done", "organisation", org.id, "seeded")
            seeded.append(org.slug)

    kit = kit_factory(modules=[], plugins=[Seeder()])
    org = kit.create_organisation("seeded", "Seeded")
    assert seeded == ["seeded"]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert (
            tx.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "seed.done"))
            == 1
        )


def test_a_registered_check_runs_in_verify_and_fails_the_cli(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from ngo_kit.audit import Problem

    class AlwaysBroken:
        name = "always-broken"

        def run(self, session: Any) -> list[Problem]:
            return [Problem(self.name, None, "the thing is broken")]

    class Checks:
        ngo_kit_plugin_name = "checks"

        @hookimpl
        def ngo_kit_register_checks(self, register: Registrar[Any]) -> None:
            register(AlwaysBroken())

    kit = kit_factory(modules=[], plugins=[Checks()])
    assert [str(p) for p in kit.verify()] == ["always-broken: the thing is broken"]
    assert {c.name for c in kit.checks} == {"audit", "always-broken"}  # type: ignore[attr-defined]


def test_a_module_declares_permissions_and_checks_that_exist_only_while_enabled(
    kit_factory: KitFactory,
) -> None:
    from ngo_kit import Permission
    from ngo_kit.audit import Problem

    class StockCheck:
        name = "declared-check"

        def run(self, session: Any) -> list[Problem]:
            return []

    declared = Module(
        "declared",
        permissions=(Permission("declared.use", "use it", ("staff",)),),
        checks=(StockCheck(),),
    )
    provider = ProvidesModules(declared, name="declared-plugin")
    enabled = kit_factory(modules=["declared"], plugins=[provider], upgrade=False)
    assert "declared.use" in enabled.permissions
    assert "declared-check" in {c.name for c in enabled.checks}  # type: ignore[attr-defined]
    disabled = kit_factory(
        modules=[], plugins=[ProvidesModules(declared, name="declared-plugin")], upgrade=False
    )
    assert "declared.use" not in disabled.permissions
    assert "declared-check" not in {getattr(c, "name", "") for c in disabled.checks}


def test_the_first_owner_is_a_member_before_org_created_fires(kit_factory: KitFactory) -> None:
    import uuid

    owner = uuid.uuid4()
    seen: list[str] = []

    class Watcher:
        ngo_kit_plugin_name = "watcher"

        @hookimpl
        def ngo_kit_org_created(self, tx: Any, org: Any) -> None:
            seen.append(tx.tenancy.member(owner).role)

    kit = kit_factory(modules=[], plugins=[Watcher()])
    kit.create_organisation("owned", "Owned", owner=owner)
    assert seen == ["owner"]


def test_an_unknown_hook_error_names_the_plugin(kit_factory: KitFactory) -> None:
    class Misspelt:
        ngo_kit_plugin_name = "misspelt-plugin"

        @hookimpl
        def ngo_kit_points_awardd(self, tx: Any) -> None:
            raise AssertionError("never called")

    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=[], plugins=[Misspelt()], upgrade=False)
    assert str(info.value).startswith("[core.E011] plugin 'misspelt-plugin' implements")
