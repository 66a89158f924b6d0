"""The docs point at what exists: every relative link resolves, every `make` target and every `python -m` module
they name is in the repository. (tests/integration/test_dev_stack.py runs the README's curl against the stack.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.markdown import ROOT, anchors, code, doc_files, links

_MAKE = re.compile(r"(?<![\w.-])make +([A-Za-z][\w-]*)")
_PYTHON_MODULE = re.compile(r"python3? +-m +([A-Za-z_][\w.]*)")
_MAKE_TARGET = re.compile(r"^([A-Za-z][\w-]*)(?: [A-Za-z][\w-]*)* *:(?!=)", re.MULTILINE)

DOCS = doc_files()


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def broken_links(path: Path, text: str) -> list[str]:
    """The link targets of `text`, written in `path`, that name no file or directory of the repository, or no
    heading of the Markdown file they name."""
    return [target for target in links(text) if not re.match(r"^[a-z]+:", target) and not _resolves(path, target)]


def _resolves(path: Path, target: str) -> bool:
    file_part, _, anchor = target.partition("#")
    linked = (path.parent / file_part).resolve() if file_part else path
    if not linked.exists() or ROOT not in (linked, *linked.parents):
        return False
    return not anchor or linked.suffix != ".md" or anchor in anchors(linked.read_text())


def make_targets() -> set[str]:
    return {target for line in _MAKE_TARGET.findall((ROOT / "Makefile").read_text()) for target in line.split()}


def named_make_targets(text: str) -> set[str]:
    return {target for snippet in code(text) for target in _MAKE.findall(snippet)}


def module_exists(module: str) -> bool:
    """Whether `python -m module` would run: a file of the repository (module.py or a package's __main__.py), or a
    tool the dev requirements install (pytest, mypy, ...)."""
    base = ROOT.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file() or (base / "__main__.py").is_file():
        return True
    return not (ROOT / module.split(".")[0]).exists() and importlib.util.find_spec(module) is not None


def named_modules(text: str) -> set[str]:
    return {module for snippet in code(text) for module in _PYTHON_MODULE.findall(snippet)}


def test_the_docs_are_found() -> None:
    names = {_name(path) for path in DOCS}
    assert {"README.md", "docs/http-api.md", "docs/local-stack.md", "bench/README.md"} <= names
    assert [_name(path) for path in DOCS if not path.is_file()] == []


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path, path.read_text()) == []


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_make_targets_exist(path: Path) -> None:
    assert named_make_targets(path.read_text()) - make_targets() == set()


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_python_modules_exist(path: Path) -> None:
    assert {module for module in named_modules(path.read_text()) if not module_exists(module)} == set()


def test_the_checks_see_what_they_check() -> None:
    """Each check finds what the docs name, so that a pattern that matches nothing cannot pass them all."""
    readme = (ROOT / "README.md").read_text()
    assert {"dev", "test"} <= named_make_targets(readme)
    assert {"dev", "test", "sync", "bench"} <= make_targets()
    assert "bench.backfill" in named_modules((ROOT / "bench" / "README.md").read_text())
    assert any(target.startswith("docs/") for target in links(readme))
    assert "settings-that-are-refused" in anchors((ROOT / "docs" / "configuration.md").read_text())


def test_each_kind_of_wrong_reference_is_found() -> None:
    text = (
        "[fine](configuration.md#settings-that-are-refused) [gone](no-such.md) "
        "[anchor](configuration.md#no-such-heading) [outside](../..) [web](https://example.com/x)\n\n"
        "```sh\nmake test\nmake nosuchtarget\npython -m devtools.dev\npython -m shared.no_such_module\n```\n"
    )
    assert broken_links(ROOT / "docs" / "example.md", text) == [
        "no-such.md",
        "configuration.md#no-such-heading",
        "../..",
    ]
    assert named_make_targets(text) - make_targets() == {"nosuchtarget"}
    assert {module for module in named_modules(text) if not module_exists(module)} == {"shared.no_such_module"}
