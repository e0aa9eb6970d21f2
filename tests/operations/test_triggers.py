"""Triggers with an injected clock: one task per firing alert, one candidate per drift alert, a cool-down per rule."""

from __future__ import annotations

import pandas as pd
import pytest

from opscore.config import Settings, replace
from opscore.demo.credit_data import credit_applications
from opscore.models import registry
from opscore.models.training import train_version
from opscore.operations import alerts
from opscore.operations.alert_evaluator import AlertEvaluator, evaluate_once
from opscore.operations.tasks import Cause, get_task, list_tasks
from opscore.operations.triggers import TASK_EVENT
from opscore.operations.worker import execute_task, run_one
from opscore.serving.feedback import record_feedback
from opscore.store import open_store
from tests.conftest import OPERATOR
from tests.operations.test_alert_quality_signals import HOUR, T0, log_frame

# The host's CPU and memory must not fire alerts of their own here.
QUIET_HOST = [{"name": name, "expr": f"{signal} > 1000", "severity": severity}
              for name, signal in (("cpu", "cpu_percent"), ("memory", "memory_percent"))
              for severity in ("warning", "critical")]


@pytest.fixture
def production(any_workspace: Settings, demo_frame: pd.DataFrame) -> Settings:
    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    return replace(any_workspace, alert_rules=QUIET_HOST, alert_group_wait_seconds=0)


def log_labelled(settings: Settings, frame: pd.DataFrame, start: float, span: float = 1800.0) -> None:
    """Log ``frame`` as production traffic, then send its true outcomes as labels."""
    log_frame(settings, frame, start, span)
    ids = [f"r{start:.0f}-{j}" for j in range(len(frame))]  # the request ids log_frame gives
    record_feedback(open_store(settings), [{"request_id": rid, "label": int(label)}
                                           for rid, label in zip(ids, frame["default"], strict=True)])


def _tasks_of(settings: Settings, alert_id: int) -> list:
    return [t for t in list_tasks(settings, created_by_prefix="alert:") if t.created_by == f"alert:{alert_id}"]


def _drift_alerts(settings: Settings) -> list[dict]:
    return [a for a in alerts.list_alerts(settings) if a["rule"] == "dataset_drift"]


def test_a_drift_alert_evaluated_many_times_opens_one_task_and_after_the_worker_one_candidate(
        production: Settings) -> None:
    # Only the drift rule may trigger here (the accuracy rule would fire on the same traffic: see below).
    settings = replace(production, alert_auto_retrain=True, trigger_rules=["dataset_drift"])
    log_labelled(settings, credit_applications(n_rows=2_000, seed=41, shift=1.0), T0)
    clock = [T0 + HOUR]
    evaluator = AlertEvaluator(settings, clock=lambda: clock[0])
    for _ in range(12):  # pending, firing after 2 minutes, then still firing at every evaluation
        evaluator.run_once()
        clock[0] += 30
    [alert] = _drift_alerts(settings)
    assert alert["state"] == "firing"
    [task] = _tasks_of(settings, alert["id"])
    assert task.procedure == "retrain_candidate" and task.type == "adaptive"
    assert task.dedup_key == f"alert:{alert['id']}" and task.created_by == f"alert:{alert['id']}"
    assert task.cause == Cause("alert", str(alert["id"]), alert["summary"])
    assert task.params["base_version"] == "v1"
    linked = [e for e in alerts.get_alert(settings, alert["id"])["history"] if e["kind"] == TASK_EVENT]
    assert len(linked) == 1 and linked[0]["detail"].startswith(f"task {task.id} (retrain_candidate)")

    done = run_one(settings, clock=lambda: clock[0])
    assert done is not None and done.id == task.id and done.status == "success", done and done.attempts
    store = open_store(settings)
    versions = {v.version_id for v in registry.list_versions(store)}
    candidate = registry.alias_target(store, "candidate")
    assert len(versions) == 2 and candidate in versions - {"v1"}
    assert registry.alias_target(store, "production") == "v1"  # a trigger never promotes
    assert get_task(settings, task.id).result["figures"]["candidate"] == candidate
    kinds = {e["kind"]: e["detail"] for e in alerts.get_alert(settings, alert["id"])["history"]}
    assert kinds[TASK_EVENT].startswith(f"task {task.id}") and kinds["retrained"].startswith(f"candidate {candidate}")

    for _ in range(6):  # the task ended and its dedup key is free: the alert's timeline still says it has one
        evaluator.run_once()
        clock[0] += 30
    assert [t.id for t in _tasks_of(settings, alert["id"])] == [task.id]
    assert run_one(settings, clock=lambda: clock[0]) is None
    assert len(registry.list_versions(store)) == 2


def test_drift_and_accuracy_firing_together_retrain_once(production: Settings) -> None:
    settings = replace(production, alert_auto_retrain=True)
    log_labelled(settings, credit_applications(n_rows=2_000, seed=41, shift=1.0), T0)
    for minutes in (0, 3):
        evaluate_once(settings, now=T0 + HOUR + 60 * minutes, sleep=lambda _s: None)
    firing = {a["rule"]: a for a in alerts.list_alerts(settings, state="firing")}
    assert {"dataset_drift", "accuracy_drop"} <= set(firing)
    opened = {rule: _tasks_of(settings, firing[rule]["id"]) for rule in ("dataset_drift", "accuracy_drop")}
    assert all(len(found) == 1 for found in opened.values())
    assert sorted(found[0].procedure for found in opened.values()) == ["investigate_alert", "retrain_candidate"]
    while run_one(settings, clock=lambda: T0 + 2 * HOUR) is not None:
        pass
    assert len(registry.list_versions(open_store(settings))) == 2


def test_a_flapping_drift_rule_retrains_at_most_once_per_cool_down(production: Settings) -> None:
    # A 5-minute drift rule over traffic that drifts one 5-minute bucket in two: it fires and resolves in turn.
    flappy = {"name": "dataset_drift", "expr": "dataset_drift_share >= 0.5", "severity": "warning", "for": "0s",
              "window": "5m"}
    settings = replace(production, alert_auto_retrain=True, alert_rules=[*QUIET_HOST, flappy], alert_min_rows=50,
                       trigger_rules=["dataset_drift"])
    start = T0 - T0 % 300
    for k in range(6):
        log_labelled(settings, credit_applications(n_rows=300, seed=50 + k, shift=1.0 if k % 2 == 0 else 0.0),
                     start + k * 300, span=290)
    for k in range(6):
        now = start + (k + 1) * 300
        evaluate_once(settings, now=now, sleep=lambda _s: None)
        while run_one(settings, clock=lambda at=now: at + 1) is not None:  # the worker keeps up with the queue
            pass
    fired = [a for a in _drift_alerts(settings) if a["fired_at"] is not None]
    assert len(fired) == 3  # the drifted buckets 0, 2 and 4
    tasks = {a["id"]: _tasks_of(settings, a["id"]) for a in fired}
    assert all(len(found) == 1 for found in tasks.values())  # one task per cause
    procedures = [tasks[a["id"]][0].procedure for a in sorted(fired, key=lambda a: a["id"])]
    assert procedures == ["retrain_candidate", "investigate_alert", "investigate_alert"]
    cooled = [e["detail"] for a in fired for e in alerts.get_alert(settings, a["id"])["history"]
              if e["kind"] == TASK_EVENT and "investigate_alert" in e["detail"]]
    assert len(cooled) == 2 and all("retrain_cooldown_seconds" in line for line in cooled)
    assert len(registry.list_versions(open_store(settings))) == 2  # v1 and one candidate

    # After the cool-down, the rule may retrain again.
    later = start + settings.retrain_cooldown_seconds + 3600
    later -= later % 300
    log_labelled(settings, credit_applications(n_rows=300, seed=60, shift=1.0), later, span=290)
    assert evaluate_once(settings, now=later + 300, sleep=lambda _s: None).tasks
    newest = max(_drift_alerts(settings), key=lambda a: a["id"])
    assert [t.procedure for t in _tasks_of(settings, newest["id"])] == ["retrain_candidate"]
    assert run_one(settings, clock=lambda: later + 301).status == "success"
    assert len(registry.list_versions(open_store(settings))) == 3


def test_without_automatic_retraining_a_trigger_opens_an_investigation(production: Settings) -> None:
    log_labelled(production, credit_applications(n_rows=2_000, seed=42, shift=1.0), T0)
    for minutes in (0, 3, 4):
        evaluate_once(production, now=T0 + HOUR + 60 * minutes, sleep=lambda _s: None)
    [alert] = _drift_alerts(production)
    [task] = _tasks_of(production, alert["id"])
    assert task.procedure == "investigate_alert" and task.type == "corrective" and task.priority == "medium"
    assert "automatic retraining is off" in next(
        e["detail"] for e in alerts.get_alert(production, alert["id"])["history"] if e["kind"] == TASK_EVENT)
    done = execute_task(production, task.id, clock=lambda: T0 + 2 * HOUR)
    assert done.status == "success"
    figures = done.result["figures"]
    assert figures["alert"]["id"] == alert["id"] and figures["now"][0]["rule"] == "dataset_drift"
    assert isinstance(figures["drifted_columns"], list)
    assert done.result["recommendations"][0].startswith("retrain a candidate on the Retrain page")
    while run_one(production, clock=lambda: T0 + 2 * HOUR) is not None:
        pass
    assert len(registry.list_versions(open_store(production))) == 1

    # Only firing alerts of trigger rules open tasks; with no trigger rules, nothing does.
    triggering = {str(a["id"]) for a in alerts.list_alerts(production)
                  if a["rule"] in production.trigger_rules and a["fired_at"] is not None}
    assert {t.cause.id for t in list_tasks(production)} == triggering
    quiet = replace(production, trigger_rules=[])
    log_labelled(quiet, credit_applications(n_rows=2_000, seed=43, shift=1.0), T0 + 5 * HOUR)
    for minutes in (0, 3):
        assert evaluate_once(quiet, now=T0 + 6 * HOUR + 60 * minutes, sleep=lambda _s: None).tasks == []
