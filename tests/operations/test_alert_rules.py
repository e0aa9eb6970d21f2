"""Rules are parsed, never evaluated as code; a bad rule is refused with its reason."""

from __future__ import annotations

import pytest

from opscore.access.actors import Actor
from opscore.config import Settings, load_settings
from opscore.exceptions import BadInputError, PermissionDenied
from opscore.operations.alert_rules import (
    DEFAULT_RULES,
    configured_rules,
    parse_duration,
    parse_rule,
    set_rule,
)
from tests.conftest import OPERATOR


def test_the_defaults_are_the_original_designs_thresholds(workspace: Settings) -> None:
    rules = {(r.name, r.severity): r for r in configured_rules(workspace)}
    assert len(rules) == len(DEFAULT_RULES)
    assert rules[("p95_latency", "warning")].threshold == 5000 and rules[("p95_latency", "critical")].threshold == 10000
    assert rules[("error_rate", "warning")].threshold == 0.05 and rules[("error_rate", "critical")].threshold == 0.10
    assert (rules[("cpu", "warning")].threshold, rules[("cpu", "critical")].threshold) == (80, 90)
    assert (rules[("memory", "warning")].threshold, rules[("memory", "critical")].threshold) == (85, 95)
    assert rules[("average_latency", "warning")].expression == "avg_latency_ms > 1000"
    assert rules[("accuracy_drop", "warning")].threshold == 0.05
    assert rules[("telemetry_dropped", "critical")].expression == "telemetry_dropped > 0"


def test_a_rule_reads_signal_operator_threshold_and_durations() -> None:
    rule = parse_rule({"name": "slow", "expr": " p95_latency_ms >= 2.5e3 ", "for": "2m", "keep_firing_for": "90s",
                       "window": "1h", "labels": {"team": "risk"}, "summary": "{version} at {value} ms ({team})"})
    assert (rule.signal, rule.comparison, rule.threshold) == ("p95_latency_ms", ">=", 2500)
    assert (rule.for_seconds, rule.keep_firing_for_seconds, rule.window_seconds) == (120, 90, 3600)
    assert rule.breached(2500) and not rule.breached(2499)
    assert rule.describe(2600, {"version": "v1", "team": "risk"}) == "v1 at 2600 ms (risk)"
    assert parse_duration(30, "x") == 30 and parse_duration("1d", "x") == 86400


@pytest.mark.parametrize(("change", "reason"), [
    ({"expr": "latency_p42 > 5"}, "unknown signal 'latency_p42'"),
    ({"expr": "p95_latency_ms => 5"}, "bad operator '=>'"),
    ({"expr": "__import__('os').system('true') > 1"}, "expr must read 'signal op number'"),
    ({"for": "two minutes"}, "for: expected a duration"),
    ({"keep_firing_for": "-5s"}, "keep_firing_for: expected a duration"),
    ({"window": "10s"}, "window must be at least 1m"),
    ({"severity": "page"}, "severity must be warning or critical"),
    ({"summary": "{host_name} is slow"}, "unknown placeholder"),
    ({"name": "Bad Name"}, "use lower-case letters"),
    ({"threshold": 5}, "unknown field"),
])
def test_a_bad_rule_is_refused_with_the_reason(change: dict, reason: str) -> None:
    with pytest.raises(BadInputError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_rule({"name": "slow", "expr": "p95_latency_ms > 5000", **change})


def test_rules_from_opscore_toml_replace_a_default_of_the_same_name_and_severity(workspace: Settings) -> None:
    (workspace.workspace / "opscore.toml").write_text(
        '[[alert_rules]]\nname = "p95_latency"\nexpr = "p95_latency_ms > 800"\nseverity = "warning"\nfor = "1m"\n'
        '[[alert_rules]]\nname = "quiet"\nexpr = "requests_per_minute < 1"\n')
    rules = {(r.name, r.severity): r for r in configured_rules(load_settings())}
    assert rules[("p95_latency", "warning")].threshold == 800 and ("quiet", "warning") in rules
    assert len(rules) == len(DEFAULT_RULES) + 1


def test_an_operator_sets_a_rule_a_viewer_cannot(any_workspace: Settings) -> None:
    with pytest.raises(PermissionDenied):
        set_rule(any_workspace, {"name": "cpu", "expr": "cpu_percent > 70"}, actor=Actor("v", "viewer", "dashboard"))
    with pytest.raises(BadInputError, match="unknown signal"):
        set_rule(any_workspace, {"name": "cpu", "expr": "gpu_percent > 70"}, actor=OPERATOR)
    set_rule(any_workspace, {"name": "cpu", "expr": "cpu_percent > 70", "for": "5m"}, actor=OPERATOR)
    rules = {(r.name, r.severity): r for r in configured_rules(any_workspace)}
    assert rules[("cpu", "warning")].threshold == 70 and rules[("cpu", "warning")].for_seconds == 300
    assert rules[("cpu", "critical")].threshold == 90
