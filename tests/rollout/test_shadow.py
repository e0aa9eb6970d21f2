"""Shadow through the real server: callers get production's answers only, and the logged shadow answers are
the candidate's own answers on the same rows; the shadow report pairs them."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from opscore.config import replace
from opscore.data.features import validate_records
from opscore.rollout.shadow_report import shadow_report
from opscore.serving.predictor import load_version
from opscore.store import open_store, predictions
from tests.local_servers import demo_rows, live_server

AUTH = {"Authorization": "Bearer test-token"}
pytestmark = pytest.mark.slow


def _direct(settings, version_id, rows):
    loaded = load_version(settings, version_id)
    return loaded.predict_frame(validate_records(loaded.schema, rows).frame)


def test_shadow_answers_are_logged_never_returned_and_match_the_candidate(trained):
    # The fixture's v2 scores a few points below v1 on its holdout; a shadow is how one would find out.
    settings = replace(trained, deploy_tick_seconds=0, alert_evaluation_seconds=0, serve_worker=False,
                       deploy_holdout_tolerance=0.2, deploy_benchmark_ratio=10.0)
    rows = demo_rows(60, seed=21)
    answers = []
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        started = client.post("/deployments", json={"version": "v2", "strategy": "shadow",
                                                    "options": {"shadow_share": 1.0}}, headers=AUTH)
        assert started.status_code == 201, started.text
        deployment_id = started.json()["id"]
        for first in range(0, len(rows), 2):
            answer = client.post("/predict", json={"instances": rows[first:first + 2]})
            assert answer.status_code == 200
            answers.append(answer.json())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shadow = client.get("/health").json()["routing"]["shadow"]
            if shadow["scored"] == len(rows) and shadow["backlog"] == 0:
                break
            time.sleep(0.05)
        assert shadow["dropped"] == 0 and shadow["scored"] == len(rows), shadow
    # live_server stopped: the telemetry writer has written everything.

    production, candidate = _direct(settings, "v1", rows), _direct(settings, "v2", rows)
    assert {a["version"] for a in answers} == {"v1"}
    assert [p for a in answers for p in a["predictions"]] == production.predictions
    np.testing.assert_allclose([p for a in answers for p in a["probabilities"]], production.probabilities)

    ids = [rid for a in answers for rid in a["request_ids"]]
    with open_store(settings).read() as conn:
        logged = {r.request_id: r for r in conn.execute(select(predictions).where(predictions.c.deployment_id == deployment_id))}
    shadows = [logged[f"{rid}:shadow"] for rid in ids]
    assert {(r.version_id, r.source, r.role) for r in shadows} == {("v2", "shadow", "shadow")}
    assert [int(r.prediction) for r in shadows] == candidate.predictions
    np.testing.assert_allclose([r.probability for r in shadows], [p[-1] for p in candidate.probabilities])
    assert {(logged[rid].version_id, logged[rid].role) for rid in ids} == {("v1", "production")}

    report = shadow_report(settings, deployment_id)
    agree = np.mean(np.asarray(production.predictions) == np.asarray(candidate.predictions))
    assert report.compared == len(rows)
    assert report.agreement_rate == pytest.approx(agree)
    assert len(report.disagreements) == min(20, round((1 - agree) * len(rows)))
    differences = np.asarray([p[-1] for p in candidate.probabilities]) - np.asarray([p[-1] for p in production.probabilities])
    assert report.score_difference["mean"] == pytest.approx(differences.mean())
    assert report.latency_ms["production"]["p95"] is not None and report.latency_ms["shadow"]["p95"] is not None


def test_a_full_shadow_queue_drops_and_counts_instead_of_waiting(trained):
    from opscore.serving.shadowing import Shadower

    loaded = load_version(trained, "v2")
    shadower = Shadower(None, capacity=1)
    shadower._cond.acquire()  # hold the worker off so the queue stays full
    try:
        accepted = [shadower.submit(loaded, "d-1", demo_rows(1), ["r1"]) for _ in range(5)]
    finally:
        shadower._cond.release()
    assert accepted[0] and not any(accepted[1:])
    assert shadower.dropped == 4
    shadower.close()
