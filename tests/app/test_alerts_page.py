"""Alerts page: an operator acknowledges and silences; a viewer sees the same alerts but can do neither."""

from __future__ import annotations

import pytest
from app_under_test import OPERATOR, run_page
from streamlit.testing.v1.errors import AppTestError

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


def silence_button(at):
    return next(b for b in at.button if b.label == "Silence")


def silence_from_the_page(at, comment: str) -> None:
    at.text_input(key="silence_matchers").input("rule=p95_latency, version=v1")
    at.text_input(key="silence_comment").input(comment)
    at.text_input(key="silence_until").input("4h")
    silence_button(at).click().run()


def test_an_operator_acknowledges_and_silences(workspace) -> None:
    alert_id = firing_alert(workspace)
    at = run_page(PAGE, OPERATOR)
    at.selectbox(key="alert_id").set_value(alert_id).run()
    at.button(key="acknowledge").click().run()
    silence_from_the_page(at, "capacity test until noon")
    assert not at.exception
    settings = load_settings()
    [silence] = alerts.list_silences(settings)
    assert silence["matchers"] == {"rule": "p95_latency", "version": "v1"}
    assert silence["author"] == "alice" and silence["comment"] == "capacity test until noon"
    one = alerts.get_alert(settings, alert_id)
    assert one["acknowledged_by"] == "dashboard:alice"
    kinds = [(e["kind"], e["actor"]) for e in one["history"]]
    assert ("acknowledged", "dashboard:alice") in kinds and ("silenced", "alice") in kinds
    silenced = next(e for e in one["history"] if e["kind"] == "silenced")
    assert f"silence #{silence['id']} by alice" in silenced["detail"] and "capacity test" in silenced["detail"]
    [history] = [d.value for d in at.dataframe if "what" in d.value.columns]  # the chosen alert's history
    assert "silenced" in set(history["what"]) and "acknowledged" in set(history["what"])


def test_a_viewer_cannot(workspace) -> None:
    alert_id = firing_alert(workspace)
    at = run_page(PAGE)
    assert not at.exception
    assert at.button(key="acknowledge").disabled and silence_button(at).disabled
    with pytest.raises(AppTestError, match="disabled"):
        at.button(key="acknowledge").click().run()
    with pytest.raises(AppTestError, match="disabled"):
        silence_from_the_page(at, "should not be set")
    assert at.text_input(key="silence_matchers").disabled is False  # it can be read, just not submitted
    settings = load_settings()
    assert alerts.get_alert(settings, alert_id)["acknowledged_at"] is None
    assert alerts.list_silences(settings) == []
    assert "silenced" not in {e["kind"] for e in alerts.get_alert(settings, alert_id)["history"]}
