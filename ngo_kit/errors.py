"""The error hierarchy every service raises.

Each error has a stable ``code`` (for programs and API clients) and a message rendered in the
caller's locale. Messages are English gettext ids with ``{placeholders}``; the Chinese text
lives in the ``zh_CN`` catalogue. ``err.message_in("zh_CN")`` renders any locale on demand.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ngo_kit import i18n


class NgoKitError(Exception):
    """Base of every error ngo-kit raises on purpose."""

    code: ClassVar[str] = "ngo_kit.error"
    template: ClassVar[str] = "Something went wrong."
    #: True when the error was translated from a database driver's and quotes it: its text (the
    #: driver's message, table and constraint names, sometimes the values refused) is for
    #: operators.
    from_database: bool = False

    def __init__(self, message: str | None = None, /, **params: Any) -> None:
        self.params = params
        #: the locale current where the error was raised (the call's or the organisation's)
        self.locale = i18n.current_locale()
        if message is not None:
            self.template_override: str | None = message
        else:
            self.template_override = None
        super().__init__(self.message_in(i18n.DEFAULT_LOCALE))

    def message_in(self, locale: str) -> str:
        """The message in ``locale`` (``en`` or ``zh_CN``), placeholders filled."""
        template = self.template_override or self.template
        translated = i18n.gettext(template, locale)
        params = {k: _render_param(v, locale) for k, v in self.params.items()}
        try:
            return translated.format(**params)
        except (KeyError, IndexError, ValueError):
            return translated

    @property
    def message(self) -> str:
        """The message in the locale of the call that raised it."""
        return self.message_in(self.locale)

    def translations(self) -> dict[str, str]:
        """The message in every supported locale."""
        return {loc: self.message_in(loc) for loc in i18n.SUPPORTED_LOCALES}

    def to_dict(self, locale: str | None = None) -> dict[str, Any]:
        """A JSON-ready description: code, message, and the parameters that are plain values."""
        loc = i18n.normalise_locale(locale) if locale else self.locale
        data: dict[str, Any] = {"code": self.code, "message": self.message_in(loc)}
        for key, value in self.params.items():
            if isinstance(value, str | int | float | bool) or value is None:
                data[key] = value
            else:
                data[key] = str(value)
        return data

    def __str__(self) -> str:
        return self.message


def _render_param(value: Any, locale: str) -> Any:
    if isinstance(value, NgoKitError):
        return value.message_in(locale)
    if isinstance(value, LocalisedText):
        return value.in_locale(locale)
    return value


class LocalisedText:
    """A message id that is translated when the error around it is rendered."""

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params

    def in_locale(self, locale: str) -> str:
        """Render in ``locale``."""
        text = i18n.gettext(self.message, locale)
        try:
            return text.format(**self.params)
        except (KeyError, IndexError, ValueError):
            return text

    def __str__(self) -> str:
        return self.in_locale(i18n.current_locale())


class ValidationFailed(NgoKitError):
    """Input broke a rule. ``field`` names the input, ``rule`` the rule (stable, e.g. ``too_short``).

    ``errors`` lists every problem found, each a dict with ``field``, ``rule`` and ``message``.
    """

    code = "validation_failed"
    template = "{field}: {reason}"

    def __init__(
        self,
        field: str,
        rule: str,
        reason: str | LocalisedText | None = None,
        *,
        errors: list[ValidationFailed] | None = None,
        **params: Any,
    ) -> None:
        self.field = field
        self.rule = rule
        self.errors: list[ValidationFailed] = errors or [self]
        if reason is None:
            reason = LocalisedText(
                RULE_MESSAGES.get(rule, "breaks the rule '{rule}'"), rule=rule, **params
            )
        elif isinstance(reason, str):
            reason = LocalisedText(reason, **params)
        super().__init__(field=field, rule=rule, reason=reason, **params)

    def to_dict(self, locale: str | None = None) -> dict[str, Any]:
        data = super().to_dict(locale)
        loc = i18n.normalise_locale(locale) if locale else self.locale
        data.pop("reason", None)
        if len(self.errors) > 1 or self.errors[0] is not self:
            data["errors"] = [
                {"field": e.field, "rule": e.rule, "message": e.message_in(loc)}
                for e in self.errors
            ]
        return data


# Messages for the rules pydantic and our validators report; {placeholders} come from the rule.
RULE_MESSAGES: dict[str, str] = {
    "missing": "is required",
    "too_short": "must be at least {min_length} long",
    "too_long": "must be at most {max_length} long",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be yes or no",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "datetime_parsing": "must be a date and time",
    "datetime_from_date_parsing": "must be a date and time",
    "uuid_parsing": "must be a valid identifier",
    "uuid_type": "must be a valid identifier",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_pattern_mismatch": "has an invalid format",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "extra_forbidden": "is not a known field",
    "value_error": "is invalid: {error}",
    "decimal_max_digits": "has too many digits",
    "decimal_max_places": "has too many decimal places",
    "decimal_whole_digits": "has too many digits before the decimal point",
    "finite_number": "must be a finite number",
    "unknown_locale": "must be one of en, zh_CN",
    "unknown_timezone": "must be an IANA time zone such as Asia/Shanghai",
    "invalid_slug": "must be 2 to 63 lowercase letters, digits or hyphens",
    "control_characters": "must not contain control characters",
    "blank": "must not be blank",
    "invalid": "is invalid",
    # the shared boundary types of ngo_kit.schemas
    "timezone_aware": "must include a time zone",
    "datetime_out_of_range": "must fall between {earliest} and {latest}",
    "date_out_of_range": "must fall between {earliest} and {latest}",
    "bidi_override": "must not contain text direction overrides",
    "url_scheme": "must be an http or https address",
    "float_not_allowed": "must be a decimal number given as Decimal, int or text, not a float",
    "not_in_future": "must be in the future",
    "invalid_kind": "must be an event kind such as points.awarded",
}


class NotFound(NgoKitError):
    """The thing does not exist, or belongs to another organisation (the two are not told apart)."""

    code = "not_found"
    template = "{kind} {ident} was not found."

    def __init__(self, kind: str, ident: object = "", **params: Any) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(kind=LocalisedText(kind), ident=str(ident), **params)


class PermissionDenied(NgoKitError):
    """The actor lacks the named permission in this organisation."""

    code = "permission_denied"
    template = "Permission '{permission}' is needed for this."

    def __init__(self, permission: str, **params: Any) -> None:
        self.permission = permission
        super().__init__(permission=permission, **params)


class Conflict(NgoKitError):
    """The request clashes with the current state (stock, balance, capacity, uniqueness)."""

    code = "conflict"
    template = "The request conflicts with the current state."


class AlreadyExists(Conflict):
    """A thing with the same unique identity already exists."""

    code = "already_exists"
    template = "{kind} '{ident}' already exists."

    def __init__(self, kind: str, ident: object = "", **params: Any) -> None:
        self.kind = kind
        super().__init__(kind=LocalisedText(kind), ident=str(ident), **params)


class InsufficientStock(Conflict):
    """An issue, transfer or scrap asks for more than is on hand."""

    code = "insufficient_stock"
    template = "Not enough stock: {requested} asked for, {available} on hand."


class InsufficientPoints(Conflict):
    """A deduction, transfer or redemption asks for more points than the balance holds."""

    code = "insufficient_points"
    template = "Not enough points: {requested} asked for, balance is {available}."


class ShiftFull(Conflict):
    """Every place on the shift is taken."""

    code = "shift_full"
    template = "The shift is full."


class TransactionConflict(Conflict):
    """The unit of work lost a race with a concurrent one and the database undid all of it.

    A deadlock, a lock wait that timed out, a serialization failure, or SQLite still busy
    after its busy timeout. Nothing was saved, so running the same unit of work again is safe
    and usually succeeds (``kit.retrying`` does it). ``reason`` says which, as a stable word:
    ``deadlock``, ``lock_timeout``, ``serialization_failure`` or ``busy``.
    """

    code = "transaction_conflict"
    template = (
        "Another change made at the same time got in the way; nothing was saved. Please try again."
    )

    def __init__(self, reason: str, **params: Any) -> None:
        self.reason = reason
        super().__init__(reason=reason, **params)


class DatabaseUnavailable(NgoKitError):
    """The database could not be reached, or the connection was lost mid-transaction.

    Nothing of the failed unit of work was saved; retrying it later is safe (idempotency keys
    make retries of mutating calls harmless).
    """

    code = "database_unavailable"
    template = "The database is unavailable; nothing was saved. Please try again. ({error})"


class ConfigurationError(NgoKitError):
    """The kit was set up wrongly: missing module, cycle, duplicate name, default secret...

    ``check`` is a stable identifier such as ``core.E003`` that docs and searches can name.
    """

    code = "configuration_error"
    template = "[{check}] {detail}"

    def __init__(self, check: str, detail: str, **params: Any) -> None:
        self.check = check
        super().__init__(check=check, detail=LocalisedText(detail, **params), **params)


class TokenInvalid(NgoKitError):
    """A signed token was refused. Subclasses say why."""

    code = "token_invalid"
    template = "The link or code is not valid."


class TokenExpired(TokenInvalid):
    """The token's lifetime has passed."""

    code = "token_expired"
    template = "The link or code has expired."


class TokenTampered(TokenInvalid):
    """The token's signature does not match: it was altered or forged."""

    code = "token_tampered"
    template = "The link or code has been altered and cannot be trusted."


class TokenUsed(TokenInvalid):
    """A single-use token was used already."""

    code = "token_used"
    template = "The link or code has already been used."


class TokenWrongPurpose(TokenInvalid):
    """The token was made for another purpose (a reset token used as an invitation, say)."""

    code = "token_wrong_purpose"
    template = "The link or code was issued for another purpose."


class PluginError(NgoKitError):
    """A plugin's hook implementation raised; the transaction was rolled back."""

    code = "plugin_error"
    template = "Plugin '{plugin}' failed in hook {hook}: {error}"

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.original = error
        detail = error.message_in if isinstance(error, NgoKitError) else None
        super().__init__(plugin=plugin, hook=hook, error=error if detail else repr(error))


class CheckpointRefused(NgoKitError):
    """A chain checkpoint cannot be trusted: not a checkpoint, an unknown key, a bad signature."""

    code = "checkpoint_refused"
    template = "The checkpoint {source} was refused: {why}"


class IntegrityFailed(NgoKitError):
    """Verification found problems, so no checkpoint was taken of the chains as they are."""

    code = "integrity_failed"
    template = (
        "Verification found {count} problem(s), so no checkpoint was taken. The first: {first}"
    )


def register_rule_messages(messages: dict[str, str]) -> None:
    """Add English messages for a module's validation rules (translate them in its catalogue).

    A rule that is registered twice with different text is refused, so two modules cannot
    silently give one rule two meanings.
    """
    for rule, text in messages.items():
        existing = RULE_MESSAGES.get(rule)
        if existing is not None and existing != text:
            raise ValueError(f"validation rule {rule!r} already means {existing!r}")
        RULE_MESSAGES[rule] = text


class SelfActionRefused(PermissionDenied):
    """Separation of duties: the actor may not use ``permission`` on themselves here.

    Nobody awards, approves or certifies themselves unless the organisation allowed it for
    that permission (``tx.tenancy.allow_self_action``).
    """

    code = "self_action_refused"
    template = (
        "Separation of duties: '{permission}' may not be used on yourself in this organisation."
    )


class KeyReused(Conflict):
    """An idempotency key was used before, by the same actor for the same operation, with
    other parameters (``ngo_kit.idempotency``)."""

    code = "idempotency_key_reused"
    template = (
        "The key '{key}' was used before for a different request; use a new key for a new request."
    )

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        super().__init__(key=key, **params)
