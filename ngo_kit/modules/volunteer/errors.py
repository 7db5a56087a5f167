"""The volunteer module's errors (importable from ``ngo_kit.modules.volunteer`` too)."""

from __future__ import annotations

from typing import Any

from ngo_kit.errors import Conflict, LocalisedText, TokenInvalid


class NotEligible(Conflict):
    """The volunteer does not meet the shift's requirements; ``rule`` says which one."""

    code = "not_eligible"
    template = "Not eligible for this shift: {reason}"

    def __init__(self, rule: str, reason: str, **params: Any) -> None:
        self.rule = rule
        super().__init__(rule=rule, reason=LocalisedText(reason, **params), **params)


class DoubleBooked(Conflict):
    """The volunteer already holds a place on a shift that overlaps this one."""

    code = "double_booked"
    template = "Already signed up to an overlapping shift ({shift_id})."


class CancellationClosed(Conflict):
    """The shift's cancellation cut-off has passed; a coordinator can still cancel."""

    code = "cancellation_closed"
    template = "Cancellation closed {hours} hours before the shift starts."


class ShiftClosed(Conflict):
    """The shift is completed, cancelled or already started: no sign-ups or changes."""

    code = "shift_closed"
    template = "The shift is closed."


class CheckInClosed(TokenInvalid):
    """A check-in code was used outside the window around its shift."""

    code = "checkin_closed"
    template = "Check-in is open from {opens} to {closes} only."


class TokenForAnotherShift(TokenInvalid):
    """A check-in code belongs to a different shift."""

    code = "token_other_shift"
    template = "This check-in code is for another shift."


class AlreadyReversed(Conflict):
    """An hours entry can be reversed once, and a reversal cannot be reversed."""

    code = "already_reversed"
    template = "Hours entry {entry} is already reversed or is itself a reversal."


class TaskOverAssigned(Conflict):
    """Assignments would add up to more than the task's quantity."""

    code = "task_over_assigned"
    template = "Only {available} of the task is left to assign."


class WrongState(Conflict):
    """The thing is not in a state that allows this step."""

    code = "wrong_state"
    template = "{kind} is {state}; this needs {needed}."


__all__ = [
    "AlreadyReversed",
    "CancellationClosed",
    "CheckInClosed",
    "DoubleBooked",
    "NotEligible",
    "ShiftClosed",
    "TaskOverAssigned",
    "TokenForAnotherShift",
    "WrongState",
]
