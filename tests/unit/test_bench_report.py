"""The benchmarks' results writer: a run replaces the text between its own two markers in bench/README.md."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.report import Header, MissingResultsSection, Report, check_section, markers, run_bench, write_section

BENCHES = ("create_session", "project_b_webhook", "backfill", "not_found", "backends")


@pytest.mark.parametrize("name", BENCHES)
def test_each_bench_has_its_section_in_bench_readme(name: str) -> None:
    check_section(name)  # the default path: bench/README.md


def _readme(tmp_path: Path) -> tuple[Path, str]:
    parts = ["# Benchmarks\n\nIntro, kept as it is.\n"]
    for name in BENCHES:
        begin, end = markers(name)
        parts.append(
            f"\n## {name}\n\nWhat {name} measures.\n\n{begin}\nold {name} results\n{end}\n\nNotes on {name}.\n"
        )
    path = tmp_path / "README.md"
    text = "".join(parts)
    path.write_text(text)
    return path, text


def test_a_run_replaces_only_its_own_section(tmp_path: Path) -> None:
    path, before = _readme(tmp_path)

    write_section("project_b_webhook", "| Metric | Value |\n|---|---:|\n| Events/s | 958 |\n", path)

    begin, end = markers("project_b_webhook")
    expected = before.replace(
        f"{begin}\nold project_b_webhook results\n{end}",
        f"{begin}\n| Metric | Value |\n|---|---:|\n| Events/s | 958 |\n{end}",
    )
    assert path.read_text() == expected


def test_a_second_run_replaces_the_first_runs_results(tmp_path: Path) -> None:
    path, before = _readme(tmp_path)

    write_section("backfill", "first run", path)
    write_section("backfill", "second run", path)

    assert path.read_text() == before.replace("old backfill results", "second run")


@pytest.mark.parametrize(
    "broken",
    [
        lambda text, begin, end: text.replace(begin, ""),
        lambda text, begin, end: text.replace(end, ""),
        lambda text, begin, end: text.replace(begin, "@").replace(end, begin).replace("@", end),
        lambda text, begin, end: text + f"\n{begin}\n{end}\n",
    ],
    ids=["no start marker", "no end marker", "markers swapped", "section twice"],
)
def test_a_missing_or_broken_section_is_an_error_and_nothing_is_written(
    tmp_path: Path, broken: Callable[[str, str, str], str]
) -> None:
    path, before = _readme(tmp_path)
    begin, end = markers("create_session")
    damaged = broken(before, begin, end)
    path.write_text(damaged)

    with pytest.raises(MissingResultsSection, match="<!-- results:create_session -->"):
        write_section("create_session", "new results", path)
    assert path.read_text() == damaged


def test_a_missing_results_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MissingResultsSection, match="does not exist"):
        write_section("create_session", "new results", tmp_path / "README.md")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args(argv)


class _Bench:
    def __init__(self) -> None:
        self.runs = 0

    def measure(self, _args: argparse.Namespace) -> Report:
        self.runs += 1
        return Report(Header(postgres="16.2", settings="2 callers"), "| table |\n")


def test_a_bench_writes_its_header_and_tables_into_its_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, before = _readme(tmp_path)

    assert run_bench("create_session", _arguments, _Bench().measure, [], path=path) == 0

    after = path.read_text()
    begin, end = markers("create_session")
    section = after[after.index(begin) + len(begin) : after.index(end)]
    assert "- Python " in section and "PostgreSQL 16.2" in section and "- 2 callers" in section
    assert "`.venv/bin/python -m bench.create_session`" in section
    assert section.endswith("\n| table |\n")
    assert after.replace(section, "\nold create_session results\n") == before
    assert capsys.readouterr().out == "| table |\n\n"


def test_no_write_leaves_the_results_file_alone(tmp_path: Path) -> None:
    path, before = _readme(tmp_path)
    bench = _Bench()

    assert run_bench("create_session", _arguments, bench.measure, ["--no-write"], path=path) == 0

    assert bench.runs == 1
    assert path.read_text() == before


def test_a_bench_without_its_section_stops_before_measuring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, before = _readme(tmp_path)
    path.write_text(before.replace("<!-- /results:backfill -->", ""))
    bench = _Bench()

    assert run_bench("backfill", _arguments, bench.measure, [], path=path) == 2

    assert bench.runs == 0
    assert "<!-- /results:backfill -->" in capsys.readouterr().err
