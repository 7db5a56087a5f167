"""The volunteer module: profiles, shifts, sign-ups with waitlists, attendance, hours,
certificates, matching and tasks. Reached as ``tx.volunteer``; see docs/modules/volunteer.md.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ngo_kit.audit import ChainCheck
from ngo_kit.hookspecs import hookimpl
from ngo_kit.modules.volunteer import hookspecs
from ngo_kit.modules.volunteer.models import HOURS_FIELDS, HoursEntry
from ngo_kit.modules.volunteer.service import (
    HOURS_CHAIN,
    AlreadyReversed,
    CancellationClosed,
    CheckInClosed,
    DoubleBooked,
    NotEligible,
    ShiftClosed,
    TaskOverAssigned,
    TokenForAnotherShift,
    VolunteerService,
    WrongState,
)
from ngo_kit.plugins import Module, Permission, PersonalData, Registrar

if TYPE_CHECKING:
    import click

    from ngo_kit.context import Context

HERE = Path(__file__).parent

PERMISSIONS = (
    Permission("volunteer.view", "see volunteer profiles, sign-ups, hours and reports", ("staff",)),
    Permission(
        "volunteer.manage", "approve volunteers, edit profiles, run tasks and imports", ("staff",)
    ),
    Permission("shifts.manage", "create activities and shifts, sign others up, match", ("staff",)),
    Permission("attendance.record", "check volunteers in and out, complete shifts", ("staff",)),
    Permission(
        "hours.approve", "approve or reject hours claims, enter and reverse hours", ("staff",)
    ),
    Permission("certificates.issue", "issue and revoke certificates of service hours", ("staff",)),
)


class HoursTotalsCheck:
    """Each profile's ``hours_total`` equals the sum of its hours ledger entries."""

    name = "volunteer_hours_totals"

    def run(self, session: Any) -> list[Any]:
        """Compare every profile's total with its ledger; one problem per difference."""
        import sqlalchemy as sa

        from ngo_kit.audit import Problem
        from ngo_kit.modules.volunteer.models import HoursEntry, Profile

        sums = (
            sa.select(
                HoursEntry.org_id, HoursEntry.user_id, sa.func.sum(HoursEntry.hours).label("total")
            )
            .group_by(HoursEntry.org_id, HoursEntry.user_id)
            .subquery()
        )
        rows = session.execute(
            sa.select(Profile.org_id, Profile.user_id, Profile.hours_total, sums.c.total).outerjoin(
                sums, sa.and_(sums.c.org_id == Profile.org_id, sums.c.user_id == Profile.user_id)
            )
        )
        problems = []
        for org_id, user_id, total, ledger in rows:
            ledger = ledger or 0
            if total != ledger:
                problems.append(
                    Problem(
                        self.name,
                        org_id,
                        f"volunteer {user_id} shows {total} hours but the ledger adds up to {ledger}",
                        str(user_id),
                    )
                )
        return problems


HOURS_CHECK = ChainCheck(
    "volunteer_hours",
    HOURS_CHAIN,
    HoursEntry.__table__,  # type: ignore[arg-type]
    HOURS_FIELDS,
)

MODULE = Module(
    name="volunteer",
    version="0.1.0",
    description="Volunteers, shifts, sign-ups, attendance, service hours, certificates, tasks",
    requires=("registration",),
    permissions=PERMISSIONS,
    checks=(HOURS_CHECK, HoursTotalsCheck()),
    service=VolunteerService,
    models="ngo_kit.modules.volunteer.models",
    hookspecs=hookspecs,
    migrations=HERE / "migrations" / "versions",
    locale_dir=HERE / "i18n",
    sends_messages=True,
    imports=("segno", "pypinyin", "openpyxl", "reportlab", "PIL"),
    install="ngo-kit[volunteer]",
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the volunteer module."""
    register(MODULE)


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """``ngo-kit volunteer import|export-hours``."""
    from ngo_kit.modules.volunteer.commands import volunteer_group

    cli.add_command(volunteer_group)


def _export(tx: Context, user_id: uuid.UUID) -> dict[str, Any] | None:
    service: VolunteerService = tx.volunteer
    return service._personal_data_in(user_id, [tx.org_id])


def _erase(tx: Context, user_id: uuid.UUID) -> None:
    service: VolunteerService = tx.volunteer
    service.erase_person(user_id)


#: Profiles (with skills, certifications and the name index), sign-ups, hours, claims,
#: certificates and task assignments.
PERSONAL_DATA = PersonalData(
    "volunteer",
    (
        "volunteer_profile",
        "volunteer_profile_skill",
        "volunteer_certification",
        "volunteer_name_index",
        "volunteer_signup",
        "volunteer_hours",
        "volunteer_hours_claim",
        "volunteer_certificate",
        "volunteer_assignment",
    ),
    export=_export,
    erase=_erase,
)


@hookimpl(optionalhook=True)
def ngo_kit_register_personal_data(register: Registrar[PersonalData]) -> None:
    """Registration exports or erases a person: the volunteer module's part."""
    register(PERSONAL_DATA)


__all__ = [
    "MODULE",
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
]


if importlib.util.find_spec("fastapi") is not None:  # the web extra is installed
    from ngo_kit.modules.volunteer.web import ngo_kit_register_routes  # noqa: F401
