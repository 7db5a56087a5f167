"""The volunteer service (``tx.volunteer``), composed of one part per thing it manages.

Each part is a class in its own file, named for what it manages: ``profiles.py`` (profiles,
the skill list, approval, imports), ``shifts.py`` (activities and shifts), ``sign_ups.py``
(sign-up, the waitlist, cancellation), ``attendance.py`` (check-in and check-out, no-shows,
completed shifts), ``hours.py`` (the hours ledger, claims and their approval, reports),
``certificates.py``, ``matching.py`` (matching, recommendations, search), ``tasks.py`` (tasks
and assignments) and ``privacy.py`` (a person's export and erasure). What they share (the
``tx``, settings, statements, small helpers) lives in ``base.py``; the errors in ``errors.py``.
"""

from __future__ import annotations

from ngo_kit.modules.volunteer.attendance import (
    CHECKIN_PURPOSE,
    PASS_PURPOSE,
    Attendance,
    round_hours,
)
from ngo_kit.modules.volunteer.base import (
    ACTIVE,
    ATTENDED,
    CANCELLED,
    CONFIRMED,
    DEFAULT_SETTINGS,
    HOURS_PLACES,
    NO_SHOW,
    SQL,
    WAITLISTED,
    ZERO,
    age_on,
    name_keys,
)
from ngo_kit.modules.volunteer.certificates import CERTIFICATE_PURPOSE, Certificates
from ngo_kit.modules.volunteer.errors import (
    AlreadyReversed,
    CancellationClosed,
    CheckInClosed,
    DoubleBooked,
    NotEligible,
    ShiftClosed,
    TaskOverAssigned,
    TokenForAnotherShift,
    WrongState,
)
from ngo_kit.modules.volunteer.hours import HOURS_CHAIN, Hours
from ngo_kit.modules.volunteer.matching import Matching
from ngo_kit.modules.volunteer.privacy import Privacy
from ngo_kit.modules.volunteer.profiles import Profiles
from ngo_kit.modules.volunteer.shifts import Shifts
from ngo_kit.modules.volunteer.sign_ups import SignUps
from ngo_kit.modules.volunteer.tasks import Tasks


class VolunteerService(
    Profiles, Shifts, SignUps, Attendance, Hours, Certificates, Matching, Tasks, Privacy
):
    """``tx.volunteer``: profiles, shifts, sign-ups, attendance, hours, certificates, tasks."""


__all__ = [
    "ACTIVE",
    "ATTENDED",
    "CANCELLED",
    "CERTIFICATE_PURPOSE",
    "CHECKIN_PURPOSE",
    "CONFIRMED",
    "DEFAULT_SETTINGS",
    "HOURS_CHAIN",
    "HOURS_PLACES",
    "NO_SHOW",
    "PASS_PURPOSE",
    "SQL",
    "WAITLISTED",
    "ZERO",
    "AlreadyReversed",
    "CancellationClosed",
    "CheckInClosed",
    "DoubleBooked",
    "NotEligible",
    "ShiftClosed",
    "TaskOverAssigned",
    "TokenForAnotherShift",
    "VolunteerService",
    "WrongState",
    "age_on",
    "name_keys",
    "round_hours",
]
