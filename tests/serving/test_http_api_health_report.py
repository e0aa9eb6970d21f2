"""``GET /health/report`` answers what ``opscore health --json`` prints; ``GET /health`` stays the probe."""

from fastapi.testclient import TestClient

from opscore.monitoring.health import CHECKS
from opscore.serving.http_api import create_app


def test_health_report_route_answers_the_five_checks(served):
    with TestClient(create_app(served)) as client:
        body = client.get("/health/report").json()
        assert set(body) == {"overall", "checked_at", "checks"}
        assert list(body["checks"]) == list(CHECKS)
        assert body["checks"]["cost_efficiency"]["figures"]["predictions"] == 200
        assert client.get("/health/report?window=1h").status_code == 200
        bad = client.get("/health/report?window=tomorrow")
        assert bad.status_code == 422 and "window 'tomorrow'" in bad.json()["detail"]
        probe = client.get("/health").json()
        assert "ready" in probe and "checks" not in probe
