"""A canary through the real server under load: a slow candidate rolls back on its own, a good one is promoted.

The server (uvicorn on loopback, the app ``opscore serve`` runs) advances the deployment itself every
0.2 s; analyses run every 2 s with rollback after 2 failed checks. Traffic comes from 6 client threads
with a routing key per simulated user, until the deployment ends; every answer must be a 200.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import joblib
import pytest
from sqlalchemy import select

from opscore.config import replace
from opscore.demo.credit_data import credit_applications
from opscore.models import registry
from opscore.models.registration import register_model
from opscore.rollout import deployments
from opscore.store import open_store, predictions
from tests.conftest import OPERATOR
from tests.local_servers import demo_rows, live_server
from tests.rollout.slow_model import SlowModel

pytestmark = pytest.mark.slow
AUTH = {"Authorization": "Bearer test-token"}
OPTIONS = {"weights": [25, 50, 100], "interval_seconds": 2, "failed_checks": 2, "min_requests": 5}


def _settings(settings):
    # The registered copy's holdout metrics come from another sample and its benchmark includes the
    # sleep; this test is about the canary's own analysis, so the testing gate is opened wide here.
    return replace(settings, deploy_tick_seconds=0.2, alias_poll_seconds=0.1, deploy_holdout_tolerance=1.0,
                   deploy_benchmark_ratio=1_000.0, alert_evaluation_seconds=0, serve_worker=False)


def register_slow_copy(settings, tmp_path, version_id: str, delay: float) -> None:
    """v1's own model, made ``delay`` seconds slower per call, registered as a real version."""
    inner = registry.load_version_model(settings, registry.get_version(open_store(settings), "v1"))
    path = tmp_path / f"{version_id}.joblib"
    joblib.dump(SlowModel(inner, delay), path)
    register_model(settings, version_id, path, credit_applications(n_rows=600, seed=9), "default", actor=OPERATOR,
                   trust_pickle=True, then="none")


def run_canary(settings, version_id: str, timeout: float = 90.0) -> tuple[dict, list[int]]:
    """Start a canary over HTTP, keep traffic flowing until it ends; the final deployment and every status."""
    rows = demo_rows(200)
    statuses: list[int] = []
    stop = threading.Event()
    with live_server(settings) as url:
        def traffic(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                i = worker
                while not stop.is_set():
                    answer = client.post("/predict", json={"features": rows[i % len(rows)]},
                                         headers={"x-routing-key": f"user-{worker}-{i % 50}"})
                    statuses.append(answer.status_code)
                    i += 7

        threads = [threading.Thread(target=traffic, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                started = client.post("/deployments", json={"version": version_id, "strategy": "canary",
                                                             "options": OPTIONS}, headers=AUTH)
                assert started.status_code == 201, started.text
                deployment_id = started.json()["id"]
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    found = client.get(f"/deployments/{deployment_id}").json()
                    if found["status"] not in deployments.ACTIVE:
                        break
                    time.sleep(0.2)
                time.sleep(0.5)  # requests routed before the end finish on the version they started with
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    return found, statuses


def _roles(settings, deployment_id):
    with open_store(settings).read() as conn:
        return conn.execute(select(predictions.c.version_id, predictions.c.role, predictions.c.at)
                            .where(predictions.c.deployment_id == deployment_id)).all()


def test_a_candidate_with_a_latency_regression_is_rolled_back_by_the_analysis(trained, tmp_path):
    settings = _settings(trained)
    register_slow_copy(settings, tmp_path, "v1-slow", delay=0.08)
    found, statuses = run_canary(settings, "v1-slow")

    assert found["status"] == "rolled_back", found
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"
    verdicts = [a["verdict"] for a in found["analyses"]]
    # Rolled back at the threshold-th failed check, each one interval after the one before.
    assert verdicts.count("fail") == OPTIONS["failed_checks"] and "pass" not in verdicts, verdicts
    assert all("p95" in " ".join(a["problems"]) for a in found["analyses"] if a["verdict"] == "fail")
    fails = [a for a in found["analyses"] if a["verdict"] == "fail"]
    assert all(a["candidate"]["p95_ms"] > a["production"]["p95_ms"] for a in fails)

    store = open_store(settings)
    assert registry.alias_target(store, "production") == "v1"
    last = registry.ledger_entries(store, alias="candidate", limit=1)[0]
    assert (last.action, last.from_version, last.to_version) == ("rollback", "v1-slow", None)
    assert found["id"] in last.reason and "p95" in last.reason and "rolled back" in last.reason

    rows = _roles(settings, found["id"])
    assert {(r.version_id, r.role) for r in rows} == {("v1", "production"), ("v1-slow", "candidate")}
    # Once every replica followed the rollback, no request reaches the candidate.
    late = [r for r in rows if r.role == "candidate" and r.at > found["ended_at"] + 1.0]
    assert late == []


def test_a_good_candidate_goes_through_every_step_to_production(trained):
    settings = _settings(trained)
    found, statuses = run_canary(settings, "v2")

    assert found["status"] == "promoted", found
    assert set(statuses) == {200}
    passed = [a for a in found["analyses"] if a["verdict"] == "pass"]
    assert [a["weight"] for a in passed] == OPTIONS["weights"]
    store = open_store(settings)
    assert registry.alias_target(store, "production") == "v2"
    entry = registry.ledger_entries(store, alias="production", limit=1)[0]
    assert entry.to_version == "v2" and found["id"] in entry.reason and "promoted" in entry.reason
    # The candidate answered a growing share of requests, and only as the candidate.
    rows = _roles(settings, found["id"])
    assert {r.role for r in rows if r.version_id == "v2"} == {"candidate"}
    assert json.dumps(found)  # the deployment reads as JSON, as GET /deployments/{id} answers it


def test_a_key_keeps_its_version_through_the_canary(trained):
    settings = _settings(replace(trained, deploy_tick_seconds=0))
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        started = client.post("/deployments", json={"version": "v2", "strategy": "canary",
                                                    "options": {"weights": [50, 100]}}, headers=AUTH)
        assert started.status_code == 201, started.text
        row = demo_rows(1)[0]
        seen: dict[str, set[str]] = {}
        for i in range(60):
            key = f"user-{i % 12}-{uuid.uuid4().hex[:0]}"
            answer = client.post("/predict", json={"features": row}, headers={"x-routing-key": key}).json()
            seen.setdefault(key, set()).add(answer["version"])
        assert all(len(versions) == 1 for versions in seen.values())
        assert {v for versions in seen.values() for v in versions} == {"v1", "v2"}
