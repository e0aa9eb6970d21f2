"""The alert routes: the list and one alert as the contract says, ack and silences behind the admin token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from opscore.config import Settings
from opscore.operations import alerts
from opscore.serving.http_api import create_app
from tests.operations.test_alerts import T0, log_minutes, slow_settings

ADMIN = {"Authorization": "Bearer test-token"}


def test_alerts_routes(workspace: Settings) -> None:
    settings = slow_settings(workspace)
    log_minutes(settings, {m: 8000 for m in range(3)})
    for minute in range(3):
        alerts.evaluate(settings, now=T0 + (minute + 1) * 60, sleep=lambda _s: None)
    with TestClient(create_app(settings)) as client:
        evaluator = client.app.state.serving.alert_evaluator
        assert evaluator is not None and evaluator._thread.is_alive()  # serve evaluates in the background
        listed = client.get("/alerts").json()
        slow = next(a for a in listed if a["rule"] == "p95_latency")
        assert {"id", "rule", "severity", "state", "labels", "summary", "started_at", "resolved_at"} <= set(slow)
        assert slow["state"] == "firing" and slow["labels"] == {"version": "v1"} and slow["resolved_at"] is None
        assert [a["id"] for a in client.get("/alerts", params={"state": "firing"}).json()].count(slow["id"]) == 1
        assert client.get("/alerts", params={"state": "loud"}).status_code == 422

        one = client.get(f"/alerts/{slow['id']}").json()
        assert [e["kind"] for e in one["history"]][:2] == ["pending", "firing"]
        assert one["deliveries"][0]["channel"] == "log" and one["deliveries"][0]["ok"] is True
        assert client.get("/alerts/999999").status_code == 404

        assert client.post(f"/alerts/{slow['id']}/ack").status_code == 401
        acked = client.post(f"/alerts/{slow['id']}/ack", headers=ADMIN)
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "http:env"
        assert client.post(f"/alerts/{slow['id']}/ack", headers=ADMIN).status_code == 409

        body = {"matchers": {"rule": "cpu"}, "author": "ana", "comment": "", "ends_at": T0 + 3600}
        assert client.post("/silences", json=body).status_code == 401
        refused = client.post("/silences", json=body, headers=ADMIN)
        assert refused.status_code == 422 and "comment" in refused.json()["detail"]
        made = client.post("/silences", json={**body, "comment": "host upgrade", "ends_at": 4_000_000_000},
                           headers=ADMIN)
        assert made.status_code == 200 and made.json()["author"] == "ana" and made.json()["id"] > 0
    assert not evaluator._thread.is_alive()
