"""The embedded metric format lines (shared/metrics.py): no network."""

from __future__ import annotations

import json

import pytest

from shared import metrics


def test_an_invocation_writes_one_emf_line_of_what_it_counted(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.invocation("sync_client"):
        metrics.add_outcomes({"inserted": 2, "updated": 0, "conflict": 1})
        metrics.add("Inserted", 1)
        metrics.put("LagSeconds", 12.5, "Seconds")

    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ClientSync" and directive["Dimensions"] == [["Function"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Conflict": "Count",
        "Inserted": "Count",
        "LagSeconds": "Seconds",
    }
    assert (document["Function"], document["Inserted"], document["Conflict"], document["LagSeconds"]) == (
        "sync_client",
        3,
        1,
        12.5,
    )
    assert isinstance(document["_aws"]["Timestamp"], int)
    assert (document["level"], document["event"]) == ("info", "metrics")


def test_nothing_is_written_outside_an_invocation_or_when_nothing_was_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics.add("Inserted", 5)  # the CLI, a benchmark: no invocation
    with metrics.invocation("create_session"):
        metrics.add_outcomes({"inserted": 0})

    assert capsys.readouterr().out == ""
