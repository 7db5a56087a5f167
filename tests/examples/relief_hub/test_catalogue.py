"""Every word relief_hub shows has a Chinese translation in its catalogue."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from examples.relief_hub.language import HERE
from ngo_kit import i18n

# _("...") in templates and code, and N_("...") for messages translated later.
MESSAGE = re.compile(r"""\bN?_\(\s*(["'])((?:(?!\1)[^\\]|\\.)*)\1""")


def app_messages() -> set[str]:
    """The message ids used by the app's templates and modules."""
    files = [*HERE.glob("templates/**/*.html"), *HERE.glob("*.py")]
    return {m.group(2) for f in files for m in MESSAGE.finditer(f.read_text(encoding="utf-8"))}


def test_the_app_uses_its_catalogue() -> None:
    assert len(app_messages()) > 30


def test_every_message_has_chinese() -> None:
    missing = sorted(m for m in app_messages() if not i18n.has_translation(m, "zh_CN"))
    assert missing == []


def _catalogue(po: Path) -> dict[str, str]:
    with po.open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id and m.string}


def test_no_other_catalogue_translates_the_apps_words_differently() -> None:
    # All catalogues share one table: a module's "Hours" (志愿服务时长记录) would replace the
    # app's field label, whichever loaded last. The app picks ids nobody else translates apart.
    mine = _catalogue(HERE / "i18n" / "zh_CN" / "LC_MESSAGES" / "ngo_kit.po")
    repo = HERE.parents[1]
    others = [
        *repo.glob("ngo_kit/**/zh_CN/LC_MESSAGES/ngo_kit.po"),
        *repo.glob("plugins/*/src/*/i18n/zh_CN/LC_MESSAGES/ngo_kit.po"),
    ]
    assert others
    clashes = [
        (str(po.relative_to(repo)), message, mine[message], theirs)
        for po in others
        for message, theirs in _catalogue(po).items()
        if message in mine and mine[message] != theirs
    ]
    assert clashes == []


def test_chinese_text_uses_full_width_brackets() -> None:
    mine = _catalogue(HERE / "i18n" / "zh_CN" / "LC_MESSAGES" / "ngo_kit.po")
    ascii_brackets = sorted(t for t in mine.values() if re.search(r"[()]", t))
    assert ascii_brackets == []


def test_a_label_takes_its_colon_from_the_page_language() -> None:
    # "余额：" in Chinese, "Balance: " in English: templates write {{ colon }}, never ": ".
    templates = sorted(HERE.glob("templates/**/*.html"))
    assert templates
    fixed = [
        (str(t.relative_to(HERE)), m.group(0))
        for t in templates
        for m in re.finditer(r"""_\(["'][^"']+["']\) \}\}:""", t.read_text(encoding="utf-8"))
    ]
    assert fixed == []
