"""The queue routes: the task list as the contract says, changes behind the admin token, a worker in serve."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from opscore.config import Settings, replace
from opscore.serving.http_api import create_app
from tests.operations import queue_probes  # noqa: F401 - registers the probe procedures

ADMIN = {"Authorization": "Bearer test-token"}
CONTRACT = {"id", "title", "type", "priority", "status", "due_at", "created_by", "cause", "attempts", "result"}


def _wait_for(client: TestClient, task_id: str, status: str) -> dict:
    for _ in range(300):
        task = client.get(f"/maintenance/tasks/{task_id}").json()
        if task["status"] == status:
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} stayed {task['status']}")


def test_queue_routes_and_the_worker_inside_serve(workspace: Settings) -> None:
    settings = replace(workspace, worker_poll_seconds=0.05, alert_evaluation_seconds=0)
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.serving.task_worker
        assert worker is not None and worker._thread.is_alive()
        body = {"procedure": "probe_record", "params": {"label": "http"}, "priority": "high"}
        assert client.post("/maintenance/tasks", json=body).status_code == 401
        bad = client.post("/maintenance/tasks", json={**body, "procedure": "nope"}, headers=ADMIN)
        assert bad.status_code == 422 and "unknown procedure 'nope'" in bad.json()["detail"]
        made = client.post("/maintenance/tasks", json=body, headers=ADMIN)
        assert made.status_code == 201
        task = made.json()
        assert set(task) >= CONTRACT and task["created_by"] == "operator:env"
        assert task["cause"] == {"kind": "operator", "id": "operator:env", "summary": "Record that it ran"}
        done = _wait_for(client, task["id"], "success")  # the worker in serve ran it
        assert done["attempts"][0]["outcome"] == "success" and done["result"]["figures"] == {"steps": 1}

        later = client.post("/maintenance/tasks", json={**body, "due_at": time.time() + 3600}, headers=ADMIN).json()
        assert client.post(f"/maintenance/tasks/{later['id']}/cancel").status_code == 401
        assert client.post(f"/maintenance/tasks/{later['id']}/cancel", headers=ADMIN).json()["status"] == "cancelled"
        assert client.post(f"/maintenance/tasks/{later['id']}/cancel", headers=ADMIN).status_code == 409
        assert client.post(f"/maintenance/tasks/{later['id']}/retry", headers=ADMIN).json()["status"] == "pending"
        _wait_for(client, later["id"], "success")
        assert client.post(f"/maintenance/tasks/{later['id']}/shout", headers=ADMIN).status_code == 404
        assert client.get("/maintenance/tasks/missing").status_code == 404

        listed = client.get("/maintenance/tasks").json()
        assert {t["id"] for t in listed} == {task["id"], later["id"]}
        assert all(set(t) >= CONTRACT for t in listed)
        assert client.get("/maintenance/tasks", params={"status": "loud"}).status_code == 422
        assert any(p["name"] == "cleanup" and p["maintenance_set"] == "daily"
                   for p in client.get("/maintenance/procedures").json())
    assert not worker._thread.is_alive()


def test_serve_without_a_worker(workspace: Settings) -> None:
    with TestClient(create_app(replace(workspace, serve_worker=False, alert_evaluation_seconds=0))) as client:
        assert client.app.state.serving.task_worker is None
