"""Hook specifications of the volunteer module.

Event hooks run inside the transaction of the call that fired them: what an implementation
writes (points for approved hours, say) commits or rolls back with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngo_kit.hookspecs import hookspec

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.volunteer.schemas import (
        AssignmentRead,
        AttendanceRead,
        HoursRead,
        MatchFactor,
        ProfileRead,
        ShiftRead,
        SignUpRead,
        TaskRead,
    )


@hookspec
def ngo_kit_volunteer_approved(tx: Context, profile: ProfileRead) -> None:
    """Event: a volunteer profile moved to ``approved`` (``tx.volunteer.approve``).

    Called inside the approving transaction with the approved profile. Returns nothing.
    """


@hookspec
def ngo_kit_shift_signed_up(tx: Context, shift: ShiftRead, signup: SignUpRead) -> None:
    """Event: someone signed up to a shift, confirmed or waitlisted (``signup.status``).

    Called inside the sign-up transaction. Returns nothing.
    """


@hookspec
def ngo_kit_shift_cancelled(tx: Context, shift: ShiftRead, signup: SignUpRead) -> None:
    """Event: a sign-up was cancelled (by the volunteer or a coordinator).

    Called inside the cancelling transaction, before anyone waiting is promoted.
    Returns nothing.
    """


@hookspec
def ngo_kit_waitlist_promoted(tx: Context, shift: ShiftRead, signup: SignUpRead) -> None:
    """Event: the first person waiting took a freed place (``signup.status == "confirmed"``).

    Called inside the transaction that freed the place; a message to the volunteer has been
    put in the outbox already. Returns nothing.
    """


@hookspec
def ngo_kit_shift_completed(tx: Context, shift: ShiftRead, attendance: AttendanceRead) -> None:
    """Event: a coordinator completed a shift (``tx.volunteer.complete_shift``).

    ``attendance`` names who attended, who did not show up, and the hours recorded. Called
    inside the completing transaction. Returns nothing.
    """


@hookspec
def ngo_kit_hours_approved(tx: Context, hours: HoursRead) -> None:
    """Event: service hours entered the ledger (attendance, an approved claim, a task).

    ``hours`` has ``user_id``, ``hours`` (a positive ``Decimal``), ``activity_id`` and
    ``shift_id``. Called inside the transaction, so a bridge can award points atomically.
    Returns nothing.
    """


@hookspec
def ngo_kit_hours_reversed(tx: Context, hours: HoursRead, original: HoursRead) -> None:
    """Event: an hours entry was reversed; ``hours`` is the reversing (negative) entry.

    Called inside the reversing transaction, so a bridge can take back what it awarded.
    Returns nothing.
    """


@hookspec
def ngo_kit_task_completed(tx: Context, task: TaskRead, assignment: AssignmentRead) -> None:
    """Event: a reviewer accepted a completed assignment of a task.

    ``assignment.accepted_quantity`` is what counts (pieces or hours); ``task.done`` is the
    task's running total and ``task.status`` is ``done`` once the whole quantity is.
    Called inside the reviewing transaction. Returns nothing.
    """


@hookspec(firstresult=True)
def ngo_kit_match_score(tx: Context, shift: ShiftRead, profile: ProfileRead) -> MatchFactor | None:
    """Decision: an extra factor for ranking ``profile`` for ``shift``.

    Called by ``tx.volunteer.match`` / ``recommend`` once per eligible candidate. Return a
    ``MatchFactor`` (name, score to add, reason shown to the coordinator) or ``None`` to add
    nothing. The first plugin to answer wins.
    """
