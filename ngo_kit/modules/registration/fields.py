"""Custom fields: an organisation's (and plugins') extra questions on its forms, their
validation and the answers stored for each person."""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic
import sqlalchemy as sa
from pydantic import AfterValidator, ConfigDict, Field

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from ngo_kit.operations import operation
from ngo_kit.plugins import Registrar, collect
from ngo_kit.schemas import coerce, no_control_characters, validation_failed

from .base import (
    SQL,
    RegistrationBase,
    _changed,
    _uuid,
)
from .models import (
    FieldDefinition,
    FieldValues,
)
from .schemas import (
    FieldIn,
    FieldRead,
    normalise_email,
    normalise_phone,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context


class CustomFields(RegistrationBase):
    """``tx.registration``'s custom fields and the answers to them."""

    @operation(
        "POST /fields", permission="registration.manage", status=201, errors=(AlreadyExists,)
    )
    def define_field(self, data: FieldIn | dict[str, Any] | None = None, /, **kw: Any) -> FieldRead:
        """Add a custom field to one of the organisation's forms (``registration.manage``)."""
        tx = self.tx
        tx.require("registration.manage")
        spec = coerce(FieldIn, data, kw)
        for limit in ("min_value", "max_value"):
            value = getattr(spec, limit)
            if value is not None:
                _check_limit(spec.kind, limit, value)
        if any(f.name == spec.name for f in self._plugin_fields(spec.form)):
            raise AlreadyExists("Field", spec.name)
        with tx.translate_integrity(AlreadyExists("Field", spec.name)):
            tx.connection.execute(
                sa.insert(FieldDefinition).values(
                    id=new_id(), org_id=tx.org_id, created_at=utcnow(), **spec.model_dump()
                )
            )
        tx.audit("field.defined", "field", f"{spec.form}.{spec.name}", f"field {spec.name} added")
        return FieldRead(**spec.model_dump(), source="organisation")

    @operation("DELETE /fields/{form}/{name}", permission="registration.manage")
    def remove_field(self, form: str, name: str) -> None:
        """Remove an organisation's field (``registration.manage``); stored answers stay."""
        tx = self.tx
        tx.require("registration.manage")
        done = tx.connection.execute(
            sa.delete(FieldDefinition).where(
                FieldDefinition.org_id == tx.org_id,
                FieldDefinition.form == form,
                FieldDefinition.name == name,
            )
        )
        if _changed(done) != 1:
            raise NotFound("Field", name)
        tx.audit("field.removed", "field", f"{form}.{name}", f"field {name} removed")

    @operation("GET /fields", public=True)
    def fields(self, form: str = "registration") -> list[FieldRead]:
        """The fields of ``form``: plugins' (``ngo_kit_register_fields``) and the organisation's."""
        rows = SQL(self.tx, "fields").all(self.tx, o=self.tx.org_id, f=form)
        return self._fields_from(rows, form)

    def _fields_from(self, rows: list[dict[str, Any]], form: str) -> list[FieldRead]:
        """``fields(form)`` from the organisation's rows of that form."""
        own = [
            FieldRead(
                form=r["form"],
                name=r["name"],
                kind=r["kind"],
                required=r["required"],
                label_en=r["label_en"],
                label_zh=r["label_zh"],
                choices=tuple(r["choices"] or ()),
                min_value=r["min_value"],
                max_value=r["max_value"],
                max_length=r["max_length"],
                position=r["position"],
            )
            for r in rows
        ]
        return sorted([*self._plugin_fields(form), *own], key=lambda f: (f.position, f.name))

    @operation("POST /fields/{form}/validate", public=True, changes=False)
    def validate_fields(
        self, form: str, values: dict[str, Any] | None, *, prefix: str = "fields"
    ) -> dict[str, Any]:
        """Check answers against ``form``'s fields; return them cleaned and JSON-ready.

        A pydantic model is built from the definitions. Numbers come back as exact decimal
        strings, dates as ``YYYY-MM-DD``, phones in E.164, emails normalised; fields left out
        that are not required are omitted. Errors are ``ValidationFailed`` naming
        ``<prefix>.<field name>``; unknown names are refused (``extra_forbidden``). The
        volunteer module reuses this for its profile form.
        """
        return self._validate_fields(self.fields(form), values, prefix)

    def _validate_fields(
        self, definitions: list[FieldRead], values: dict[str, Any] | None, prefix: str
    ) -> dict[str, Any]:
        """``validate_fields`` against definitions already read."""
        if not isinstance(values, dict):
            if values is None:
                values = {}
            else:
                raise ValidationFailed(prefix, "dict_type", "must be a mapping of field names")
        if not definitions and not values:
            return {}
        model = self._form_model(definitions)
        try:
            checked = model.model_validate(values)
        except pydantic.ValidationError as exc:
            failed = validation_failed(exc)
            problems = [
                ValidationFailed(f"{prefix}.{e.field}", e.rule, **_params(e)) for e in failed.errors
            ]
            first = problems[0]
            raise ValidationFailed(
                first.field, first.rule, errors=problems, **_params(first)
            ) from None
        dumped = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {k: v for k, v in dumped.items() if k in values or v is not None}

    @operation("GET /users/{user_id}/fields", permission="members.view", own=True)
    def field_values(self, user_id: uuid.UUID | str, form: str = "registration") -> dict[str, Any]:
        """A member's stored answers to ``form`` (the person, the system or ``members.view``)."""
        key = _uuid(user_id, "User")
        if not self._visible(key):
            raise PermissionDenied("members.view")
        found = self.tx.connection.scalar(
            sa.select(FieldValues.values).where(
                FieldValues.org_id == self.tx.org_id,
                FieldValues.account_id == key,
                FieldValues.form == form,
            )
        )
        return dict(found or {})

    @operation("PUT /users/{user_id}/fields", own=True)
    def save_field_values(
        self,
        values: dict[str, Any],
        *,
        user_id: uuid.UUID | str | None = None,
        form: str = "registration",
    ) -> dict[str, Any]:
        """Validate and store the person's answers to ``form`` (the person or the system)."""
        key = self._self_or_system(user_id)
        if not self._is_member(key):
            raise NotFound("User", key)
        cleaned = self.validate_fields(form, values)
        self._store_fields(key, form, cleaned)
        self.tx.audit("fields.saved", "account", key, f"answers to {form} saved")
        return cleaned

    def _plugin_fields(self, form: str) -> list[FieldRead]:
        return [f for f in _plugin_field_registry(self.tx.kit) if f.form == form]

    def _form_model(self, definitions: list[FieldRead]) -> type[pydantic.BaseModel]:
        specs: dict[str, Any] = {}
        for i, f in enumerate(definitions):
            annotation = _field_type(f, self.tx)
            default = ... if f.required else None
            specs[f"f{i}"] = (
                annotation if f.required else annotation | None,
                Field(default=default, alias=f.name),
            )
        config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=False)
        return pydantic.create_model("CustomFields", __config__=config, **specs)

    def _store_fields(self, key: uuid.UUID, form: str, values: dict[str, Any]) -> None:
        tx = self.tx
        now = utcnow()
        done = tx.connection.execute(
            sa.update(FieldValues)
            .where(
                FieldValues.org_id == tx.org_id,
                FieldValues.account_id == key,
                FieldValues.form == form,
            )
            .values(values=values, updated_at=now)
        )
        if _changed(done) == 0:
            tx.connection.execute(
                sa.insert(FieldValues).values(
                    id=new_id(),
                    org_id=tx.org_id,
                    account_id=key,
                    form=form,
                    values=values,
                    updated_at=now,
                )
            )


def _params(error: ValidationFailed) -> dict[str, Any]:
    return {k: v for k, v in error.params.items() if k not in ("field", "rule", "reason")}


_FIELD_REGISTRIES: weakref.WeakKeyDictionary[Any, list[FieldRead]] = weakref.WeakKeyDictionary()


def _plugin_field_registry(kit: Any) -> list[FieldRead]:
    """Fields registered through ``ngo_kit_register_fields``, collected once per kit."""
    found = _FIELD_REGISTRIES.get(kit)
    if found is not None:
        return found
    registrar: Registrar[FieldRead] = Registrar("field", FieldRead, lambda f: f"{f.form}.{f.name}")
    collect(kit.pm, "ngo_kit_register_fields", registrar)
    fields = []
    for reg in registrar:
        item = reg.item
        try:
            FieldIn(**item.model_dump(exclude={"source"}))
        except ValidationFailed as exc:
            raise ConfigurationError(
                "registration.E002",
                "plugin '{plugin}' registered an invalid field {name}: {error}",
                plugin=reg.plugin,
                name=item.name,
                error=exc.message_in("en"),
            ) from exc
        fields.append(item.model_copy(update={"source": reg.plugin}))
    _FIELD_REGISTRIES[kit] = fields
    return fields


def _check_limit(kind: str, limit: str, value: str) -> None:
    if kind == "number":
        try:
            Decimal(value)
        except InvalidOperation:
            raise ValidationFailed(limit, "decimal_parsing") from None
    elif kind == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(limit, "date_parsing") from None
    else:
        raise ValidationFailed(limit, "invalid")


def _field_type(f: FieldRead, tx: Context) -> Any:
    """The pydantic type of one custom field, with its limits."""
    if f.kind in ("text", "long_text"):
        length = f.max_length or (200 if f.kind == "text" else 5000)
        checks = [AfterValidator(_one_line)] if f.kind == "text" else []
        return Annotated[str, Field(min_length=1 if f.required else 0, max_length=length), *checks]
    if f.kind == "number":
        return Annotated[
            Decimal,
            Field(
                allow_inf_nan=False,
                ge=Decimal(f.min_value) if f.min_value is not None else None,
                le=Decimal(f.max_value) if f.max_value is not None else None,
                max_digits=18,
                decimal_places=4,
            ),
        ]
    if f.kind == "date":
        return Annotated[
            dt.date,
            Field(
                ge=dt.date.fromisoformat(f.min_value) if f.min_value else None,
                le=dt.date.fromisoformat(f.max_value) if f.max_value else None,
            ),
        ]
    if f.kind == "choice":
        return Literal.__getitem__(tuple(f.choices))
    if f.kind == "multiple_choice":
        return Annotated[
            list[Literal.__getitem__(tuple(f.choices))],  # type: ignore[misc]
            Field(max_length=200),
            AfterValidator(lambda v: list(dict.fromkeys(v))),
        ]
    if f.kind == "phone":
        org = tx.org
        region = org.settings.get("phone_region") if org is not None else None
        return Annotated[
            str, Field(max_length=40), AfterValidator(lambda v: normalise_phone(v, region))
        ]
    if f.kind == "email":
        return Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
    return Annotated[bool, Field(strict=False)]


def _one_line(value: str) -> str:
    return no_control_characters(value)
