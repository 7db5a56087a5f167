"""Helpers for the modules' HTTP API tests: people registered through the API, roles, problems."""

from __future__ import annotations

from typing import Any

from ngo_kit import hookimpl
from ngo_kit.context import Context
from ngo_kit.web.testing import PASSWORD, ApiPerson, ApiSite, problem_of

__all__ = ["ORG", "OTHER", "PASSWORD", "ZH", "Api", "HoursEarnPoints", "Person", "problem_of"]
ORG = "rainbow"
OTHER = "sunrise"


class HoursEarnPoints:
    """A bridge for the tests: approved service hours earn 10 points an hour, in the same
    transaction (what the ngo-kit-volunteer-points plugin does with an organisation's rule)."""

    ngo_kit_plugin_name = "tests.web.hours-earn-points"

    @hookimpl(optionalhook=True)
    def ngo_kit_hours_approved(self, tx: Context, hours: Any) -> None:
        with tx.elevated():
            tx.points.award(
                hours.user_id,
                int(hours.hours * 10),
                reason="service hours",
                key=f"hours:{hours.id}",
            )


#: The kit's web testing helpers under the names these tests use.
Person = ApiPerson
Api = ApiSite


ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
