"""The registration module's boundary: input models (validated, errors name the field) and
read models."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ngo_kit import i18n
from ngo_kit.errors import register_rule_messages
from ngo_kit.schemas import (
    Day,
    InputModel,
    Integer,
    Name,
    Prose,
    ReadModel,
    Text,
    no_control_characters,
)

from .passwords import MAX_LENGTH, MIN_LENGTH, is_common, normalise_password

register_rule_messages(
    {
        "invalid_email": "is not a valid email address",
        "invalid_phone": "is not a valid mobile phone number",
        "identifier_required": "give an email address or a mobile phone number",
        "password_too_short": "must be at least 8 characters long",
        "password_too_long": "must be at most 128 characters long",
        "common_password": "is one of the most common passwords; choose a less guessable one",
        "birth_date_in_future": "must not be in the future",
        "consent_required": "must accept the current version of '{purpose}'",
        "guardian_required": "a guardian must consent for a person under {age}",
        "unknown_consent": "there is no consent document for '{purpose}'",
        "unknown_field_kind": "must be one of text, long_text, number, date, choice, "
        "multiple_choice, phone, email, yes_no",
        "invalid_choice": "must be one of the listed choices",
        "choices_required": "a choice field needs at least one choice",
        "invalid_name": "must be 1 to 63 lowercase letters, digits or underscores, "
        "starting with a letter",
        "credentials_required": "give a password or a one-time code",
        "invalid_code": "must be 6 digits",
    }
)

# The rules above are translated in this module's catalogue: load it with them.
i18n.load_catalogues(Path(__file__).parent / "i18n")

FIELD_KINDS = (
    "text",
    "long_text",
    "number",
    "date",
    "choice",
    "multiple_choice",
    "phone",
    "email",
    "yes_no",
)
RawPassword = Annotated[str, StringConstraints(strip_whitespace=False)]


def normalise_email(value: str) -> str:
    """An email address normalised for storage and lookup (IDN domains as Unicode, lower case)."""
    value = no_control_characters(value.strip())
    try:
        result = validate_email(value, check_deliverability=False)
    except (EmailNotValidError, UnicodeError, ValueError) as exc:
        raise PydanticCustomError("invalid_email", "is not a valid email address") from exc
    normalised = str(result.normalized).lower()
    if len(normalised) > 320:
        raise PydanticCustomError("invalid_email", "is not a valid email address")
    return normalised


def normalise_phone(value: str, region: str | None = None) -> str:
    """A mobile number in E.164 (``+8613800138000``); national numbers use ``region``."""
    value = no_control_characters(value.strip())
    if len(value) > 40:
        raise PydanticCustomError("invalid_phone", "is not a valid mobile phone number")
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise PydanticCustomError("invalid_phone", "is not a valid mobile phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PydanticCustomError("invalid_phone", "is not a valid mobile phone number")
    kind = phonenumbers.number_type(parsed)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise PydanticCustomError("invalid_phone", "is not a valid mobile phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def check_password(value: str) -> str:
    """NIST rules: 8..128 code points (nothing truncated), not a common password."""
    value = normalise_password(value)
    if len(value) < MIN_LENGTH:
        raise PydanticCustomError("password_too_short", "must be at least 8 characters long")
    if len(value) > MAX_LENGTH:
        raise PydanticCustomError("password_too_long", "must be at most 128 characters long")
    if any(ch == "\x00" or unicodedata.category(ch) == "Cs" for ch in value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    if is_common(value):
        raise PydanticCustomError("common_password", "is one of the most common passwords")
    return value


def check_ident(value: str) -> str:
    """A machine name: lowercase ASCII letters, digits and ``_``, starting with a letter."""
    if not (
        value[:1].isascii()
        and value[:1].isalpha()
        and all(c.isascii() and (c.isdigit() or c.islower() or c == "_") for c in value)
    ):
        raise PydanticCustomError("invalid_name", "must be lowercase letters, digits or _")
    return value


def clean_name(value: str) -> str:
    """A display name in any script: NFC, no control characters, not blank."""
    value = unicodedata.normalize("NFC", no_control_characters(value)).strip()
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


class GuardianIn(InputModel):
    """A parent or guardian consenting for a minor."""

    name: Name = Field(min_length=1, max_length=200)
    relationship: Text = Field(min_length=1, max_length=63)

    _name = field_validator("name", "relationship")(lambda cls, v: clean_name(v))


class RegisterIn(InputModel):
    """A registration: at least an email or a mobile number; the rest as the form asks."""

    email: Text | None = Field(default=None, max_length=320)
    phone: Text | None = Field(default=None, max_length=40)
    display_name: Name = Field(min_length=1, max_length=200)
    password: RawPassword | None = None
    birth_date: Day | None = None
    fields: dict[Text, Any] = Field(default_factory=dict)
    consents: list[Annotated[Text, StringConstraints(max_length=63)]] = Field(
        default_factory=list, max_length=20
    )
    guardian: GuardianIn | None = None
    consent_method: Text = Field(default="registration form", min_length=1, max_length=63)
    invitation: Text | None = Field(default=None, max_length=2000)

    _email = field_validator("email")(lambda cls, v: None if v is None else normalise_email(v))
    _phone = field_validator("phone")(lambda cls, v: None if v is None else _phone_shape(v))
    _name = field_validator("display_name")(lambda cls, v: clean_name(v))
    _password = field_validator("password")(lambda cls, v: None if v is None else check_password(v))
    _method = field_validator("consent_method")(lambda cls, v: clean_name(v))

    @field_validator("birth_date")
    @classmethod
    def _birth_date(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and value > dt.date.today():
            raise PydanticCustomError("birth_date_in_future", "must not be in the future")
        return value

    @model_validator(mode="after")
    def _identifier(self) -> RegisterIn:
        if self.email is None and self.phone is None:
            raise PydanticCustomError(
                "identifier_required", "give an email or a phone number", {"field": "email"}
            )
        return self


def _phone_shape(value: str) -> str:
    """Cheap shape check at the boundary; the service parses with the organisation's region."""
    value = no_control_characters(value.strip())
    if not value or not all(ch.isdigit() or ch in "+-() ." for ch in value):
        raise PydanticCustomError("invalid_phone", "is not a valid mobile phone number")
    if not any(ch.isdigit() for ch in value):
        raise PydanticCustomError("invalid_phone", "is not a valid mobile phone number")
    return value


class SignInIn(InputModel):
    """Sign-in: email or phone, with a password or (phone) a one-time code."""

    email: Text | None = Field(default=None, max_length=320)
    phone: Text | None = Field(default=None, max_length=40)
    password: Annotated[str, StringConstraints(strip_whitespace=False, max_length=1024)] | None = (
        None
    )
    code: Text | None = Field(default=None, max_length=6)
    client: Text | None = Field(default=None, max_length=100)

    _email = field_validator("email")(lambda cls, v: None if v is None else normalise_email(v))
    _phone = field_validator("phone")(lambda cls, v: None if v is None else _phone_shape(v))

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is not None and not (len(value) == 6 and value.isascii() and value.isdigit()):
            raise PydanticCustomError("invalid_code", "must be 6 digits")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SignInIn:
        if self.email is None and self.phone is None:
            raise PydanticCustomError(
                "identifier_required", "give an email or a phone number", {"field": "email"}
            )
        if self.password is None and self.code is None:
            raise PydanticCustomError(
                "credentials_required", "give a password or a code", {"field": "password"}
            )
        return self


class NewPasswordIn(InputModel):
    """A new password (reset or change)."""

    password: RawPassword

    _password = field_validator("password")(lambda cls, v: check_password(v))


class FieldIn(InputModel):
    """A custom field definition."""

    form: Text = Field(default="registration", min_length=1, max_length=63)
    name: Name = Field(min_length=1, max_length=63)
    kind: Text
    required: bool = False
    label_en: Name = Field(default="", max_length=200)
    label_zh: Name = Field(default="", max_length=200)
    choices: list[Annotated[Text, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=200
    )
    min_value: Text | None = Field(default=None, max_length=40)
    max_value: Text | None = Field(default=None, max_length=40)
    max_length: Integer | None = Field(default=None, ge=1, le=10000)
    position: Integer = Field(default=0, ge=0, le=10000)

    _ident = field_validator("form", "name")(lambda cls, v: check_ident(v))

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in FIELD_KINDS:
            raise PydanticCustomError("unknown_field_kind", "unknown field kind")
        return value

    @field_validator("label_en", "label_zh")
    @classmethod
    def _label(cls, value: str) -> str:
        return no_control_characters(value)

    @model_validator(mode="after")
    def _choices(self) -> FieldIn:
        if self.kind in ("choice", "multiple_choice") and not self.choices:
            raise PydanticCustomError(
                "choices_required", "a choice field needs choices", {"field": "choices"}
            )
        return self


class ConsentDocumentIn(InputModel):
    """A new version of a consent document for one purpose."""

    purpose: Text = Field(min_length=1, max_length=63)
    title: Name = Field(min_length=1, max_length=200)
    body: Prose = Field(min_length=1, max_length=100_000)
    required: bool = False

    _purpose = field_validator("purpose")(lambda cls, v: check_ident(v))
    _title = field_validator("title")(lambda cls, v: clean_name(v))


# --- read models ------------------------------------------------------------------------


class UserRead(ReadModel):
    """An account as services return it (no secrets)."""

    id: uuid.UUID
    email: str | None
    phone: str | None
    display_name: str
    status: str
    created_at: dt.datetime
    birth_date: dt.date | None = None
    email_verified: bool = False
    phone_verified: bool = False


class SignIn(ReadModel):
    """A successful sign-in: the session token (show it once, store only on the client)."""

    token: str
    user: UserRead
    expires_at: dt.datetime


class InvitationRead(ReadModel):
    """An invitation; ``token`` is only present when it was just created."""

    id: uuid.UUID
    email: str | None
    phone: str | None
    role: str
    status: str
    expires_at: dt.datetime
    created_at: dt.datetime
    token: str | None = None


class JoinRequestRead(ReadModel):
    """A request to join the organisation."""

    id: uuid.UUID
    account_id: uuid.UUID
    message: str | None
    status: str
    created_at: dt.datetime


class FieldRead(ReadModel):
    """A custom field definition, from an organisation's data or from a plugin."""

    form: str
    name: str
    kind: str
    required: bool = False
    label_en: str = ""
    label_zh: str = ""
    choices: tuple[str, ...] = ()
    min_value: str | None = None
    max_value: str | None = None
    max_length: int | None = None
    position: int = 0
    source: str = "organisation"


class ConsentDocumentRead(ReadModel):
    """One version of a consent document."""

    id: uuid.UUID
    purpose: str
    version: int
    title: str
    body: str
    required: bool
    created_at: dt.datetime


class ConsentRead(ReadModel):
    """A recorded consent."""

    id: uuid.UUID
    account_id: uuid.UUID
    purpose: str
    version: int
    given_by: str
    method: str
    accepted_at: dt.datetime
    withdrawn_at: dt.datetime | None


class PurgeResult(ReadModel):
    """What ``purge`` deleted: rows that no rule reads any more."""

    sessions: int
    codes: int
    throttles: int
