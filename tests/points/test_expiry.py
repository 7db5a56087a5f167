"""Expiry: lots, soonest-expiring first, the idempotent ``expire`` run and its command."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from click.testing import CliRunner
from points_helpers import as_system, ledger_invariants, member

from ngo_kit import SYSTEM, Kit
from ngo_kit.cli import cli
from ngo_kit.modules.points import expire_all, points_group
from ngo_kit.modules.points.models import PointsLot
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import TEST_SECRET

DAY = dt.timedelta(days=1)


def backdate(kit: Kit, member_lots_days: int) -> None:
    """Move every lot's expiry ``member_lots_days`` earlier (as if time had passed)."""
    with kit.engine.begin() as conn:
        for lot_id, expires in conn.execute(sa.select(PointsLot.id, PointsLot.expires_at)):
            if expires is not None:
                conn.execute(
                    sa.update(PointsLot)
                    .where(PointsLot.id == lot_id)
                    .values(expires_at=expires - dt.timedelta(days=member_lots_days))
                )


def test_points_expire_after_the_configured_months_and_only_once(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.configure(expiry_months=12)
        tx.points.award(m, 40)
        lots = tx.points.expiring(m)
        assert len(lots) == 1 and lots[0].remaining == 40
        assert lots[0].expires_at is not None
        assert lots[0].expires_at - lots[0].earned_at >= dt.timedelta(days=365)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=367)
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.expire(now=later) == 40
        assert tx.points.expire(now=later) == 0
        assert tx.points.balance(m) == 0
        assert tx.points.statement(m)[0].kind == "expire"
        assert tx.points.standing(m).earned == 40
    ledger_invariants(pkit)


def test_spending_takes_the_soonest_expiring_points_first(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(m, 30)  # never expires
        tx.points.configure(expiry_months=1)
        tx.points.award(m, 20)  # expires in a month
        tx.points.deduct(m, 25)
        left = tx.points.expiring(m)
        assert [(lot.remaining, lot.expires_at is None) for lot in left] == [(25, True)]
    soon = as_system(pkit, porg, lambda tx: tx.points.expire(dt.datetime.now(dt.UTC) + 40 * DAY))
    assert soon == 0
    ledger_invariants(pkit)


def test_transferred_points_keep_their_expiry_date(pkit: Kit, porg: OrgRead) -> None:
    a, b = member(), member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.configure(expiry_months=2, transfers_allowed=True)
        tx.points.award(a, 10)
        sent = tx.points.expiring(a)[0].expires_at
        tx.points.transfer(from_member=a, to_member=b, points=4)
        assert [lot.expires_at for lot in tx.points.expiring(b)] == [sent]
    later = dt.datetime.now(dt.UTC) + 70 * DAY
    assert as_system(pkit, porg, lambda tx: tx.points.expire(later)) == 10
    ledger_invariants(pkit)


def test_expire_runs_for_every_organisation_from_the_command_line(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = kit_factory(modules=["points"])
    orgs = [kit.create_organisation(slug, slug) for slug in ("north", "south")]
    for org in orgs:
        with kit.begin(org=org, actor=SYSTEM) as tx:
            tx.points.configure(expiry_months=1)
            tx.points.award(member(), 7)
    backdate(kit, 40)
    url = kit.engine.url.render_as_string(hide_password=False)
    args = ["--database-url", url, "--module", "points", "--no-autoload", "points", "expire"]
    cli.add_command(points_group)
    try:
        # the command's kit hashes with the chain keys the test kit's secret gives
        result = CliRunner().invoke(cli, args, env={"NGO_KIT_SECRET_KEYS": TEST_SECRET})
    finally:
        cli.commands.pop("points", None)
    assert result.exit_code == 0, result.output
    assert "north: 7 points expired" in result.output
    assert "south: 7 points expired" in result.output
    assert expire_all(kit) == [("north", 0), ("south", 0)]
    ledger_invariants(kit)
