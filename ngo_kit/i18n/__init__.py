"""Message catalogues: English message ids, translated through gettext ``.po`` catalogues.

English text is the gettext message id; each other locale has a catalogue read with Babel.
Modules and plugins may ship their own catalogue folder (``Module(locale_dir=...)``); the
kit merges every loaded catalogue, so a message is translated wherever it was declared.
"""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path

from babel.messages.pofile import read_po

SUPPORTED_LOCALES = ("en", "zh_CN")
DEFAULT_LOCALE = "en"
DOMAIN = "ngo_kit"

_current_locale: contextvars.ContextVar[str] = contextvars.ContextVar(
    "ngo_kit_locale", default=DEFAULT_LOCALE
)
_catalogues: dict[str, dict[str, str]] = {}
_loaded_dirs: set[Path] = set()
_lock = threading.Lock()


def normalise_locale(locale: str | None) -> str:
    """Map ``zh``, ``zh-CN``, ``zh_Hans`` and friends onto a supported locale; default ``en``."""
    if not locale:
        return DEFAULT_LOCALE
    tag = locale.replace("-", "_").split(",")[0].split(";")[0].strip().lower()
    if tag.startswith("zh"):
        return "zh_CN"
    return DEFAULT_LOCALE


def load_catalogues(locale_dir: Path) -> None:
    """Read every ``<locale>/LC_MESSAGES/ngo_kit.po`` below ``locale_dir`` (once per folder)."""
    locale_dir = locale_dir.resolve()
    with _lock:
        if locale_dir in _loaded_dirs:
            return
        for locale in SUPPORTED_LOCALES:
            po = locale_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
            if not po.exists():
                continue
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=locale, domain=DOMAIN)
            table = _catalogues.setdefault(locale, {})
            for message in catalog:
                if message.id and message.string and not message.fuzzy:
                    table[str(message.id)] = str(message.string)
        _loaded_dirs.add(locale_dir)


load_catalogues(Path(__file__).parent)


def gettext(message: str, locale: str | None = None) -> str:
    """Translate ``message`` (an English message id) into ``locale`` or the current locale."""
    loc = normalise_locale(locale) if locale else _current_locale.get()
    if loc == DEFAULT_LOCALE:
        return message
    return _catalogues.get(loc, {}).get(message, message)


def has_translation(message: str, locale: str) -> bool:
    """True when ``locale``'s catalogues translate ``message``."""
    return message in _catalogues.get(normalise_locale(locale), {})


def current_locale() -> str:
    """The locale of the running call (set by ``kit.begin`` from the call or the organisation)."""
    return _current_locale.get()


def set_locale(locale: str | None) -> contextvars.Token[str]:
    """Make ``locale`` current; return the token to restore the previous one."""
    return _current_locale.set(normalise_locale(locale))


def reset_locale(token: contextvars.Token[str]) -> None:
    """Restore the locale that was current before :func:`set_locale`."""
    _current_locale.reset(token)
