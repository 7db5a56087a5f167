"""Errors of the registration module (subclasses of core's hierarchy)."""

from __future__ import annotations

from ngo_kit.errors import Conflict, NgoKitError, PermissionDenied


class SignInFailed(NgoKitError):
    """Wrong identifier, password or code: one error for all, so accounts cannot be enumerated."""

    code = "sign_in_failed"
    template = "The account or password is not right."


class TooManyAttempts(NgoKitError):
    """Too many failed attempts for this account or client; try again later."""

    code = "too_many_attempts"
    template = "Too many failed attempts; try again later."


class AccountSuspended(PermissionDenied):
    """The account is suspended (or erased) and cannot sign in."""

    code = "account_suspended"
    template = "This account is suspended."

    def __init__(self) -> None:
        super().__init__("registration.sign_in")


class JoiningClosed(Conflict):
    """The organisation does not admit members this way (see its ``joining`` setting)."""

    code = "joining_closed"
    template = "This organisation admits new members {how}."


class WrongPassword(NgoKitError):
    """The current password given to change the password is not right."""

    code = "wrong_password"
    template = "The current password is not right."
