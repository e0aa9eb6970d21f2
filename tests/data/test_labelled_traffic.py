"""Logged traffic read back for the monitors: probabilities, counts per window and every outcome."""

from __future__ import annotations

import time

import pytest

from opscore.data.labelled_traffic import labelled_predictions, logged_outcomes, prediction_counts
from opscore.exceptions import BadInputError
from opscore.serving import feedback
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter
from opscore.store import open_store

START = float(int(time.time()) // 3_600 * 3_600 - 10 * 3_600)


def logged(settings, rows: list[tuple[float, str, str]]) -> None:
    """(at, version, status) rows logged through the real writer; probability 0.1 × the row number."""
    writer = TelemetryWriter(settings)
    writer.submit_many([
        PredictionRecord(f"req-{i}", at, version, "api", 4.0, status, {"age": 30 + i}, 1 if i % 2 else 0,
                         round(0.1 * (i % 10), 1) if status == "ok" else None,
                         None if status == "ok" else "model failed")
        for i, (at, version, status) in enumerate(rows)])
    assert writer.flush(timeout=60)


def test_counts_per_window_and_outcomes_with_their_probabilities(any_workspace):
    store = open_store(any_workspace)
    logged(any_workspace, [(START + 10, "v1", "ok"), (START + 20, "v1", "ok"), (START + 30, "v1", "error"),
                           (START + 3_700, "v1", "ok"), (START + 3_800, "v2", "ok"), (START + 7_300, "v1", "ok")])
    feedback.record_feedback(store, [{"request_id": "req-1", "label": 1}, {"request_id": "req-3", "label": "0"}])
    edges = [START, START + 3_600, START + 7_200, START + 10_800]
    assert prediction_counts(store, edges, "v1") == [2, 1, 1]  # failed calls are not predictions
    assert prediction_counts(store, edges) == [2, 2, 1]
    outcomes = logged_outcomes(store, START, START + 7_200, "v1")
    assert outcomes["at"].tolist() == [START + 10, START + 20, START + 3_700]
    assert outcomes["probability"].tolist() == pytest.approx([0.0, 0.1, 0.3])
    assert outcomes["label"].tolist() == [None, 1, "0"]
    labelled = labelled_predictions(store, version_id="v1")
    assert labelled["request_id"].tolist() == ["req-1", "req-3"]
    assert labelled["probability"].tolist() == pytest.approx([0.1, 0.3]) and labelled["age"].tolist() == [31, 33]


def test_window_edges_must_increase(workspace):
    store = open_store(workspace)
    with pytest.raises(BadInputError, match="strictly increasing"):
        prediction_counts(store, [START, START])
    assert logged_outcomes(store).empty and list(labelled_predictions(store).columns)[-2:] == ["probability", "label"]
