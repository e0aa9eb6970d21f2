"""The alert lifecycle on real telemetry with an injected clock: for:, silences, escalation, deliveries."""

from __future__ import annotations

import json
import uuid

import pytest

from opscore.access.actors import Actor
from opscore.config import Settings, replace
from opscore.exceptions import BadInputError, PermissionDenied
from opscore.operations import alerts
from opscore.serving.predictor import request_records
from opscore.serving.telemetry_writer import TelemetryWriter
from tests.conftest import OPERATOR
from tests.operations.receivers import http_receiver, smtp_receiver

T0 = 1_800_000_000.0  # a whole minute
SLOW_RULE = {"name": "p95_latency", "expr": "p95_latency_ms > 5000", "severity": "warning", "for": "2m",
             "window": "1m", "summary": "p95 of {version} is {value} ms"}
VIEWER = Actor("someone", "viewer", "dashboard")


def log_minutes(settings: Settings, latencies: dict[int, float], version: str = "v1") -> None:
    """Five API requests in each minute after T0, at the latency given for that minute."""
    writer = TelemetryWriter(settings).start()
    for minute, latency in latencies.items():
        for i in range(5):
            writer.submit_many(request_records(version, [{"age": 40}], None, source="api", latency_ms=latency,
                                               request_ids=[uuid.uuid4().hex], at=T0 + minute * 60 + i))
    assert writer.close()


def run(settings: Settings, minutes: range) -> list[dict]:
    """Evaluate at the end of each minute (each evaluation sees the minute before it)."""
    for minute in minutes:
        alerts.evaluate(settings, now=T0 + (minute + 1) * 60, sleep=lambda _s: None)
    return [a for a in alerts.list_alerts(settings) if a["rule"] == "p95_latency"]


def slow_settings(settings: Settings, **more) -> Settings:
    return replace(settings, **{"alert_rules": [SLOW_RULE], "alert_group_wait_seconds": 0, **more})


def test_for_two_minutes_ignores_a_one_minute_spike_and_fires_on_three(any_workspace: Settings) -> None:
    settings = slow_settings(any_workspace)
    log_minutes(settings, {0: 20, 1: 8000, 2: 20, 3: 20})
    found = run(settings, range(4))
    assert [a["state"] for a in found] == ["resolved"]
    assert found[0]["fired_at"] is None
    history = [e["kind"] for e in alerts.get_alert(settings, found[0]["id"])["history"]]
    assert history == ["pending", "resolved"]

    log_minutes(settings, {10: 8000, 11: 8000, 12: 8000, 13: 20})
    found = run(settings, range(10, 14))
    newest = found[0]
    assert newest["state"] == "resolved" and newest["fired_at"] == T0 + 13 * 60  # pending at 11, firing 2 m later
    assert newest["labels"] == {"version": "v1"} and newest["value"] == pytest.approx(20, rel=0.05)
    kinds = [e["kind"] for e in alerts.get_alert(settings, newest["id"])["history"]]
    assert kinds[:2] == ["pending", "firing"] and "resolved" in kinds


def test_one_open_alert_per_fingerprint_however_often_evaluated(any_workspace: Settings) -> None:
    settings = slow_settings(any_workspace)
    log_minutes(settings, {m: 8000 for m in range(6)})
    found = run(settings, range(6))
    assert len(found) == 1 and found[0]["state"] == "firing"


def test_a_silenced_alert_is_not_delivered_and_its_silence_is_on_the_timeline(any_workspace: Settings) -> None:
    with http_receiver() as hook:
        settings = slow_settings(any_workspace, alert_channels={"hook": {"type": "webhook", "url": hook.url}},
                                 alert_routes=[{"matchers": {"rule": "p95_latency"}, "channels": ["hook"]}])
        silence = alerts.create_silence(settings, matchers={"rule": "p95_latency"}, author="ana",
                                        comment="load test", ends_at=T0 + 3600, actor=OPERATOR, now=T0)
        log_minutes(settings, {m: 8000 for m in range(4)})
        found = run(settings, range(4))
        one = alerts.get_alert(settings, found[0]["id"])
        assert one["state"] == "firing" and one["deliveries"] == [] and hook.bodies == []
        silenced = [e for e in one["history"] if e["kind"] == "silenced"]
        assert len(silenced) == 1 and f"silence #{silence['id']} by ana" in silenced[0]["detail"]
        assert "load test" in silenced[0]["detail"] and silenced[0]["actor"] == "ana"
        assert any(e["kind"] == "silenced" for e in alerts.timeline(settings, T0, T0 + 600))


def test_a_silence_needs_matchers_author_comment_and_an_end(any_workspace: Settings) -> None:
    good = {"matchers": {"rule": "cpu"}, "author": "ana", "comment": "maintenance", "ends_at": T0 + 60}
    for field, bad, reason in (("matchers", {}, "matchers"), ("author", " ", "author"),
                               ("comment", "", "comment"), ("ends_at", T0 - 1, "in the future")):
        with pytest.raises(BadInputError, match=reason):
            alerts.create_silence(any_workspace, **{**good, field: bad}, actor=OPERATOR, now=T0)
    with pytest.raises(PermissionDenied):
        alerts.create_silence(any_workspace, **good, actor=VIEWER, now=T0)
    with pytest.raises(BadInputError, match="key=value"):
        alerts.parse_matchers(["rule"])


@pytest.mark.parametrize("acknowledged", [False, True])
def test_an_unacknowledged_alert_escalates_after_t(any_workspace: Settings, acknowledged: bool) -> None:
    with http_receiver() as first, http_receiver() as second:
        settings = slow_settings(any_workspace, alert_escalate_after_seconds=180, alert_channels={
            "first": {"type": "webhook", "url": first.url}, "second": {"type": "webhook", "url": second.url}},
            alert_routes=[{"matchers": {"rule": "p95_latency"}, "channels": ["first", "second"]}])
        log_minutes(settings, {m: 8000 for m in range(9)})
        found = run(settings, range(3))  # fires at the third evaluation, delivered to the first channel
        assert found[0]["state"] == "firing" and len(first.bodies) == 1 and second.bodies == []
        if acknowledged:
            alerts.acknowledge(settings, found[0]["id"], actor=OPERATOR, now=T0 + 4 * 60)
        run(settings, range(3, 9))
        one = alerts.get_alert(settings, found[0]["id"])
        if acknowledged:
            assert second.bodies == [] and one["escalation_level"] == 0
            assert one["acknowledged_by"] == str(OPERATOR) and one["acknowledged_at"] == T0 + 4 * 60
        else:
            assert [b["action"] for b in second.bodies] == ["escalate"]
            assert second.bodies[0]["alert"]["id"] == found[0]["id"] and one["escalation_level"] == 1
            assert any(e["kind"] == "escalated" and "not acknowledged" in e["detail"] for e in one["history"])


def test_a_rule_firing_n_times_within_the_window_starts_at_the_next_channel(any_workspace: Settings) -> None:
    with http_receiver() as first, http_receiver() as second:
        settings = slow_settings(any_workspace, alert_escalate_count=2, alert_channels={
            "first": {"type": "webhook", "url": first.url}, "second": {"type": "webhook", "url": second.url}},
            alert_routes=[{"matchers": {"rule": "p95_latency"}, "channels": ["first", "second"]}])
        log_minutes(settings, {0: 8000, 1: 8000, 2: 8000, 3: 20, 4: 8000, 5: 8000, 6: 8000})
        run(settings, range(7))
        assert [b["action"] for b in first.bodies] == ["trigger", "resolve"]  # the first episode
        assert [b["action"] for b in second.bodies] == ["trigger"]  # the second starts one level up
        assert second.bodies[0]["alert"]["id"] != first.bodies[0]["alert"]["id"]


def test_a_webhook_answering_500_twice_then_200_is_delivered_once_with_three_attempts(any_workspace: Settings) -> None:
    waits: list[float] = []
    with http_receiver(500, 500, 200) as hook:
        settings = slow_settings(any_workspace, alert_delivery_backoff_seconds=2,
                                 alert_channels={"hook": {"type": "webhook", "url": hook.url}},
                                 alert_routes=[{"matchers": {"rule": "p95_latency"}, "channels": ["hook"]}])
        log_minutes(settings, {m: 8000 for m in range(4)})
        for minute in range(4):
            alerts.evaluate(settings, now=T0 + (minute + 1) * 60, sleep=waits.append)
        found = [a for a in alerts.list_alerts(settings) if a["rule"] == "p95_latency"]
        one = alerts.get_alert(settings, found[0]["id"])
    assert [(d["attempt"], d["ok"], d["answer"]) for d in one["deliveries"]] == [
        (1, False, "HTTP 500"), (2, False, "HTTP 500"), (3, True, "HTTP 200")]
    assert waits == [2, 4] and len(hook.bodies) == 3
    assert [e["kind"] for e in one["history"]].count("delivered") == 1


def test_webhook_slack_pagerduty_and_email_bodies(any_workspace: Settings) -> None:
    with http_receiver() as hook, http_receiver() as slack, http_receiver() as pager, smtp_receiver() as smtp:
        settings = slow_settings(any_workspace, alert_channels={
            "hook": {"type": "webhook", "url": hook.url}, "slack": {"type": "slack", "url_env": "SLACK_HOOK_URL"},
            "pager": {"type": "pagerduty", "url": pager.url, "routing_key": "R0UT1NG", "source": "opscore-test"},
            "mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "sender": "ops@example.org",
                     "to": ["oncall@example.org"]}},
            alert_routes=[{"matchers": {"rule": "p95_latency"}, "channels": ["hook"]},
                          {"matchers": {"rule": "slow_slack"}, "channels": ["slack"]},
                          {"matchers": {"rule": "slow_pager"}, "channels": ["pager"]},
                          {"matchers": {"rule": "slow_mail"}, "channels": ["mail"]}],
            alert_rules=[SLOW_RULE, *({**SLOW_RULE, "name": n} for n in ("slow_slack", "slow_pager", "slow_mail"))])
        import os
        os.environ["SLACK_HOOK_URL"] = slack.url
        try:
            log_minutes(settings, {0: 8000, 1: 8000, 2: 8000, 3: 20})
            for minute in range(4):
                alerts.evaluate(settings, now=T0 + (minute + 1) * 60, sleep=lambda _s: None)
        finally:
            del os.environ["SLACK_HOOK_URL"]
        fired = {a["rule"]: a for a in alerts.list_alerts(settings)}

    trigger = hook.bodies[0]
    assert trigger["action"] == "trigger" and [b["action"] for b in hook.bodies] == ["trigger", "resolve"]
    assert trigger["alert"]["rule"] == "p95_latency" and trigger["alert"]["severity"] == "warning"
    assert trigger["alert"]["labels"] == {"version": "v1"} and trigger["alert"]["id"] == fired["p95_latency"]["id"]
    assert trigger["alert"]["summary"].startswith("p95 of v1 is ")

    assert set(slack.bodies[0]) == {"text", "blocks"} and "slow_slack" in slack.bodies[0]["text"]
    assert slack.bodies[0]["blocks"][1]["fields"] == [{"type": "mrkdwn", "text": "*version*\nv1"}]

    pd_trigger, pd_resolve = pager.bodies
    assert pd_trigger["routing_key"] == "R0UT1NG" and pd_trigger["event_action"] == "trigger"
    assert pd_trigger["dedup_key"] == fired["slow_pager"]["fingerprint"] == pd_resolve["dedup_key"]
    payload = pd_trigger["payload"]
    assert payload["source"] == "opscore-test" and payload["severity"] == "warning"
    assert payload["summary"] == trigger["alert"]["summary"]
    assert payload["timestamp"].startswith("2027-01-15T") and payload["custom_details"]["rule"] == "slow_pager"
    assert pd_resolve == {"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": pd_trigger["dedup_key"]}

    mail = smtp.messages[0]
    assert mail["from"] == "ops@example.org" and mail["to"] == ["oncall@example.org"]
    assert mail["message"]["Subject"].startswith("[opscore warning] trigger: p95 of v1")
    assert "slow_mail" in mail["message"].get_payload() and len(smtp.messages) == 2


def test_a_critical_alert_inhibits_the_warning_of_the_same_rule(any_workspace: Settings) -> None:
    with http_receiver() as hook:
        settings = slow_settings(any_workspace, alert_channels={"hook": {"type": "webhook", "url": hook.url}},
                                 alert_routes=[{"matchers": {"rule": "p95_latency"}, "channels": ["hook"]}])
        settings = replace(settings, alert_rules=[SLOW_RULE, {**SLOW_RULE, "severity": "critical",
                                                               "expr": "p95_latency_ms > 10000"}])
        log_minutes(settings, {m: 12000 for m in range(4)})
        found = run(settings, range(4))
    by_severity = {a["severity"]: a for a in found}
    assert {b["alert"]["severity"] for b in hook.bodies} == {"critical"}
    warning = alerts.get_alert(settings, by_severity["warning"]["id"])
    assert warning["state"] == "firing" and [e["kind"] for e in warning["history"]].count("inhibited") == 1


def test_acknowledging_needs_an_operator(any_workspace: Settings) -> None:
    settings = slow_settings(any_workspace)
    log_minutes(settings, {m: 8000 for m in range(3)})
    found = run(settings, range(3))
    with pytest.raises(PermissionDenied):
        alerts.acknowledge(settings, found[0]["id"], actor=VIEWER)
    assert alerts.get_alert(settings, found[0]["id"])["acknowledged_at"] is None
    assert json.dumps(alerts.list_alerts(settings))  # every field JSON-ready
