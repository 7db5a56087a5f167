"""The permission matrix, generated from the services themselves.

Every public method of every service a ``tx`` exposes is called with organisation A's own
objects by a member of A whose role holds no permission at all. A method is *mutating* when
the same call by A's admin wrote something (seen inside its transaction, before the rollback).
A mutating method must refuse with ``PermissionDenied`` and write nothing, unless it is in
``SELF_SERVICE`` (a person acting for themselves, each with its reason). Whatever the method,
every permission it names must be declared by its own module, a module it requires, or core;
``NOT_GRANTABLE`` lists the refusals no role can lift (the system actor's or the person's own
business).

Every control must say something: it succeeded, or it was refused to all of A's people for a
permission in ``NOT_GRANTABLE``, or it failed as ``CONTROL_FAILS`` says it must (each with its
reason). A control that failed otherwise names a wrong resolver, and the test says which. A
method refused to everyone or listed in ``CONTROL_FAILS`` would write if it could, so a member
without permissions must be refused it.

After a refusal the named permission is granted to the role and the call tried again, inside
the same rolled-back transaction, so the matrix learns every permission a call checks; then
``test_every_declared_permission_guards_some_method`` proves no permission is declared for
nothing. (``tests/registration`` and ``tests/points`` check that their permission names appear
in their service's source; this one checks, for every module, that some call is refused
without each.)
"""

from __future__ import annotations

import pytest
from proof_matrix import Control, Plan, Proof, collected_plans, declared_by, reachable

from ngo_kit import PermissionDenied

#: Mutating methods a person without any permission may call: they act for themselves.
SELF_SERVICE: dict[str, str] = {
    "registration.register": "anyone may register in an open organisation (its joining "
    "setting decides)",
    "registration.authenticate": "signing in: the password or code is the proof",
    "registration.change_password": "the signed-in person changes their own password, with "
    "the current one",
    "registration.request_email_change": "the signed-in person asks to change their own address",
    "registration.request_phone_change": "the signed-in person asks to change their own number",
    "registration.confirm_email_change": "the link sent to the new address is the proof",
    "registration.verify_email": "the link sent to the address is the proof",
    "registration.request_password_reset": "anyone may ask; the link goes to the account's own "
    "address, and the answer is the same whether it exists or not",
    "registration.request_sign_in_code": "anyone may ask; the code goes to the account's own "
    "phone, and the answer is the same whether it exists or not",
    "registration.reset_password": "the reset link sent to the person is the proof",
    "registration.sign_out": "whoever holds a session token may end that session",
    "registration.join": "a signed-in person joins an open organisation",
    "registration.accept_invitation": "a signed-in person accepts an invitation sent to them",
    "registration.leave": "a person ends their own membership",
    "registration.request_to_join": "a signed-in person asks to join; an administrator decides",
    "registration.confirm_phone_change": "the code sent to the new number is the proof",
}

#: Controls that cannot succeed in any seeded world: the error code each raises, and why.
CONTROL_FAILS: dict[str, tuple[str, str]] = {
    "inventory.seed_locations": (
        "conflict",
        "an organisation's virtual locations are seeded as it is created "
        "(ngo_kit_org_created), so seeding them again clashes with them",
    ),
}

#: Refusals that name no declared permission, because no role can be granted them.
NOT_GRANTABLE: dict[str, str] = {
    "org.create": "core: organisations are created by the system actor (kit.create_organisation)",
    "registration.suspend": "registration: an account spans organisations, so only the system "
    "actor suspends or reinstates it",
    "registration.self": "registration: only the person themselves (or the system actor) acts "
    "on their account, consents and answers",
    "registration.change_password": "registration: only a signed-in person changes their own "
    "password",
    "registration.accept_invitation": "registration: only a signed-in person accepts an "
    "invitation, for themselves",
    "registration.purge": "registration: sessions, codes and throttle counts belong to no one "
    "organisation, so only the system actor purges them",
}

#: Declared permissions that no service method checks, on purpose.
FOR_APPLICATIONS: dict[str, str] = {}


@pytest.mark.parametrize("method_id", sorted(collected_plans()))
def test_a_member_without_permissions_is_refused(proof: Proof, method_id: str) -> None:
    plan = proof.plans[method_id]
    assert not plan.problems, "\n".join(plan.problems)
    control = proof.control(plan)
    writes = _writes(plan, control)
    found = proof.without_permissions(plan)
    owners = declared_by(proof.kit)
    allowed = reachable(proof.kit, plan.method.service)
    for permission in found.permissions:
        if permission in NOT_GRANTABLE:
            assert permission not in owners, f"{permission} is declared: drop it from NOT_GRANTABLE"
            continue
        assert owners.get(permission, set()) & allowed, (
            f"{method_id} checks {permission!r}, declared by {sorted(owners.get(permission, []))}, "
            f"which is neither {plan.method.service}, a module it requires, nor core"
        )
    escaped = proof.escaped()
    assert not escaped, f"rows changed outside the call's own (rolled back) unit of work: {escaped}"
    if method_id in SELF_SERVICE:
        assert found.refusal is None, (
            f"{method_id} is refused ({found.refusal}) now: remove it from SELF_SERVICE"
        )
        return
    if writes:
        assert found.refusal is not None, (
            f"{method_id} writes, yet a member without permissions "
            f"{found.outcome.describe()} (refuse it, or add it to SELF_SERVICE with a reason)"
        )


def _writes(plan: Plan, control: Control) -> bool:
    """Whether the method writes, from its control, which must have succeeded or failed for a
    reason named here (else a resolver names the wrong object: the message says which)."""
    method_id, error = plan.method.id, control.outcome.error
    expected = CONTROL_FAILS.get(method_id)
    if error is None:
        assert expected is None, f"{method_id}'s control succeeds now: drop it from CONTROL_FAILS"
        return control.mutating
    if control.actor is None:  # refused to a's admin, to the member, to a stranger
        assert isinstance(error, PermissionDenied) and error.permission in NOT_GRANTABLE, (
            f"{method_id} is refused to everyone in A ({control.outcome.describe()}): only a "
            "permission in NOT_GRANTABLE may refuse a's admin; else a resolver is wrong "
            f"({plan.resolvers()})"
        )
        return True
    assert expected is not None and getattr(error, "code", None) == expected[0], (
        f"{method_id} with A's own objects, by a's {control.actor}, "
        f"{control.outcome.describe()}, so nothing checks its permissions: a resolver "
        f"({plan.resolvers()}) or a value in tests/proof/proof_resolvers.py names the wrong "
        "object, or tests/proof/proof_world.py seeds too little; if no world can make it "
        "succeed, list it in CONTROL_FAILS with why"
    )
    return True


def test_every_declared_permission_guards_some_method(proof: Proof) -> None:
    checked: set[str] = set()
    for plan in proof.plans.values():
        if not plan.problems:
            checked.update(proof.without_permissions(plan).permissions)
    declared = set(proof.kit.permissions)
    unused = sorted(declared - checked - set(FOR_APPLICATIONS))
    assert not unused, f"declared, but no method is refused without them: {unused}"
    assert not set(FOR_APPLICATIONS) & checked, "a method checks it now: drop it from the list"


def test_every_self_service_entry_names_a_method() -> None:
    assert not set(SELF_SERVICE) - set(collected_plans())


def test_every_control_failure_names_a_method() -> None:
    assert not set(CONTROL_FAILS) - set(collected_plans())
