"""How the matrices fill in arguments: the one file a module author edits for a new method.

``RESOLVERS`` maps a parameter (or an input model's field) that names an object to a *world
key*: ``proof_world.seed`` keeps one object of each kind under such keys, in each
organisation. A key is looked up most specific first: ``"<service>.<method>.<param>"``, then
``"<service>.<param>"``, then ``"<param>"``. A world key starting with ``=`` is always taken
from the acting organisation's world (a secret of the actor, never another's identifier).

``VALUES`` gives the other parameters plain values, looked up the same way. Optional
parameters are left out unless an entry names them with their service (``"volunteer.capacity"``)
or method; a parameter that names an object never takes a plain value unless its own method's
entry says so (it names nothing that exists yet, or it is a free-text label). ``OMIT`` leaves a
parameter out on purpose.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from proof_world import LOGO, PASSWORD

#: Leave this parameter out of the call (its default applies).
OMIT: Any = type("Omit", (), {"__repr__": lambda self: "OMIT"})()

RESOLVERS: dict[str, str] = {
    # people: account ids are a membership's actor_id
    "user_id": "member",
    "member_id": "member",
    "actor_id": "member",
    "owner": "admin",
    "ids": "members",
    "awards": "awards",
    "from_member": "member",
    "to_member": "volunteer2",
    "points.grant_badge.member_id": "volunteer2",
    "tenancy.add_member.actor_id": "joiner",
    "volunteer.approve.user_id": "applicant",
    "volunteer.sign_up.user_id": "volunteer2",
    "volunteer.assign.user_id": "volunteer2",
    # core: API keys
    "api_keys.key_id": "api_key",
    # registration
    "request_id": "join_request",
    "invitation_id": "invitation",
    "purpose": "purpose",
    "registration.remove_field.name": "field",
    "registration.save_field_values.values": "field_answers",
    "registration.validate_fields.values": "field_answers",
    "registration.accept_invitation.token": "invitation_token",
    "registration.verify_email.token": "verify_email_token",
    "registration.confirm_email_change.token": "email_change_token",
    "registration.reset_password.token": "reset_token",
    "registration.session_user.token": "session_token",
    "registration.sign_out.token": "session_token",
    "registration.verify_phone.code": "=phone_code",
    "registration.confirm_phone_change.code": "=phone_change_code",
    "registration.authenticate.email": "member_email",
    "registration.find_user.email": "member_email",
    "registration.request_password_reset.email": "member_email",
    "registration.request_sign_in_code.phone": "member_phone",
    # points
    "reward_id": "reward",
    "rewards_stock.link.reward_id": "reward_plain",
    "redemption_id": "redemption",
    "txn_id": "txn",
    "points.reverse.txn_id": "txn_reversible",
    "award_id": "badge_award",
    "points.rule": "rule",
    "points.set_rule_active.name": "rule",
    "points.grant_badge.code": "badge",
    "hours_id": "hours_entry",
    # inventory
    "item": "item",
    "ref": "item",
    "location": "location",
    "from_": "location",
    "to": "location_other",
    "inventory.receive.to": "location",
    "parent": "location",
    "category": "category",
    "need": "need",
    "need_id": "need",
    "move_id": "move",
    "inventory.reverse.move_id": "issue_move",
    "move_or_group": "issue_group",
    "inventory.trace_donation.donation": "donation",
    "inventory.history.donation": "donation",
    "inventory.lot.item": "item_tracked",
    "inventory.lot.code": "lot",
    "inventory.stock_level.item": "item_tracked",
    "inventory.stock_level.lot": "lot",
    "inventory.import_opening_stock.data": "opening_stock_csv",
    "doc_id": "document",
    "inventory.approve_document.doc_id": "document_dispatch",
    "inventory.complete_document.doc_id": "document_confirmed",
    # volunteer
    "shift_id": "shift",
    "volunteer.check_out.shift_id": "shift_checked_in",
    "activity_id": "activity",
    "claim_id": "claim",
    "entry_id": "hours_entry",
    "certificate_id": "certificate",
    "task_id": "task",
    "assignment_id": "assignment",
    "volunteer.report_progress.assignment_id": "assignment_accepted",
    "volunteer.submit_assignment.assignment_id": "assignment_accepted",
    "volunteer.review_assignment.assignment_id": "assignment_submitted",
    "volunteer.read_pass.token": "checkin_pass",
    "volunteer.check_in_with_pass.token": "checkin_pass",
    "volunteer.verify_certificate.token": "certificate_token",
    "volunteer.certificate_status.token": "certificate_token",
    "volunteer.certificate_by_number.number": "certificate_number",
    "skill": "skill",
    "volunteer.import_profiles.rows": "profile_rows",
    # webhooks
    "endpoint_id": "endpoint",
}

_SOON = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(days=10)
#: where exports write their files (removed when the test process ends)
_FILES = tempfile.TemporaryDirectory(prefix="ngo-kit-proof-")

VALUES: dict[str, Any] = {
    # plain values by name
    "code": "newcode1",
    "name": "New thing",
    "title": "New title",
    "body": "Text",
    "reason": "proof check",
    "requester": "someone",
    "recipient": "someone",
    "reference": "new-reference",
    "quantity": Decimal(1),
    "counted": Decimal(40),
    "price": 5,
    "threshold": 500,
    "points": 1,
    "rule_type": "manual",
    "active": False,
    "form": "registration",
    "role": "staff",
    "permission": "members.view",
    "display_name": "New person",
    "current_password": PASSWORD,
    "new_password": "another long secret 42",
    "password": "another long secret 42",
    "new_email": "new.address@example.org",
    "new_phone": "+8613912345679",
    "served_on": dt.date.today(),
    "hours": Decimal("1.5"),
    "progress": Decimal(1),
    "starts_at": _SOON,
    "ends_at": _SOON + dt.timedelta(hours=2),
    "slug": "new-organisation",
    "base_url": "https://example.org/badges",
    "url": "https://hooks.example.org/new",
    "events": ["points_awarded"],
    "path": str(Path(_FILES.name) / "hours.csv"),
    # plain values of one service or method
    "api_keys.scopes": ["members.view"],
    "volunteer.capacity": 3,
    "volunteer.set_certificate_image.kind": "seal",
    "volunteer.set_certificate_image.data": LOGO,
    "volunteer.remove_certificate_image.kind": "logo",
    "volunteer.certificate_image.kind": "logo",
    "volunteer.create_recurring_shifts.rule": "FREQ=WEEKLY;COUNT=2",
    "volunteer.check_in.token": OMIT,  # the door code path needs the volunteer as the actor
    "volunteer.check_out.token": OMIT,
    "volunteer.hours_served.shift": SimpleNamespace(starts_at=_SOON, ends_at=_SOON),
    "volunteer.hours_served.checked_in": _SOON,
    "volunteer.hours_served.checked_out": _SOON + dt.timedelta(hours=1),
    "points.apply_rules.event": "check_in",
    "webhooks.publish.event": "points_awarded",
    "inventory.create_document.kind": "receipt",
    "inventory.import_items.data": b"code,name\nnewitem,New item\n",
    # free-text labels, not lookups: the organisation names its own donations and lots
    "inventory.receive.donation": OMIT,
    "inventory.create_document.donation": OMIT,
    "inventory.import_opening_stock.donation": OMIT,
    "inventory.receive.lot": OMIT,
    "inventory.issue.lot": OMIT,
    "inventory.transfer.lot": OMIT,
    "inventory.scrap.lot": OMIT,
    "inventory.adjust.lot": OMIT,
    "inventory.create_document.lot": OMIT,
    # changes that change something (an update of nothing writes nothing)
    "tenancy.update_organisation.name": "Renamed organisation",
    "tenancy.grant.role": "member",
    "points.update_reward.name": "Renamed reward",
    "webhooks.update_endpoint.description": "changed",
    "registration.define_field.kind": "text",
    "registration.define_field.name": "newfield",
    "registration.publish_consent.purpose": "newpurpose",  # a new document, not a lookup
    "tenancy.create_role.name": "newrole",
    "registration.register.email": "new.person@example.org",
    "registration.register.password": "another long secret 42",
    "registration.authenticate.password": PASSWORD,
    "registration.invite.email": "invitee.new@example.org",
}
