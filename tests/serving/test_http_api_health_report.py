"""``GET /health/report`` answers what ``opscore health --json`` prints; ``GET /health`` stays the probe."""

from fastapi.testclient import TestClient

from opscore.config import replace
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


def test_refused_requests_count_in_the_error_rate(served):
    strict = replace(served, health_error_rate_warning=1e-6, health_error_rate_critical=1e-6)
    with TestClient(create_app(strict)) as client:
        before = client.get("/health/report").json()["checks"]["performance"]["figures"]
        assert before["refused_requests"] == 0 and before["error_rate"] == 0
        assert client.post("/predict", json={"instances": [{"age": "old"}]}).status_code == 422
        assert client.app.state.serving.writer.flush(10)
        after = client.get("/health/report").json()["checks"]["performance"]
        figures = after["figures"]
        assert figures["refused_requests"] == 1
        assert figures["error_rate"] == 1 / (figures["requests"] + 1)
        assert after["status"] == "critical"
        assert "refused before it" in after["issues"][0]
