"""The demo workspace: a day of real traffic across two versions, drift, labels; safe to run twice."""

from __future__ import annotations

import json
import re
import traceback
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, event, select

from opscore.access.actors import Actor
from opscore.cli import main as cli
from opscore.demo.simulate import NEW_CATEGORY
from opscore.demo.workspace import DRIFT_PEAKS, NEW_CATEGORY_FROM, V1_LEAD, V2_LEAD, V2_TAKES_OVER, build_demo
from opscore.exceptions import ConflictError, PermissionDenied
from opscore.models import registry
from opscore.serving.predictor import load_version
from opscore.store import open_store, predictions

NOW = 1_800_000_000.0
HOUR = 3_600.0
OPERATOR = Actor("tester", "operator", "cli")
VIEWER = Actor("viewer", "viewer", "dashboard")


def rows(settings) -> list:
    with open_store(settings).read() as conn:
        return conn.execute(select(predictions)).all()


@pytest.fixture
def demo(workspace):
    stages: list[tuple[str, float]] = []
    outcome = build_demo(workspace, OPERATOR, progress=lambda stage, fraction: stages.append((stage, fraction)), now=NOW,
                         scale=0.06, maintenance_days=0)
    return workspace, outcome, stages


@pytest.fixture
def demo_with_history(workspace):
    stages: list[tuple[str, float]] = []
    outcome = build_demo(workspace, OPERATOR, progress=lambda stage, fraction: stages.append((stage, fraction)), now=NOW,
                         scale=0.03)
    return workspace, outcome, stages


def test_demo_builds_two_versions_a_day_of_traffic_and_a_ledgered_takeover(demo):
    settings, outcome, _ = demo
    store = open_store(settings)
    assert outcome.built and outcome.versions == ("v1", "v2")
    assert registry.alias_target(store, "production") == "v2"
    v2 = registry.get_version(store, "v2")
    assert v2.parent_version == "v1" and "labelled production traffic" in v2.notes
    promotion = registry.ledger_entries(store, alias="production")[0]
    assert (promotion.to_version, promotion.actor) == ("v2", "system:demo")
    assert promotion.at == pytest.approx(NOW - V2_TAKES_OVER * HOUR)
    assert registry.served_at(store, NOW - 20 * HOUR) == "v1"
    # The day's story, as the registry recorded it at the simulated times: v1 from before the day
    # began, v2 registered as the candidate a quarter of an hour before it took over.
    takeover = NOW - V2_TAKES_OVER * HOUR
    assert registry.production_periods(store) == [("v1", NOW - 24 * HOUR - V1_LEAD, takeover), ("v2", takeover, None)]
    assert [c.at for c in registry.production_changes(store)] == [NOW - 24 * HOUR - V1_LEAD, takeover]
    assert registry.get_version(store, "v1").created_at == NOW - 24 * HOUR - V1_LEAD
    assert v2.created_at == takeover - V2_LEAD
    candidate = registry.ledger_entries(store, alias="candidate")[0]
    assert (candidate.to_version, candidate.at) == ("v2", takeover - V2_LEAD)
    assert registry.served_at(store, takeover - 1) == "v1" and registry.served_at(store, takeover) == "v2"

    logged = rows(settings)
    assert len(logged) == outcome.predictions > 400
    assert all(NOW - 24 * HOUR <= r.at < NOW for r in logged)
    # Each request was served by the version production named at its time, with a real latency: the
    # logged version is the ledger's answer for that moment, and that version's model really gave the
    # logged answer (re-scoring the logged features reproduces the logged probability).
    assert all(r.version_id == registry.served_at(store, r.at) for r in logged[::25])
    models = {v: load_version(settings, v) for v in ("v1", "v2")}
    for r in logged[::40]:
        scores = models[r.version_id].predict_frame(pd.DataFrame([json.loads(r.features)]))
        assert json.loads(r.prediction) == scores.predictions[0]
        assert r.probability == pytest.approx(scores.positive_probability()[0], abs=1e-9)
    assert {r.version_id for r in logged} == {"v1", "v2"}
    assert all(r.latency_ms > 0 and r.status == "ok" for r in logged)
    assert len({r.latency_ms for r in logged}) > len(logged) // 10


def test_demo_traffic_drifts_late_in_the_day_and_labels_arrive_late(demo):
    settings, outcome, _ = demo
    logged = rows(settings)
    early = [json.loads(r.features) for r in logged if r.at < NOW - 12 * HOUR]
    late = [json.loads(r.features) for r in logged if r.at >= NOW - DRIFT_PEAKS * HOUR]

    def mean_score(group):
        return sum(f["credit_score"] for f in group) / len(group)

    assert mean_score(late) < mean_score(early) - 8
    unseen = [r.at for r in logged if json.loads(r.features)["employment_type"] == NEW_CATEGORY]
    assert unseen and min(unseen) >= NOW - NEW_CATEGORY_FROM * HOUR

    labelled = [r for r in logged if r.label is not None]
    assert len(labelled) == outcome.labelled and 0 < len(labelled) < len(logged)
    assert {json.loads(r.label) for r in labelled} <= {0, 1}
    # The newest requests have mostly not been labelled yet.
    newest = [r for r in logged if r.at > NOW - HOUR]
    assert sum(r.label is not None for r in newest) < len(newest) * 0.6


def test_progress_is_reported_in_order_up_to_done(demo):
    _, _, stages = demo
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and stages[-1] == ("done", 1.0)
    assert {"training v1 on the demo data", "promoting v2"} <= {s for s, _ in stages}


def test_a_second_run_leaves_the_workspace_alone_and_fresh_rebuilds_it(demo, capsys):
    settings, first, _ = demo
    again = build_demo(settings, OPERATOR, now=NOW, scale=0.06, maintenance_days=0)
    assert not again.built and "already has 2 version(s)" in again.message
    assert len(rows(settings)) == first.predictions
    assert cli.main(["demo"]) == 0
    assert "nothing changed" in capsys.readouterr().out

    with pytest.raises(PermissionDenied, match="needs an operator"):
        build_demo(settings, VIEWER, fresh=True, now=NOW + HOUR, scale=0.03, maintenance_days=0)
    assert len(rows(settings)) == first.predictions  # a viewer cannot reset the workspace
    assert {v.version_id for v in registry.list_versions(open_store(settings))} == {"v1", "v2"}

    rebuilt = build_demo(settings, OPERATOR, fresh=True, now=NOW + HOUR, scale=0.03, maintenance_days=0)
    assert rebuilt.built
    logged = rows(settings)
    assert len(logged) == rebuilt.predictions and all(r.at >= NOW + HOUR - 24 * HOUR for r in logged)
    assert [e.action for e in registry.ledger_entries(open_store(settings), newest_first=False)] == [
        "initial", "candidate", "promote"]


def test_fresh_refuses_a_workspace_the_demo_did_not_build(trained):
    with pytest.raises(ConflictError, match="only rebuilds a workspace the demo built"):
        build_demo(trained, OPERATOR, fresh=True)
    assert {v.version_id for v in registry.list_versions(open_store(trained))} == {"v1", "v2"}


def test_a_viewer_cannot_build_the_demo_into_an_empty_workspace(workspace):
    with pytest.raises(PermissionDenied, match="needs an operator"):
        build_demo(workspace, VIEWER, now=NOW, scale=0.03, maintenance_days=0)
    assert registry.list_versions(open_store(workspace)) == [] and rows(workspace) == []
    assert not (workspace.model_store_path / "v1").exists()


REGISTRY_WRITE = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+\"?(aliases|ledger)\b", re.IGNORECASE)


def test_the_demo_writes_aliases_and_ledger_only_through_the_registry(workspace):
    """Watch every statement a demo build and a fresh rebuild send: registry tables only via registry.py."""
    writers: list[tuple[str, str]] = []

    def watch(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        match = REGISTRY_WRITE.match(statement)
        if match:
            frames = [(Path(f.filename).as_posix(), f.name) for f in traceback.extract_stack()]
            if any(path.endswith("opscore/models/registry.py") for path, _ in frames):
                writers.append(("registry", match.group(2)))
            elif any(path.endswith("opscore/store.py") and name == "_ensure_schema" for path, name in frames):
                writers.append(("schema", match.group(2)))
            else:
                writers.append((" < ".join(name for _, name in frames[-8:]), statement))

    event.listen(Engine, "before_cursor_execute", watch)
    try:
        assert build_demo(workspace, OPERATOR, now=NOW, scale=0.02, maintenance_days=0).built
        assert build_demo(workspace, OPERATOR, fresh=True, now=NOW + HOUR, scale=0.02, maintenance_days=0).built
    finally:
        event.remove(Engine, "before_cursor_execute", watch)
    assert ("registry", "ledger") in writers and ("registry", "aliases") in writers
    assert [w for w in writers if w[0] not in {"registry", "schema"}] == []


def test_the_drift_episode_shows_as_drifted_columns_in_opscore_drift_window(demo, capsys, monkeypatch):
    from opscore.cli import monitoring as monitoring_cli
    from opscore.monitoring.live_drift import live_drift

    settings, _, _ = demo
    # The test's demo is 6 % of the real one's traffic: lower the small-window line to match.
    monkeypatch.setenv("OPSCORE_DRIFT_MIN_ROWS", "20")
    from opscore.config import replace

    settings = replace(settings, drift_min_rows=20)
    calm = live_drift(settings, NOW - 10 * HOUR, NOW - 5 * HOUR)
    assert calm.version == "v2" and calm.rows > 0
    monkeypatch.setattr(monitoring_cli, "now", lambda: NOW)
    assert cli.main(["drift", "--window", "2h", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["window"]["end"] == NOW and body["window"]["start"] == NOW - 2 * HOUR and body["window"]["rows"] > 0
    assert body["version"] == "v2"
    drifted = {name for name, column in body["columns"].items() if column["drifted"]}
    assert body["dataset_drift"] and body["prediction_drift"]["drifted"]
    # A few dozen calm rows already move a Wasserstein distance near 0.1; the episode moves it far more.
    numeric = [name for name, column in body["columns"].items() if column["type"] == "numeric"]
    episode = sum(body["columns"][name]["statistic"] for name in numeric)
    assert episode > 2 * sum(calm.report.columns[name].statistic for name in numeric)
    assert "employment_type" in drifted and NEW_CATEGORY in body["columns"]["employment_type"]["unseen_categories"]
    assert cli.main(["drift", "--window", "2h"]) == 0
    table = capsys.readouterr().out
    assert "version v2" in table and f"unseen categories {NEW_CATEGORY}" in table
    assert cli.main(["drift", "--window", "2 days"]) == 2
    assert "90m, 24h or 7d" in capsys.readouterr().err
    assert cli.main(["drift", "--window", "2h", "--version", "v7"]) == 2
    assert "no version 'v7'" in capsys.readouterr().err


def test_demo_holds_a_week_of_scheduled_maintenance_run_by_the_worker(demo_with_history):
    from opscore.operations.procedures import procedures_in
    from opscore.operations.schedules import schedule_history
    from opscore.operations.tasks import list_tasks

    settings, outcome, stages = demo_with_history
    daily = schedule_history(settings, "daily", limit=50)
    assert len(daily) == 7 and all(f["outcome"] == "run" for f in daily)
    assert len(schedule_history(settings, "weekly", limit=50)) == 1
    tasks = list_tasks(settings, limit=1000)
    by_schedule = [t for t in tasks if t.created_by == "schedule:daily"]
    assert len(by_schedule) == 7 * len(procedures_in("daily"))
    assert all(NOW - 7 * 24 * HOUR <= t.created_at < NOW for t in tasks)
    assert not [t for t in tasks if t.status in ("running", "pending", "up_for_retry") and t.due_at < NOW]
    # The week's first backup failed on a misconfigured folder and succeeded on its retry.
    backup = next(t for t in tasks if t.procedure == "verified_backup")
    assert [a.outcome for a in backup.attempts] == ["failed", "success"]
    assert "backups-mount-missing" in backup.attempts[0].error
    assert backup.attempts[1].started_at >= backup.attempts[0].ended_at + 180
    # The security audit found the world-readable token file and opened a corrective task, linked to it.
    follow_ups = [t for t in tasks if t.cause.kind == "finding"]
    assert all(t.parent_task and t.created_by == f"task:{t.parent_task}" for t in follow_ups)
    token = next(t for t in follow_ups if "can be read by other users" in t.cause.summary)
    audit = next(t for t in tasks if t.id == token.parent_task)
    assert (token.type, token.priority, audit.procedure) == ("corrective", "high", "security_audit")
    # Its re-check a day later (when the week still had a day) found the file fixed.
    assert token.status == ("success" if token.due_at < NOW else "scheduled")
    assert any("scheduled maintenance" in stage for stage, _ in stages)
    assert "maintenance tasks ran" in outcome.message
