"""Alerts page: an operator acknowledges; a viewer sees the same alerts but cannot."""

from __future__ import annotations

from app_under_test import OPERATOR, run_page

from opscore.config import load_settings
from opscore.operations import alerts
from tests.operations.test_alerts import T0, log_minutes, slow_settings

PAGE = "pages/alerts.py"


def firing_alert(workspace) -> int:
    settings = slow_settings(workspace)
    log_minutes(settings, {m: 8000 for m in range(3)})
    for minute in range(3):
        alerts.evaluate(settings, now=T0 + (minute + 1) * 60, sleep=lambda _s: None)
    return next(a["id"] for a in alerts.list_alerts(settings) if a["rule"] == "p95_latency")


def test_an_operator_acknowledges(workspace) -> None:
    alert_id = firing_alert(workspace)
    at = run_page(PAGE, OPERATOR)
    assert not at.exception and at.get("plotly_chart")
    at.selectbox(key="alert_id").set_value(alert_id).run()
    at.button(key="acknowledge").click().run()
    assert not at.exception
    assert alerts.get_alert(load_settings(), alert_id)["acknowledged_by"] == "dashboard:alice"


def test_a_viewer_cannot(workspace) -> None:
    alert_id = firing_alert(workspace)
    at = run_page(PAGE)
    assert not at.exception
    assert at.button(key="acknowledge").disabled
    assert alerts.get_alert(load_settings(), alert_id)["acknowledged_at"] is None
