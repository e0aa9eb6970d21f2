"""The daily review of critical alerts on an alert history made by the evaluator over logged traffic."""

from __future__ import annotations

import pytest

from opscore.config import Settings, replace
from opscore.operations import alerts
from opscore.operations.procedures import get_procedure, no_checkpoint, procedures_in
from opscore.operations.tasks import create_task, list_tasks
from opscore.operations.worker import execute_task
from tests.conftest import OPERATOR
from tests.operations.test_alerts import T0, log_minutes

CRITICAL = {"name": "p95_latency", "expr": "p95_latency_ms > 5000", "severity": "critical", "for": "0s",
            "window": "1m", "summary": "p95 of {version} is {value} ms"}
END = T0 + 13 * 60
# The host's own CPU and memory must not add alerts of their own to the history.
QUIET_HOST = [{"name": name, "expr": f"{signal} > 1000", "severity": severity}
              for name, signal in (("cpu", "cpu_percent"), ("memory", "memory_percent"))
              for severity in ("warning", "critical")]


def seeded(settings: Settings) -> Settings:
    """v1 fires, is acknowledged 90 s later and resolves; v2 flaps every minute; v3 fires and nobody answers."""
    settings = replace(settings, alert_rules=[CRITICAL, *QUIET_HOST], alert_group_wait_seconds=0)
    log_minutes(settings, {m: 8000 if m < 3 else 20 for m in range(12)}, version="v1")
    log_minutes(settings, {m: 8000 if m % 2 else 20 for m in range(12)}, version="v2")
    log_minutes(settings, {m: 8000 for m in range(12)}, version="v3")
    for minute in range(12):
        now = T0 + (minute + 1) * 60
        alerts.evaluate(settings, now=now, sleep=lambda _s: None)
        if minute == 1:
            alerts.acknowledge(settings, _open(settings, "v1")["id"], actor=OPERATOR, now=now + 30)
    return settings


def _open(settings: Settings, version: str) -> dict:
    return next(a for a in _critical(settings) if a["labels"] == {"version": version} and a["state"] in alerts.OPEN_STATES)


def _critical(settings: Settings) -> list[dict]:
    return [a for a in alerts.list_alerts(settings) if a["severity"] == "critical"]


def test_the_review_reports_open_unacknowledged_flapping_mtta_and_mttr(workspace: Settings) -> None:
    settings = seeded(workspace)
    every = alerts.list_alerts(settings)
    critical_ones = _critical(settings)
    v1 = next(a for a in critical_ones if a["labels"] == {"version": "v1"})
    v3 = _open(settings, "v3")
    v2_open = _open(settings, "v2")
    result = get_procedure("critical_alert_review").run(settings, {"now": END}, no_checkpoint)
    figures = result.figures

    assert [a["id"] for a in figures["critical_open"]] == sorted([v3["id"], v2_open["id"]])
    assert figures["critical_unacknowledged"] == sorted([v3["id"], v2_open["id"]])
    changes: dict[tuple[str, str], int] = {}
    for a in every:
        for event in alerts.get_alert(settings, a["id"])["history"]:
            if event["kind"] in alerts.STATES:
                changes[(a["rule"], a["severity"])] = changes.get((a["rule"], a["severity"]), 0) + 1
    assert changes[("p95_latency", "critical")] == 2 + 11 + 1  # v1 fired and resolved, v2 flapped, v3 fired
    assert {(r["rule"], r["severity"]): r["changes"] for r in figures["state_changes"]} == changes
    assert {(r["rule"], r["severity"]) for r in figures["flapping"]} == {k for k, n in changes.items() if n >= 10}
    acknowledged = [a for a in critical_ones if a["acknowledged_at"] is not None]
    assert figures["acknowledged_alerts"] == len(acknowledged) == 1
    assert figures["mean_time_to_acknowledge_seconds"] == pytest.approx(90.0)
    resolved = [a for a in critical_ones if a["resolved_at"] is not None and a["fired_at"] is not None]
    assert figures["resolved_alerts"] == len(resolved) == 6  # v1 once, v2 five times
    assert v1["resolved_at"] - v1["fired_at"] == 180
    assert figures["mean_time_to_resolve_seconds"] == pytest.approx(
        sum(a["resolved_at"] - a["fired_at"] for a in resolved) / len(resolved))

    critical = [f for f in result.findings if f.severity == "critical"]
    assert [f.summary.split(" (")[0] for f in critical] == [
        f"critical alert #{i} p95_latency" for i in sorted([v3["id"], v2_open["id"]])]
    assert all(f.follow_up == "corrective" and "nobody acknowledged it" in f.summary for f in critical)
    flapping = [f for f in result.findings if "is flapping" in f.summary]
    assert len(flapping) == len(figures["flapping"]) and all(f.follow_up == "adaptive" for f in flapping)
    assert any(f.summary.startswith("rule p95_latency (critical) is flapping") for f in flapping)
    assert not result.recommendations


def test_slow_acknowledgements_and_a_quiet_history(workspace: Settings) -> None:
    settings = seeded(workspace)
    slow = get_procedure("critical_alert_review").run(replace(settings, alert_escalate_after_seconds=20),
                                                      {"now": END}, no_checkpoint)
    assert any("waited 1.5 min on average" in f.summary for f in slow.findings)
    quiet = get_procedure("critical_alert_review").run(settings, {"now": END + 3 * 86_400}, no_checkpoint)
    assert quiet.figures["flapping"] == [] and quiet.figures["mean_time_to_acknowledge_seconds"] is None
    assert {f.severity for f in quiet.findings} == {"critical"}  # v2 and v3 still fire, days later
    relaxed = get_procedure("critical_alert_review").run(replace(settings, alert_flapping_changes=100),
                                                         {"now": END}, no_checkpoint)
    assert relaxed.figures["flapping"] == []


def test_in_the_daily_set_and_its_findings_open_follow_ups(workspace: Settings) -> None:
    assert "critical_alert_review" in {p.name for p in procedures_in("daily")}
    settings = seeded(workspace)
    task = create_task(settings, procedure="critical_alert_review", params={"now": END}, created_by="schedule:daily")
    done = execute_task(settings, task.id)
    assert done.status == "success"
    follow_ups = list_tasks(settings, created_by_prefix=f"task:{task.id}")
    flapping = len(done.result["figures"]["flapping"])
    assert sorted((t.type, t.priority) for t in follow_ups) == [("adaptive", "medium")] * flapping + [
        ("corrective", "critical")] * 2


def test_an_acknowledged_alert_still_firing_is_high_not_critical(workspace: Settings) -> None:
    settings = seeded(workspace)
    v3, v2 = _open(settings, "v3"), _open(settings, "v2")
    alerts.acknowledge(settings, v3["id"], actor=OPERATOR, now=END + 60)
    result = get_procedure("critical_alert_review").run(settings, {"now": END + 120}, no_checkpoint)
    assert result.figures["critical_unacknowledged"] == [v2["id"]]
    [high] = [f for f in result.findings if f.severity == "high"]
    assert high.summary.startswith(f"critical alert #{v3['id']} p95_latency (version=v3), acknowledged by cli:tester")
    assert high.follow_up is None
    assert result.figures["mean_time_to_acknowledge_seconds"] == pytest.approx((90 + END + 60 - v3["fired_at"]) / 2)
