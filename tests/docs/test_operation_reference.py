"""The committed operation reference (docs/reference/) is what the declarations generate."""

from __future__ import annotations

import importlib
from pathlib import Path

import ngo_kit_rewards_stock
import ngo_kit_volunteer_points
import ngo_kit_webhooks

from ngo_kit.plugins import Module
from ngo_kit.reference import GENERATED, module_page, write_reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
BUILT_IN = ("registration", "points", "inventory", "volunteer")


def first_party_modules() -> list[Module]:
    """The built-in modules and the first-party plugins' modules with a service, by name."""
    modules = [importlib.import_module(f"ngo_kit.modules.{name}").MODULE for name in BUILT_IN]
    modules += [
        ngo_kit_webhooks.MODULE,
        ngo_kit_rewards_stock.MODULE,
        ngo_kit_volunteer_points.MODULE,
    ]
    return sorted(modules, key=lambda m: m.name)


def test_the_committed_reference_pages_are_up_to_date(tmp_path: Path) -> None:
    written = write_reference(tmp_path, first_party_modules())
    stale = [
        path.name
        for path in written
        if not (REFERENCE / path.name).exists()
        or (REFERENCE / path.name).read_text(encoding="utf-8") != path.read_text(encoding="utf-8")
    ]
    assert not stale, (
        f"docs/reference/ is stale ({', '.join(stale)}): refresh it with `ngo-kit reference`"
    )
    extra = {p.name for p in REFERENCE.glob("*.md")} - {p.name for p in written}
    assert not extra, f"docs/reference/ has pages no module generates: {', '.join(sorted(extra))}"


def test_a_page_shows_the_call_route_permission_errors_and_command() -> None:
    page = module_page(ngo_kit_webhooks.MODULE)
    assert page.startswith(GENERATED)
    assert "tx.webhooks.rotate_secret(endpoint_id: UUID | str) -> EndpointCreated" in page
    assert "`POST /api/orgs/{org}/webhooks/endpoints` → 201 (generated route)" in page
    assert "`already_exists` (AlreadyExists)" in page
    assert "`ngo-kit webhooks rotate-secret`" in page
    assert "| `url` | `str` | yes | min_length=8; max_length=320;" in page
    assert "not over HTTP: called by the plugin's event hooks" in page
