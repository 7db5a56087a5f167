"""Every message the points module adds reads in Chinese too."""

from __future__ import annotations

import pytest

from ngo_kit import Kit, NotFound, i18n
from ngo_kit.errors import RULE_MESSAGES, ValidationFailed
from ngo_kit.modules.points import (
    LimitReached,
    NotReversible,
    RewardUnavailable,
    TransfersDisabled,
    WrongStatus,
    schemas,
)


def test_points_errors_and_rules_have_chinese_messages(pkit: Kit) -> None:
    templates = [
        e.template
        for e in (RewardUnavailable, LimitReached, TransfersDisabled, NotReversible, WrongStatus)
    ]
    rules = [
        "transfer_to_self",
        "window_ends_before_start",
        "per_unit_and_formula",
        "bad_formula",
        "unknown_rule_type",
        "badge_criteria_incomplete",
        "timezone_aware",
    ]
    kinds = ["Reward", "Redemption", "Points rule", "Points operation", "Badge", "Level"]
    missing = [
        m
        for m in [*templates, *(RULE_MESSAGES[r] for r in rules), *kinds]
        if not i18n.has_translation(m, "zh_CN")
    ]
    assert missing == []
    assert NotFound("Reward", "x").message_in("zh_CN") == "未找到奖品 x。"
    with pytest.raises(ValidationFailed) as info:
        schemas.RuleIn(name="r", rule_type="manual", per_unit="a", formula="a")
    assert info.value.message_in("zh_CN").endswith("per_unit 与 formula 只能二选一")
