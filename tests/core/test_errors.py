"""Errors: stable codes, field-and-rule validation errors, English and Chinese messages."""

from __future__ import annotations

import importlib
import pkgutil
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import model_validator
from pydantic_core import PydanticCustomError

import ngo_kit
from ngo_kit import SYSTEM, Kit, NotFound, ValidationFailed, errors, i18n
from ngo_kit.errors import NgoKitError
from ngo_kit.schemas import InputModel
from ngo_kit.tenancy import OrgIn, OrgRead
from ngo_kit.testing import settings_for_tests


def all_error_classes() -> list[type[NgoKitError]]:
    for info in pkgutil.walk_packages(ngo_kit.__path__, "ngo_kit."):
        if ".migrations" not in info.name and not info.name.endswith(("__main__", ".testing")):
            importlib.import_module(info.name)
    found: list[type[NgoKitError]] = []
    todo: list[type[NgoKitError]] = [NgoKitError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_has_a_unique_stable_code() -> None:
    classes = all_error_classes()
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted(codes)


def test_every_error_message_and_rule_has_a_chinese_translation(empty_database_url: str) -> None:
    # every installed plugin and module, so every catalogue and every rule message is loaded
    Kit(settings=settings_for_tests(empty_database_url), autoload=True).dispose()
    missing = [
        c.template for c in all_error_classes() if not i18n.has_translation(c.template, "zh_CN")
    ]
    missing += [m for m in errors.RULE_MESSAGES.values() if not i18n.has_translation(m, "zh_CN")]
    assert missing == []


def test_validation_names_the_field_and_the_rule_in_both_languages() -> None:
    with pytest.raises(ValidationFailed) as info:
        OrgIn(slug="Not A Slug", name="Rainbow")
    err = info.value
    assert (err.field, err.rule, err.code) == ("slug", "invalid_slug", "validation_failed")
    assert err.message_in("en") == "slug: must be 2 to 63 lowercase letters, digits or hyphens"
    assert err.message_in("zh_CN") == "slug：必须由 2 到 63 个小写字母、数字或连字符组成"


def test_every_problem_is_listed_not_only_the_first() -> None:
    with pytest.raises(ValidationFailed) as info:
        OrgIn.model_validate(
            {"slug": "ok-slug", "name": "", "timezone": "Mars/Olympus", "unknown": 1}
        )
    found = {(e.field, e.rule) for e in info.value.errors}
    assert found == {
        ("name", "string_too_short"),
        ("timezone", "unknown_timezone"),
        ("unknown", "extra_forbidden"),
    }


class _Window(InputModel):
    starts: int
    ends: int

    @model_validator(mode="after")
    def _order(self) -> _Window:
        if self.ends <= self.starts:
            raise PydanticCustomError("ends_before_start", "ends first", {"field": "ends"})
        return self


def test_a_rule_across_fields_names_the_field_it_blames() -> None:
    with pytest.raises(ValidationFailed) as info:
        _Window(starts=5, ends=1)
    assert (info.value.field, info.value.rule) == ("ends", "ends_before_start")
    assert str(info.value).startswith("ends: ")


def test_errors_render_in_the_organisations_locale(kit: Kit) -> None:
    org = kit.create_organisation("hongqi", "红旗公益", locale="zh_CN", timezone="Asia/Shanghai")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.locale == "zh_CN"
        err = NotFound("Member", "42")
        assert str(err) == "未找到成员 42。"
    with kit.begin(org=org, actor=SYSTEM, locale="en") as tx:
        assert str(NotFound("Member", "42")) == "Member 42 was not found."
    with pytest.raises(NotFound) as info, kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.member(uuid.uuid4())
    assert str(info.value).startswith("未找到成员")  # rendered in the locale it was raised in


def test_to_dict_carries_code_message_and_parameters() -> None:
    err = errors.InsufficientStock(requested="5.0000", available="2.0000")
    assert err.to_dict("zh_CN") == {
        "code": "insufficient_stock",
        "message": "库存不足：需要 5.0000，现有 2.0000。",
        "requested": "5.0000",
        "available": "2.0000",
    }


@settings(max_examples=60, deadline=None)
@given(
    slug=st.text(max_size=80),
    name=st.text(max_size=250),
    timezone=st.text(max_size=70),
    locale=st.text(max_size=20),
)
def test_any_organisation_input_is_valid_or_a_validation_failure(
    slug: str, name: str, timezone: str, locale: str
) -> None:
    try:
        org = OrgIn(slug=slug, name=name, timezone=timezone, locale=locale)
    except ValidationFailed as exc:
        assert exc.field in {"slug", "name", "timezone", "locale"}
        assert exc.message_in("zh_CN") and exc.message_in("en")
    else:
        assert 2 <= len(org.slug) <= 63 and org.locale in i18n.SUPPORTED_LOCALES


def test_a_failed_create_writes_nothing(kit: Kit) -> None:
    with pytest.raises(ValidationFailed), kit.begin(actor=SYSTEM) as tx:
        tx.tenancy.create_organisation(slug="fine-slug", name="x" * 201)
    with kit.begin(actor=SYSTEM) as tx:
        assert tx.tenancy.list_organisations() == []


def test_unknown_organisation_in_chinese(kit: Kit, org: OrgRead) -> None:
    with pytest.raises(NotFound) as info, kit.begin(org="missing", locale="zh-CN"):
        pass
    assert info.value.message_in("zh_CN") == "未找到机构 missing。"
