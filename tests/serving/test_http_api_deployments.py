"""The /deployments routes: reading is open, starting and steering need the admin token, errors are 4xx."""

from __future__ import annotations

from fastapi.testclient import TestClient

from opscore.config import replace
from opscore.serving.http_api import create_app

ADMIN = {"Authorization": "Bearer test-token"}


def test_deployment_routes(trained):
    # The fixture's v2 scores a few points below v1 on its holdout; the routes, not the gate, are tested here.
    settings = replace(trained, deploy_tick_seconds=0, alert_evaluation_seconds=0, serve_worker=False,
                       deploy_holdout_tolerance=0.2, deploy_benchmark_ratio=10.0)
    with TestClient(create_app(settings)) as client:
        body = {"version": "v2", "strategy": "canary", "options": {"weights": [5, 50, 100]}}
        assert client.post("/deployments", json=body).status_code == 401
        assert client.post("/deployments", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        bad = client.post("/deployments", json={**body, "strategy": "linear"}, headers=ADMIN)
        assert bad.status_code == 422 and "strategy must be one of" in bad.json()["detail"]
        assert client.get("/deployments").json() == []

        started = client.post("/deployments", json=body, headers=ADMIN)
        assert started.status_code == 201, started.text
        deployment = started.json()
        assert (deployment["status"], deployment["stage"], deployment["weight"]) == ("running", "production", 5.0)
        assert deployment["seconds_to_promotion"] > 0
        # This replica applied the split at once: its health shows the new generation.
        routing = client.get("/health").json()["routing"]
        assert routing["split"]["candidate"] == "v2" and routing["generation"] == 1
        assert client.post("/deployments", json=body, headers=ADMIN).status_code == 409

        listed = client.get("/deployments").json()
        assert [d["id"] for d in listed] == [deployment["id"]]
        one = client.get(f"/deployments/{deployment['id']}").json()
        assert one["stages"]["validation"]["passed"] and one["analyses"] == []
        assert client.get("/deployments/d-missing").status_code == 404

        url = f"/deployments/{deployment['id']}"
        assert client.post(f"{url}/pause").status_code == 401
        assert client.post(f"{url}/pause", headers=ADMIN).json()["status"] == "paused"
        assert client.post(f"{url}/pause", headers=ADMIN).status_code == 409
        assert client.post(f"{url}/explode", headers=ADMIN).status_code == 404
        assert client.post(f"{url}/resume", headers=ADMIN).json()["status"] == "running"
        aborted = client.post(f"{url}/abort", headers=ADMIN).json()
        assert aborted["status"] == "aborted"
        assert client.get("/health").json()["routing"]["split"]["candidate"] is None
        answer = client.post("/predict", json={"features": {"age": 40}})
        assert answer.status_code in (200, 422) and answer.json().get("version", "v1") == "v1"
