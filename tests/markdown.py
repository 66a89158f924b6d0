"""Reading the project's Markdown docs: their fenced code, inline code, links and headings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^ *```([\w-]*)\n(.*?)^ *```$", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *$", re.MULTILINE)


@dataclass(frozen=True)
class Fence:
    language: str
    code: str
    start: int  # offset of the opening fence in the document


def doc_files() -> list[Path]:
    """The docs a reader is sent to: the README, docs/*.md, db/README.md and bench/README.md."""
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", *docs, ROOT / "db" / "README.md", ROOT / "bench" / "README.md"]


def fences(text: str) -> list[Fence]:
    return [Fence(match.group(1), match.group(2), match.start()) for match in _FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text outside fenced code."""
    return _FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every piece of code a reader may copy: the fenced blocks and the inline code spans of the prose."""
    return [fence.code for fence in fences(text)] + _INLINE_CODE.findall(prose(text))


def links(text: str) -> list[str]:
    """The targets of the Markdown links outside fenced code."""
    return _LINK.findall(prose(text))


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens."""
    slugs = set()
    for match in _HEADING.finditer(prose(text)):
        title = match.group(2).replace("`", "").lower()
        slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


def block_after(text: str, heading: str, language: str = "sh") -> str:
    """The first fenced block of `language` after the heading `heading` (e.g. "## Try it")."""
    start = text.find(f"\n{heading}\n")
    if start < 0:
        raise LookupError(f"no heading {heading!r}")
    for fence in fences(text):
        if fence.start > start and fence.language == language:
            return fence.code
    raise LookupError(f"no {language} block after {heading!r}")
