"""The health report on real logged traffic: its JSON shape, each check's lines, and an empty workspace."""

import json
import math

import pytest

from opscore.config import replace
from opscore.monitoring.health import CHECKS, health_report
from opscore.monitoring.health.infrastructure import HostReading
from opscore.serving.feedback import record_feedback
from opscore.serving.telemetry_queries import recent_predictions
from opscore.store import open_store

QUIET = HostReading(cpu_percent=10, memory_percent=20, memory_available_gb=8, disk_percent=30, disk_free_gb=50, cores=4)


def quiet_host(_path):
    return QUIET


def test_the_report_keeps_its_contract_exactly(served):
    out = health_report(served, host=quiet_host).to_dict()
    assert set(out) == {"overall", "checked_at", "checks"}
    assert list(out["checks"]) == list(CHECKS) == ["performance", "data_quality", "model_accuracy",
                                                   "infrastructure", "cost_efficiency"]
    for check in out["checks"].values():
        assert set(check) == {"status", "issues", "recommendations", "figures"}
        assert check["status"] in {"healthy", "warning", "critical"}
    assert out["overall"] in {"healthy", "warning", "critical"}
    json.dumps(out, allow_nan=False)


def test_figures_come_from_the_logged_traffic(served):
    report = health_report(served, host=quiet_host)
    performance = report.checks["performance"].figures
    assert performance["rows"] == 200  # 120 rows to v1, 80 to v2, all API
    assert performance["p95_ms"] is not None and performance["p95_ms"] > 0
    cost = report.checks["cost_efficiency"].figures
    assert cost["predictions"] == 200
    assert cost["window_cost"] == pytest.approx(4 * cost["window_hours"] * served.cost_per_cpu_hour)
    assert 24 <= cost["window_hours"] < 25
    assert cost["cost_per_1000_predictions"] == pytest.approx(cost["window_cost"] / 200 * 1000)
    assert 0 <= cost["idle_share"] < 1
    quality = report.checks["data_quality"].figures
    assert quality["version"] == "v1" and quality["rows"] == 120
    accuracy = report.checks["model_accuracy"].figures
    assert accuracy["version"] == "v1" and accuracy["source"] == "estimate"
    assert 0 < accuracy["estimated_accuracy"] <= 1
    assert accuracy["drift_rows"] == 120


def test_latency_and_errors_past_their_lines(served):
    strict = replace(served, health_p95_target_ms=1e-6, health_p95_critical_ms=1e9)
    performance = health_report(strict, host=quiet_host).checks["performance"]
    assert performance.status == "warning"
    assert "above the 0 ms target" in performance.top_issue
    critical = replace(served, health_p95_target_ms=1e-6, health_p95_critical_ms=1e-6)
    report = health_report(critical, host=quiet_host)
    assert report.checks["performance"].status == "critical" and report.overall == "critical"
    assert health_report(served, host=quiet_host).checks["performance"].status == "healthy"


@pytest.mark.parametrize(("reading", "status", "named"), [
    ({"cpu_percent": 90}, "warning", "CPU is 90 % used"),
    ({"memory_percent": 99}, "critical", "memory is 99 % used"),
    ({"disk_percent": 96}, "critical", "disk is 96 % used"),
])
def test_host_readings_past_their_lines(served, reading, status, named):
    host = HostReading(**{**QUIET.__dict__, **reading})
    check = health_report(served, host=lambda _path: host).checks["infrastructure"]
    assert check.status == status
    assert named in check.top_issue
    assert check.recommendations


def test_wrong_labels_make_the_accuracy_check_critical(served):
    store = open_store(served)
    logged = recent_predictions(store, limit=200)
    v1 = logged[logged["version_id"] == "v1"]
    # Every label the opposite of what v1 predicted: realized accuracy 0, far past twice the 5 % line.
    record_feedback(store, [{"request_id": r, "label": 1 - int(p)} for r, p in zip(v1["request_id"], v1["prediction"],
                                                                                     strict=True)])
    check = health_report(served, host=quiet_host).checks["model_accuracy"]
    assert check.figures["source"] == "labels" and check.figures["realized"] == 0
    assert check.status == "critical"
    assert "worse than the holdout" in check.top_issue


def test_an_expensive_idle_host_warns(served):
    costly = replace(served, cost_per_cpu_hour=10.0, health_cost_per_1000_target=1.0, health_idle_share=0.5)
    check = health_report(costly, host=quiet_host).checks["cost_efficiency"]
    assert check.status == "warning"
    assert any("above the 1 target" in issue for issue in check.issues)
    assert any("sat idle" in issue for issue in check.issues)


def test_an_empty_workspace_is_healthy_and_says_why(any_workspace):
    report = health_report(any_workspace, host=quiet_host)
    assert report.overall == "healthy"
    for name in ("performance", "data_quality", "model_accuracy", "cost_efficiency"):
        assert report.checks[name].issues, name
    assert "no version has served production" in report.checks["model_accuracy"].top_issue


def test_a_window_shorter_than_a_minute_is_refused(workspace):
    from opscore.exceptions import BadInputError

    with pytest.raises(BadInputError, match="at least 60 seconds"):
        health_report(workspace, window=1)
    assert not math.isnan(health_report(workspace, window=3600, host=quiet_host).checked_at)
