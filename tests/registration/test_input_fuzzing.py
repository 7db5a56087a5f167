"""Arbitrary strings into every input: a ValidationFailed naming the field, or a valid result."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngo_kit import Kit, ValidationFailed
from ngo_kit.modules.registration.errors import SignInFailed, TooManyAttempts
from ngo_kit.modules.registration.schemas import (
    ConsentDocumentIn,
    FieldIn,
    GuardianIn,
    NewPasswordIn,
    RegisterIn,
    SignInIn,
)
from ngo_kit.tenancy import OrgRead

FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
text = st.text(max_size=300) | st.sampled_from(["", " ", "a@b.c", "+8613800138000", "x" * 400])
maybe = st.none() | text

MODELS: dict[type[Any], tuple[str, ...]] = {
    RegisterIn: ("email", "phone", "display_name", "password", "consent_method", "invitation"),
    SignInIn: ("email", "phone", "password", "code", "client"),
    NewPasswordIn: ("password",),
    FieldIn: ("form", "name", "kind", "label_en", "label_zh", "min_value", "max_value"),
    ConsentDocumentIn: ("purpose", "title", "body"),
    GuardianIn: ("name", "relationship"),
}


@pytest.mark.parametrize("model", list(MODELS), ids=lambda m: m.__name__)
@FAST
@given(data=st.data())
def test_input_models_raise_only_validation_failed_naming_a_field(
    model: type[Any], data: Any
) -> None:
    payload = {name: data.draw(maybe, label=name) for name in MODELS[model]}
    try:
        model(**payload)
    except ValidationFailed as exc:
        assert exc.field and exc.rule
        assert exc.field.split(".")[0] in (*MODELS[model], "__root__", *model.model_fields)


@FAST
@given(email=maybe, phone=maybe, name=text, password=maybe)
def test_register_gives_an_account_or_validation_failed(
    rkit: Kit, rorg: OrgRead, email: str | None, phone: str | None, name: str, password: str | None
) -> None:
    try:
        with rkit.begin(org=rorg) as tx:
            user = tx.registration.register(
                email=email, phone=phone, display_name=name, password=password
            )
    except ValidationFailed as exc:
        assert exc.field in ("email", "phone", "display_name", "password", "__root__")
        return
    except Exception as exc:  # a duplicate from an earlier example is a fine answer too
        from ngo_kit import AlreadyExists

        assert isinstance(exc, AlreadyExists), repr(exc)
        return
    assert user.email or user.phone
    assert user.display_name.strip()


@FAST
@given(email=maybe, phone=maybe, password=maybe, code=maybe)
def test_sign_in_gives_sign_in_failed_or_validation_failed(
    rkit: Kit,
    rorg: OrgRead,
    email: str | None,
    phone: str | None,
    password: str | None,
    code: str | None,
) -> None:
    with (
        pytest.raises((ValidationFailed, SignInFailed, TooManyAttempts)),
        rkit.begin(org=rorg) as tx,
    ):
        tx.registration.authenticate(email=email, phone=phone, password=password, code=code)
