"""``tx.registration``: accounts, verification, sign-in, membership, custom fields, consent and
personal-data rights. The only place with the registration module's rules.

The service is composed of one part per thing it manages, each in the file named for it:
``accounts.py`` (sign-up, look-ups, suspension, verification, changes of address or number),
``sign_in.py`` (passwords and codes, sessions, throttling, password reset and change),
``membership.py`` (invitations, joining, join requests, roles, members), ``fields.py``
(custom fields and answers) and ``privacy.py`` (consent, export, erasure, purge). What they
share (the transaction, settings, statements, messages, send counts, one-time codes) is in
``base.py``. Names other code imports from this module stay importable here.
"""

from __future__ import annotations

from .accounts import Accounts
from .base import (
    ACCOUNT_FAILURES,
    ACCOUNT_SENDS,
    BASIC_ROLES,
    CHANGE,
    CHANGE_TAKEN,
    CLIENT_FAILURES,
    CLIENT_SENDS,
    CODE_CHANGE_PHONE,
    CODE_REQUEST,
    CODE_SIGN_IN,
    CODE_VERIFY_PHONE,
    ERASED_NAME,
    FAILURES,
    NO_ACCOUNT_CODE,
    NO_ACCOUNT_RESET,
    NOTICES,
    PURPOSE_CHANGE_EMAIL,
    PURPOSE_INVITATION,
    PURPOSE_RESET,
    PURPOSE_VERIFY_EMAIL,
    RESET,
    SEND_SUBJECTS,
    SENDS,
    SESSION_USE_STEP,
    SIGN_IN_CODE,
    SQL,
    TRIED_TO_REGISTER,
    _digest,
)
from .fields import CustomFields
from .membership import Memberships
from .privacy import (
    REGISTRATION_DATA,
    REGISTRATION_TABLES,
    Privacy,
    erase_registration_data,
    export_registration_data,
    personal_data_registry,
)
from .sign_in import SigningIn


class RegistrationService(Accounts, SigningIn, Memberships, CustomFields, Privacy):
    """``tx.registration``: one per transaction; every query is filtered by ``tx``'s organisation
    except those on accounts, which are shared across organisations and reached through a
    membership of ``tx``'s organisation."""


__all__ = [
    "ACCOUNT_FAILURES",
    "ACCOUNT_SENDS",
    "BASIC_ROLES",
    "CHANGE",
    "CHANGE_TAKEN",
    "CLIENT_FAILURES",
    "CLIENT_SENDS",
    "CODE_CHANGE_PHONE",
    "CODE_REQUEST",
    "CODE_SIGN_IN",
    "CODE_VERIFY_PHONE",
    "ERASED_NAME",
    "FAILURES",
    "NOTICES",
    "NO_ACCOUNT_CODE",
    "NO_ACCOUNT_RESET",
    "PURPOSE_CHANGE_EMAIL",
    "PURPOSE_INVITATION",
    "PURPOSE_RESET",
    "PURPOSE_VERIFY_EMAIL",
    "REGISTRATION_DATA",
    "REGISTRATION_TABLES",
    "RESET",
    "SENDS",
    "SEND_SUBJECTS",
    "SESSION_USE_STEP",
    "SIGN_IN_CODE",
    "SQL",
    "TRIED_TO_REGISTER",
    "RegistrationService",
    "_digest",
    "erase_registration_data",
    "export_registration_data",
    "personal_data_registry",
]
