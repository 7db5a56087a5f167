"""Integrity checks of the registration module, run by ``ngo-kit verify`` / ``kit.verify()``."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ngo_kit.audit import Problem

from .models import Account, FieldValues, SignInSession


@dataclass(frozen=True)
class ErasureCheck:
    """An erased account keeps no personal data: no identifiers, name, birth date, password,
    sessions or custom-field answers."""

    name: str = "registration.erasure"

    def run(self, session: Session) -> list[Problem]:
        """One problem per erased account that still holds personal data."""
        leftovers = session.execute(
            sa.select(Account.id).where(
                Account.status == "erased",
                sa.or_(
                    Account.email.is_not(None),
                    Account.phone.is_not(None),
                    Account.birth_date.is_not(None),
                    Account.password_hash.is_not(None),
                    Account.display_name != "(erased)",
                    sa.exists().where(SignInSession.account_id == Account.id),
                    sa.exists().where(FieldValues.account_id == Account.id),
                ),
            )
        )
        return [
            Problem(
                self.name, None, f"erased account {ident} still holds personal data", str(ident)
            )
            for (ident,) in leftovers
        ]


ERASURE_CHECK = ErasureCheck()
