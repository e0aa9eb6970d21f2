"""The alert timeline marks what was done about an alert: the task a trigger opened and the candidate it retrained."""

from __future__ import annotations

from opscore.views.alert_plots import alert_timeline

T0 = 1_800_000_000.0


def test_the_task_and_the_retrained_candidate_are_marked_on_the_alert_row() -> None:
    alert = {"id": 7, "rule": "dataset_drift", "severity": "warning", "state": "firing", "started_at": T0,
             "fired_at": T0 + 120, "resolved_at": None, "acknowledged_at": None}
    events = [{"alert_id": 7, "at": T0 + 120, "kind": "task_opened", "detail": "task abc (retrain_candidate): on"},
              {"alert_id": 7, "at": T0 + 600, "kind": "retrained", "detail": "candidate v3 registered from v2"},
              {"alert_id": 8, "at": T0 + 600, "kind": "retrained", "detail": "another alert's, not shown"}]
    fig = alert_timeline([alert], events, [], T0 - 60, T0 + 3600)
    marked = {trace.name: list(trace.text) for trace in fig.data if trace.mode == "markers"}
    assert marked["task opened"] == ["task abc (retrain_candidate): on"]
    assert marked["retrained"] == ["candidate v3 registered from v2"]
    assert all(list(trace.y) == ["#7 dataset_drift (warning)"] for trace in fig.data if trace.mode == "markers")
