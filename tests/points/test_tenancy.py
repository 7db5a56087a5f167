"""Rules, settings, expiry, levels, badges and leaderboards stay inside their organisation."""

from __future__ import annotations

import datetime as dt

import pytest
from points_helpers import ledger_invariants, member

from ngo_kit import SYSTEM, Kit, NotFound
from ngo_kit.tenancy import OrgRead


def test_configuration_and_recognition_of_one_organisation_never_reach_another(
    pkit: Kit, porg: OrgRead
) -> None:
    other = pkit.create_organisation("other-config", "Other")
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.configure(expiry_months=1, transfers_allowed=True)
        tx.points.add_rule(name="check-in", rule_type="daily_check_in", points=5)
        tx.points.add_level(name="gold", threshold=1)
        tx.points.add_badge(code="helper", name="Helper")
        award = tx.points.grant_badge("helper", m)
        tx.points.award(m, 10)
    with pkit.begin(org=other, actor=SYSTEM) as tx:
        assert tx.points.settings().expiry_months is None
        assert not tx.points.settings().transfers_allowed
        assert tx.points.rules() == [] and tx.points.levels() == [] and tx.points.badges() == []
        assert tx.points.check_in(m) == []  # the other organisation's rule does not fire
        tx.points.award(m, 3)
        standing = tx.points.standing(m)
        assert (standing.balance, standing.level) == (3, None)
        assert tx.points.member_badges(m) == [] and tx.points.expiring(m)[0].expires_at is None
        with pytest.raises(NotFound):
            tx.points.grant_badge("helper", m)
        with pytest.raises(NotFound):
            tx.points.badge_assertion(award.id, base_url="https://x.example")
        with pytest.raises(NotFound):
            tx.points.set_rule_active("check-in", False)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
        assert tx.points.expire(later) == 0  # the first organisation's lots are not its own
        assert [r.points for r in tx.points.leaderboard("all")] == [3]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.balance(m) == 10
        assert tx.points.expire(later) == 10
    ledger_invariants(pkit)
