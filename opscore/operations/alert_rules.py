"""Alert rules: ``signal op threshold`` held for a while, with a severity, labels and a summary.

A rule's condition is parsed by a regular expression into a signal name, a comparison and a number;
it is never evaluated as code. A rule that names an unknown signal, a comparison other than
``> >= < <= == !=``, a duration that is not ``30s``/``2m``/``1h``, a severity other than warning or
critical, or a summary placeholder other than ``{value}``, ``{threshold}``, ``{signal}`` or a label is
refused with the reason. The defaults are the original design's thresholds; ``[[alert_rules]]`` in
``opscore.toml`` and rules an operator sets on the Alerts page replace one of the same name and
severity or add to them.
"""

from __future__ import annotations

import json
import operator
import re
import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.operations.alert_signals import SIGNALS
from opscore.store import alert_rule_overrides, open_store

SEVERITIES = ("warning", "critical")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_LABEL = re.compile(r"^[a-z_][a-z0-9_]*$")


def parse_duration(raw: object, what: str) -> float:
    """Seconds in ``raw`` (a number of seconds, or ``30s``, ``2m``, ``1h``, ``1d``)."""
    if isinstance(raw, bool):
        raise BadInputError(f"{what}: expected a duration like 30s, 2m or 1h, got {raw!r}")
    if isinstance(raw, int | float):
        seconds = float(raw)
    else:
        match = _DURATION.match(str(raw))
        if match is None:
            raise BadInputError(f"{what}: expected a duration like 30s, 2m or 1h, got {raw!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise BadInputError(f"{what}: a duration cannot be negative, got {raw!r}")
    return seconds


@dataclass(frozen=True)
class AlertRule:
    """One rule; ``name`` and ``severity`` together identify it (a critical one mutes its warning)."""

    name: str
    signal: str
    comparison: str
    threshold: float
    severity: str = "warning"
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    window_seconds: float = 300.0
    labels: dict[str, str] = field(default_factory=dict)
    summary: str = "{signal} is {value} ({comparison} {threshold})"

    @property
    def expression(self) -> str:
        return f"{self.signal} {self.comparison} {self.threshold:g}"

    def breached(self, value: float) -> bool:
        return COMPARISONS[self.comparison](value, self.threshold)

    def describe(self, value: float | None, labels: dict[str, str]) -> str:
        shown = "no data" if value is None else f"{value:.4g}"
        return self.summary.format_map(_Blank({**labels, "signal": self.signal, "value": shown,
                                        "threshold": f"{self.threshold:g}", "comparison": self.comparison}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expr": self.expression, "severity": self.severity, "for": self.for_seconds,
                "keep_firing_for": self.keep_firing_for_seconds, "window": self.window_seconds,
                "labels": dict(self.labels), "summary": self.summary}


class _Blank(dict):
    """Template values where a label the series lacks (``version`` of a host signal) reads as "-"."""

    def __missing__(self, key: str) -> str:
        return "-"


def parse_rule(raw: dict[str, Any]) -> AlertRule:
    """A rule from its table (``name``, ``expr``, ``severity``, ``for``, ``keep_firing_for``, ``window``,
    ``labels``, ``summary``), or BadInputError naming what is wrong."""
    if not isinstance(raw, dict):
        raise BadInputError(f"an alert rule must be a table, got {raw!r}")
    name = str(raw.get("name", "")).strip()
    if not name or not _LABEL.match(name):
        raise BadInputError(f"alert rule name {name!r}: use lower-case letters, digits and _ (e.g. p95_latency)")
    where = f"alert rule {name!r}"
    unknown = set(raw) - {"name", "expr", "severity", "for", "keep_firing_for", "window", "labels", "summary"}
    if unknown:
        raise BadInputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    expr = str(raw.get("expr", ""))
    match = _CONDITION.match(expr)
    if match is None:
        operators = re.search(r"[<>=!]+", expr)
        if operators and operators.group(0) not in COMPARISONS:
            raise BadInputError(f"{where}: bad operator {operators.group(0)!r} in {expr!r}; "
                                f"use one of {' '.join(COMPARISONS)}")
        raise BadInputError(f"{where}: expr must read 'signal op number', e.g. 'p95_latency_ms > 5000', got {expr!r}")
    signal, comparison, threshold = match.group(1), match.group(2), float(match.group(3))
    if signal not in SIGNALS:
        raise BadInputError(f"{where}: unknown signal {signal!r}; known: {', '.join(sorted(SIGNALS))}")
    severity = str(raw.get("severity", "warning"))
    if severity not in SEVERITIES:
        raise BadInputError(f"{where}: severity must be warning or critical, got {severity!r}")
    labels = raw.get("labels", {}) or {}
    if not isinstance(labels, dict) or not all(_LABEL.match(str(k)) for k in labels):
        raise BadInputError(f"{where}: labels must be a table of lower-case names to values, got {labels!r}")
    window = parse_duration(raw.get("window", "5m"), f"{where}: window")
    if window < 60:
        raise BadInputError(f"{where}: window must be at least 1m (signals are read per minute), got {raw.get('window')!r}")
    rule = AlertRule(name=name, signal=signal, comparison=comparison, threshold=threshold, severity=severity,
                     for_seconds=parse_duration(raw.get("for", 0), f"{where}: for"),
                     keep_firing_for_seconds=parse_duration(raw.get("keep_firing_for", 0), f"{where}: keep_firing_for"),
                     window_seconds=window, labels={str(k): str(v) for k, v in labels.items()},
                     summary=str(raw.get("summary", AlertRule.summary)))
    _check_summary(rule, where)
    return rule


def _check_summary(rule: AlertRule, where: str) -> None:
    allowed = {"signal", "value", "threshold", "comparison", "version", "column", *rule.labels}
    try:
        fields_used = {f for _, f, _, _ in string.Formatter().parse(rule.summary) if f is not None}
    except ValueError as exc:
        raise BadInputError(f"{where}: summary is not a valid template ({exc})") from exc
    bad = fields_used - allowed
    if bad:
        raise BadInputError(f"{where}: summary names unknown placeholder(s) {', '.join(sorted(bad))}; "
                            f"use {', '.join('{' + a + '}' for a in sorted(allowed))}")


def _default(name: str, expr: str, severity: str, summary: str, **timing: str) -> dict[str, Any]:
    return {"name": name, "expr": expr, "severity": severity, "summary": summary, "for": "2m", **timing}


# The original design's thresholds.
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    _default("p95_latency", "p95_latency_ms > 5000", "warning", "p95 latency of {version} is {value} ms (> {threshold} ms)"),
    _default("p95_latency", "p95_latency_ms > 10000", "critical", "p95 latency of {version} is {value} ms (> {threshold} ms)"),
    _default("error_rate", "error_rate > 0.05", "warning", "{version} fails {value} of requests (> {threshold})"),
    _default("error_rate", "error_rate > 0.10", "critical", "{version} fails {value} of requests (> {threshold})"),
    _default("cpu", "cpu_percent > 80", "warning", "host CPU at {value} % (> {threshold} %)"),
    _default("cpu", "cpu_percent > 90", "critical", "host CPU at {value} % (> {threshold} %)"),
    _default("memory", "memory_percent > 85", "warning", "host memory at {value} % (> {threshold} %)"),
    _default("memory", "memory_percent > 95", "critical", "host memory at {value} % (> {threshold} %)"),
    _default("average_latency", "avg_latency_ms > 1000", "warning", "average latency of {version} is {value} ms (> {threshold} ms)"),
    _default("accuracy_drop", "accuracy_drop > 0.05", "warning",
             "accuracy of {version} on labelled traffic is {value} below its holdout (> {threshold})", window="1d"),
    _default("dataset_drift", "dataset_drift_share >= 0.5", "warning",
             "{value} of the columns of {version} drifted from the reference over the last hour (>= {threshold})",
             window="1h"),
    _default("missing_values", "missing_share > 0.05", "warning",
             "{column} of {version} is missing in {value} of the rows (> {threshold})", window="1h"),
    _default("outliers", "outlier_share > 0.10", "warning",
             "{column} of {version} has {value} outliers by the IQR rule (> {threshold})", window="1h"),
    _default("telemetry_dropped", "telemetry_dropped > 0", "critical",
             "the telemetry writer dropped {value} prediction records", **{"for": "0s"}),
)


def configured_rules(settings: Settings) -> list[AlertRule]:
    """Every rule in force: the defaults, then ``[[alert_rules]]``, then rules set on the Alerts page."""
    rules: dict[tuple[str, str], AlertRule] = {}
    for raw in [*DEFAULT_RULES, *settings.alert_rules]:
        rule = parse_rule(raw)
        rules[(rule.name, rule.severity)] = rule
    with open_store(settings).read() as conn:
        stored = conn.execute(select(alert_rule_overrides.c.definition)).scalars().all()
    for definition in stored:
        rule = parse_rule(json.loads(definition))
        rules[(rule.name, rule.severity)] = rule
    return list(rules.values())


def set_rule(settings: Settings, raw: dict[str, Any], *, actor: Actor, now: float | None = None) -> AlertRule:
    """Store a rule set by an operator (checked first; replaces one of the same name and severity)."""
    actor.require_operator("changing an alert rule")
    rule = parse_rule(raw)
    definition = {k: v for k, v in asdict(rule).items() if k in {"name", "severity", "labels", "summary"}}
    definition.update({"expr": rule.expression, "for": rule.for_seconds,
                       "keep_firing_for": rule.keep_firing_for_seconds, "window": rule.window_seconds})
    table = alert_rule_overrides
    with open_store(settings).write() as conn:
        conn.execute(delete(table).where(table.c.name == rule.name, table.c.severity == rule.severity))
        conn.execute(insert(table).values(name=rule.name, severity=rule.severity, definition=json.dumps(definition),
                                          updated_by=str(actor), updated_at=time.time() if now is None else now))
    return rule
