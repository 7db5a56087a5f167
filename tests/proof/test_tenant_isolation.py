"""The tenant isolation matrix, generated from the services themselves.

For every public method of every service a ``tx`` exposes (core's ``tenancy`` and each
enabled module's, first-party plugins included), and for every argument that names an object,
the method is called in organisation A with that one argument naming organisation B's object
(the others name A's own). The call must be refused, ``NotFound`` or ``PermissionDenied`` (a
``TokenInvalid`` for a token bound to B, a ``ValidationFailed`` whose rule says the value is
unknown here), or answer "nothing here" (an empty collection, a zero count, ``None`` from a
method whose answer may be ``None``) without writing. Either way it must show nothing of B
beyond what was passed in, and no row may change (the call's own transaction is read before
it ends; afterwards every table is compared with the session's snapshot).

Each cell is checked against a control: the same call with A's own objects, by A's admin (or,
for a self-service method the admin is refused, by the member it is about), must not be
refused, so a refusal in the cell is the isolation and not a wrong argument. A method whose
arguments name no object is called in A and must show nothing of B.

``EXEMPT`` lists the cells that legitimately reach across organisations, each with its reason
and what it may show; the test still checks that B's rows are untouched and that nothing else
of B shows. An exemption a cell no longer needs fails, so the list stays true.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from proof_matrix import (
    Outcome,
    Plan,
    Proof,
    Ref,
    changed,
    collected_plans,
    is_token_error,
    is_unknown_reference,
    nothing_here,
)

from ngo_kit import PermissionDenied


@dataclass(frozen=True)
class Exempt:
    """A cell that may act across organisations: why, and which of B's objects it may show."""

    reason: str
    may_show: tuple[str, ...] = ()


_POINTS_MEMBER = (
    "points: a member is an account id, and an account is the person's in every organisation "
    "(docs/modules/points.md: the module needs no other module); the call reads or writes this "
    "organisation's ledger only. Points are earned by members only (with registration enabled, "
    "another organisation's member is refused)"
)
_ACCOUNT = (
    "registration: an account is shared by every organisation the person belongs to "
    "(docs/modules/registration.md); signing in, sessions and the links sent to the person "
    "need no organisation, and the secret itself is the proof"
)
_PERSON = ("member", "member_email", "member_phone", "member_name")

EXEMPT: dict[str, Exempt] = {
    "points.deduct:member_id": Exempt(_POINTS_MEMBER, ("member",)),
    "points.redeem:member_id": Exempt(_POINTS_MEMBER, ("member",)),
    "points.standing:member_id": Exempt(_POINTS_MEMBER, ("member",)),
    "points.transfer:from_member": Exempt(_POINTS_MEMBER, ("member",)),
    "registration.authenticate:email": Exempt(_ACCOUNT, _PERSON),
    "registration.session_user:token": Exempt(_ACCOUNT, _PERSON),
    "registration.sign_out:token": Exempt(_ACCOUNT, _PERSON),
    "registration.verify_email:token": Exempt(_ACCOUNT, _PERSON),
    "registration.reset_password:token": Exempt(_ACCOUNT, _PERSON),
    "registration.confirm_email_change:token": Exempt(_ACCOUNT, (*_PERSON, "member_email_changed")),
    "registration.request_password_reset:email": Exempt(
        "registration: a reset link goes to the account's own address and the answer is the "
        "same whether an account has the address or not (no enumeration)",
        _PERSON,
    ),
    "registration.request_sign_in_code:phone": Exempt(
        "registration: a sign-in code goes to the account's own phone and the answer is the "
        "same whether an account has the number or not (no enumeration)",
        _PERSON,
    ),
    "volunteer.verify_certificate:token": Exempt(
        "volunteer: anyone holding a certificate's signed link may check it, with no "
        "organisation or actor (that is what it is for); it shows what the certificate says",
        ("certificate", "member", "member_name", "org_name"),
    ),
    "volunteer.certificate_status:token": Exempt(
        "volunteer: the verification page's answer for a certificate's signed link, which "
        "anyone holding it may check (verify_certificate); it shows what the certificate says",
        ("certificate", "member", "member_name", "org_name"),
    ),
    "inventory.import_opening_stock:data": Exempt(
        "inventory: an import answers with a report naming each row's unknown item or "
        "location, and writes nothing when any row is wrong (all or none)",
        ("item", "location"),
    ),
    "volunteer.import_profiles:rows": Exempt(
        "volunteer: an import reports each row naming someone who is not a member and imports "
        "the others; the report names the row's own account id only",
        ("newcomer",),
    ),
    "inventory.export_stock:category": Exempt(
        "inventory: a category filter naming no category here exports the header row only"
    ),
}

#: Design issues the matrix found that need a decision beyond a module's fix (strict xfail:
#: the cell fails the day it passes, so the entry is removed with the fix).
KNOWN: dict[str, str] = {}


def _cells() -> list[object]:
    cells: list[object] = []
    for method_id, plan in sorted(collected_plans().items()):
        refs = [r.path for r in plan.refs] if not plan.problems else []
        for path in refs or [""]:
            cell = f"{method_id}:{path}" if path else method_id
            marks = []
            if cell in KNOWN:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[cell]))
            cells.append(pytest.param(method_id, path, id=cell, marks=marks))
    return cells


@pytest.mark.parametrize(("method_id", "path"), _cells())
def test_another_organisations_object_is_refused(proof: Proof, method_id: str, path: str) -> None:
    plan = proof.plans[method_id]
    assert not plan.problems, "\n".join(plan.problems)
    control = proof.control(plan)
    if control.actor is None:  # refused to A's admin, to the member it is about, to a stranger
        error = control.outcome.error
        assert (
            isinstance(error, PermissionDenied) and error.permission not in proof.kit.permissions
        ), (
            f"{method_id} with A's own objects {control.outcome.describe()}: a resolver or a "
            "value in tests/proof/proof_resolvers.py names the wrong object"
        )
    control_leaks = proof.b.leaks([control.outcome.result, control.outcome.error])
    assert not control_leaks, f"called with A's own objects, it shows B's: {control_leaks}"
    if not path:
        _check_listing(proof, plan, control.outcome)
    else:
        ref = next(r for r in plan.refs if r.path == path)
        if control.actor is None:  # no role can be granted it: the system actor's alone
            outcome = proof.call(plan, "admin", ref)
            assert outcome.refused, f"refused with A's objects, yet {outcome.describe()}"
        else:
            outcome = proof.call(plan, control.actor, ref)
            _check_cell(proof, plan, ref, outcome)
    escaped = proof.escaped()
    assert not escaped, f"rows changed outside the call's own (rolled back) unit of work: {escaped}"


def _check_listing(proof: Proof, plan: Plan, outcome: Outcome) -> None:
    """A method naming no object, called in A: B's rows untouched, nothing of B shown."""
    if outcome.inside is not None:
        touched = changed(proof.baseline, outcome.inside, proof.b.org.id)
        assert not touched, f"{plan.method.id} in A changed B's rows in {touched}"


def _check_cell(proof: Proof, plan: Plan, ref: Ref, outcome: Outcome) -> None:
    cell = f"{plan.method.id}:{ref.path}"
    passed_in = proof.b.allowed((ref.key,))
    refused = (
        outcome.refused
        or (ref.key.endswith(("token", "pass")) and is_token_error(outcome.error))
        or is_unknown_reference(outcome.error)
    )
    quiet = nothing_here(plan, outcome) and (
        outcome.inside is None or not changed(proof.baseline, outcome.inside)
    )
    exempt = EXEMPT.get(cell)
    if exempt is None:
        assert refused or quiet, f"{cell} with B's {ref.key} {outcome.describe()}" + (
            f"; it wrote to {changed(proof.baseline, outcome.inside)}"
            if outcome.inside is not None
            else ""
        )
        leaks = proof.b.leaks([outcome.result, outcome.error], passed_in)
        assert not leaks, f"{cell} shows B's {leaks}"
        return
    assert not (refused or quiet), f"{cell} is refused now: remove its exemption"
    if outcome.inside is not None:
        touched = changed(proof.baseline, outcome.inside, proof.b.org.id)
        assert not touched, f"{cell} (exempt: {exempt.reason}) changed B's rows in {touched}"
    leaks = proof.b.leaks(
        [outcome.result, outcome.error], passed_in | proof.b.allowed(exempt.may_show)
    )
    assert not leaks, f"{cell} (exempt: {exempt.reason}) shows more of B: {leaks}"


def test_every_exemption_names_a_cell_of_the_matrix() -> None:
    cells = {
        f"{method_id}:{ref.path}"
        for method_id, plan in collected_plans().items()
        for ref in plan.refs
    }
    assert not (set(EXEMPT) | set(KNOWN)) - cells
