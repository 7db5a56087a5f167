"""With the real registration module enabled, registering earns the welcome bonus."""

from __future__ import annotations

from collections.abc import Callable

from ngo_kit import SYSTEM, Kit
from ngo_kit.modules.registration.schemas import RegisterIn


def test_registering_through_the_registration_module_earns_the_welcome_bonus(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = kit_factory(modules=["registration", "points"])
    org = kit.create_organisation("joined", "Joined")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.add_rule(name="welcome", rule_type="welcome_bonus", points=20)
    with kit.begin(org=org) as tx:
        user = tx.registration.register(
            RegisterIn(
                email="li.hua@example.org",
                display_name="Li Hua",
                password="correct horse battery",
            )
        )
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.balance(user.id) == 20
