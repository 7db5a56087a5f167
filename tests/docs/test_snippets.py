"""Every ```python block of every docs page runs, so the docs cannot drift from the code.

The blocks of one page run in order in one shared namespace (a page reads like one script),
in a fresh temporary working directory, with every ``NGO_KIT_*`` variable removed from the
environment (``NGO_KIT_DATABASE_URL`` and ``NGO_KIT_TEST_DATABASE_URL`` included), so a page
sees what a new user sees. Blocks fenced as ``text``, ``console``, ``bash``, ``toml`` or
anything other than ``python``/``py`` are shown, not run. One test per page: a failure names
the page, and the traceback points at the page's own line numbers.
"""

from __future__ import annotations

import os
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNABLE = {"python", "py"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first code line (1-based) and source."""

    language: str
    line: int
    source: str


def _language(info: str) -> str:
    """The language of a fence's info string: ```python title="x" and ```{.python} give python."""
    words = info.strip().split()
    if not words:
        return ""
    return words[0].strip("{}").lstrip(".").lower()


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order (indented fences included)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = _language(opening["info"])
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        blocks.append(Block(language, i - len(body) + 1 if body else i + 1, "\n".join(body)))
        i += 1
    return blocks


def runnable_blocks(page: Path) -> list[Block]:
    """The blocks of ``page`` that the docs test executes."""
    return [b for b in code_blocks(page.read_text(encoding="utf-8")) if b.language in RUNNABLE]


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _module_name(page: Path) -> str:
    slug = re.sub(r"\W", "_", page.relative_to(DOCS).with_suffix("").as_posix())
    return f"ngo_kit_docs_snippet_{slug}"


def _forget_snippet_tables(module_name: str) -> None:
    """Drop tables a page declared on the shared metadata, so later tests never see them."""
    from ngo_kit.db import Base

    for mapper in list(Base.registry.mappers):
        if mapper.class_.__module__ == module_name:
            for clause in mapper.tables:
                table = Base.metadata.tables.get(clause.name)
                if table is not None:
                    Base.metadata.remove(table)


def _dispose_kits(namespace: dict[str, object]) -> None:
    from ngo_kit import Kit

    for value in namespace.values():
        if isinstance(value, Kit):
            value.dispose()


@pytest.mark.parametrize("page", _pages(), ids=[p.relative_to(ROOT).as_posix() for p in _pages()])
def test_page_snippets_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("NGO_KIT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    name = _module_name(page)
    module = types.ModuleType(name)
    module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, name, module)
    try:
        for block in runnable_blocks(page):
            # Pad with blank lines so a traceback shows the page's own line numbers and text.
            code = compile("\n" * (block.line - 1) + block.source, str(page), "exec")
            exec(code, module.__dict__)
    finally:
        _dispose_kits(module.__dict__)
        _forget_snippet_tables(name)


def test_the_docs_have_pages() -> None:
    assert (DOCS / "index.md").exists()
    assert len(_pages()) >= 9


def test_code_blocks_are_found_with_their_language_and_line() -> None:
    text = (
        "# T\n"
        "```python\n"
        "x = 1\n"
        "```\n"
        "\n"
        "```console\n"
        "$ ngo-kit verify\n"
        "```\n"
        "!!! note\n"
        "    ```py title='a.py'\n"
        "    y = x + 1\n"
        "    ```\n"
        "````text\n"
        "```python\n"
        "not run\n"
        "```\n"
        "````\n"
    )
    blocks = code_blocks(text)
    assert [(b.language, b.line) for b in blocks] == [
        ("python", 3),
        ("console", 7),
        ("py", 11),
        ("text", 14),
    ]
    assert blocks[2].source == "y = x + 1"
    assert blocks[3].source == "```python\nnot run\n```"
