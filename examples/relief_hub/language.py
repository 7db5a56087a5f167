"""The app's message catalogue: English message ids, Chinese in ``i18n/zh_CN/LC_MESSAGES``.

The same gettext catalogues as the kit's modules (read with ``ngo_kit.i18n``), so one
mechanism translates the kit's errors and the app's own words. A page's language comes from
``?lang=en|zh`` (remembered in a cookie), else the cookie, else ``Accept-Language``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request

from ngo_kit import i18n
from ngo_kit.web import request_locale

HERE = Path(__file__).parent
LANG_COOKIE = "relief_hub_lang"
#: The values of ``?lang=`` and the locale each selects.
LANGUAGES = {"en": "en", "zh": "zh_CN"}

i18n.load_catalogues(HERE / "i18n")

Translate = Callable[..., str]


def chosen_language(request: Request) -> str | None:
    """The locale a ``?lang=`` query parameter asks for, if it names a supported language."""
    return LANGUAGES.get(request.query_params.get("lang", ""))


def page_locale(request: Request) -> str:
    """The locale a page is rendered in: ``?lang=``, else the cookie, else ``Accept-Language``."""
    chosen = chosen_language(request)
    if chosen is not None:
        return chosen
    remembered = LANGUAGES.get(request.cookies.get(LANG_COOKIE, ""))
    return remembered or request_locale(request)


def translator(locale: str) -> Translate:
    """``_(message, **params)``: the message in ``locale``, placeholders filled."""

    def translate(message: str, **params: Any) -> str:
        text = i18n.gettext(message, locale)
        return text.format(**params) if params else text

    return translate
