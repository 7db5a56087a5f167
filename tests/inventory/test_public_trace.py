"""Publishing donor-facing trace reports: the list of donations and their reports are open to
anyone only where the organisation says so, and never the staff-only detail."""

from __future__ import annotations

import pytest

from ngo_kit import SYSTEM, Kit, PermissionDenied
from ngo_kit.tenancy import OrgRead


@pytest.fixture
def store(kit: Kit, org: OrgRead) -> OrgRead:
    """test-org with blankets from two donations, some of them given out."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.inventory.create_location(code="depot", name="Depot")
        tx.inventory.create_item(code="blanket", name="Blanket")
        tx.inventory.receive(item="blanket", quantity=30, to="depot", donor="Town", donation="D-1")
        tx.inventory.receive(item="blanket", quantity=10, to="depot", donor="Bank", donation="D-2")
        tx.inventory.issue(item="blanket", quantity=12, from_="depot", recipient="Mrs Li")
    return org


def _publish(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.update_organisation(settings={"inventory.public_trace": True})


def test_an_anonymous_visitor_sees_nothing_until_the_organisation_publishes(
    kit: Kit, store: OrgRead
) -> None:
    with pytest.raises(PermissionDenied), kit.begin(org=store) as tx:
        tx.inventory.donations()
    with pytest.raises(PermissionDenied), kit.begin(org=store) as tx:
        tx.inventory.trace_donation("D-1", donor_facing=True)


def test_published_reports_are_donor_facing_only(kit: Kit, store: OrgRead) -> None:
    _publish(kit, store)
    with kit.begin(org=store) as tx:
        donations = tx.inventory.donations()
        report = tx.inventory.trace_donation("D-1", donor_facing=True)
        with pytest.raises(PermissionDenied):
            tx.inventory.trace_donation("D-1")  # the staff view names the recipients
    assert [(d.donation, d.donor) for d in donations] == [("D-2", "Bank"), ("D-1", "Town")]
    assert (report.received, report.distributed, report.on_hand) == (30, 12, 18)
    assert [line.recipient for line in report.lines] == ["Beneficiary 1"]


def test_staff_list_donations_without_publishing(kit: Kit, store: OrgRead) -> None:
    with kit.begin(org=store, actor=SYSTEM) as tx:
        assert [d.donation for d in tx.inventory.donations(limit=1)] == ["D-2"]
