"""Errors of the registration module (subclasses of core's hierarchy)."""

from __future__ import annotations

from ngo_kit.errors import Conflict, NgoKitError, PermissionDenied


class SignInFailed(NgoKitError):
    """Wrong identifier, password or code: one error for all, so accounts cannot be enumerated."""

    code = "sign_in_failed"
    template = "The account or password is not right."


class TooManyAttempts(NgoKitError):
    """Too many failed attempts for this account or client; try again later.

    ``retry_after`` is how many seconds until the lock ends (``None`` when waiting does not
    help, as for a one-time code that took too many wrong guesses: ask for a new one). The web
    routes send it as the ``Retry-After`` header of their 429.
    """

    code = "too_many_attempts"
    template = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        if retry_after is None:
            super().__init__()
        else:
            super().__init__(retry_after=retry_after)


class TooManyRequests(TooManyAttempts):
    """Too many codes or links asked for one recipient, account or client; try again later.

    Raised the same way whether or not an account has the address, so it tells nothing.
    """

    code = "too_many_requests"
    template = "Too many codes or links were requested; try again later."


class AccountSuspended(PermissionDenied):
    """The account is suspended (or erased) and cannot sign in."""

    code = "account_suspended"
    template = "This account is suspended."

    def __init__(self) -> None:
        super().__init__("registration.sign_in")


class JoinNeedsThePerson(PermissionDenied):
    """Staff tried to make an existing account a member on their own say-so.

    A person joins an organisation themselves (``join``, ``request_to_join``) or by accepting
    an invitation (``invite``), so nobody is put on a list they did not agree to.
    """

    code = "join_needs_the_person"
    template = "A person joins by themselves or by accepting an invitation; invite them instead."

    def __init__(self) -> None:
        super().__init__("registration.self")


class JoiningClosed(Conflict):
    """The organisation does not admit members this way (see its ``joining`` setting)."""

    code = "joining_closed"
    template = "This organisation admits new members {how}."


class WrongPassword(NgoKitError):
    """The current password given to change the password is not right."""

    code = "wrong_password"
    template = "The current password is not right."
