"""The named values alert rules read, each over a lookback window ending now.

Every signal is cheap at any traffic: latency, errors and throughput come from the per-minute
rollups (one read per window for all of them, however many rules ask), refusals from their
per-minute counts, host figures from psutil, accuracy from the newest labelled predictions only (a
bounded number, read once for every accuracy rule), dataset drift and
data quality of production's traffic from the feature rollups (one read per window, shared by the
drift and quality signals alike). A signal answers one value per label set (``version`` for traffic
signals, ``version`` and ``column`` for data quality, ``host`` for host signals), or nothing when
there is nothing to measure; a rule over a signal with nothing to measure is in no-data. Fewer than
``alert_min_rows`` logged rows in the window is nothing to measure for drift and data quality: a
handful of requests is not a distribution.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
from sqlalchemy import func, select

from opscore.config import Settings
from opscore.exceptions import OpscoreError
from opscore.models import registry
from opscore.models.leases import this_host
from opscore.monitoring.accuracy import MIN_LABELS, PRIMARY, class_key
from opscore.monitoring.data_quality import QualityReport, data_quality
from opscore.monitoring.live_drift import LiveDriftReport, live_drift
from opscore.serving.feature_rollups import WindowSums, sums_by_window
from opscore.serving.telemetry_queries import window_percentiles_by_version
from opscore.store import Store, open_store, predictions, refusals

Series = list[tuple[dict[str, str], float]]


@dataclass
class SignalContext:
    """What one evaluation reads signals with; reads are shared between rules of the same window."""

    settings: Settings
    now: float
    # The serving process's count of dropped telemetry records (None outside ``opscore serve``).
    telemetry_dropped: Callable[[], int] | None = None
    # The longest window any rule reads each signal over, so one read can serve the shorter ones.
    horizons: dict[str, float] = field(default_factory=dict)
    _cache: dict[tuple[str, float], Any] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return open_store(self.settings)

    def once(self, key: str, window: float, compute: Callable[[], Any]) -> Any:
        if (key, window) not in self._cache:
            self._cache[(key, window)] = compute()
        return self._cache[(key, window)]


def _traffic(ctx: SignalContext, window: float) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Per version: rollup figures of API traffic and refused requests in the window."""
    def read() -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        start = ctx.now - window
        _, per_version = window_percentiles_by_version(ctx.store, start, ctx.now, source="api")
        query = (select(refusals.c.version_id, func.sum(refusals.c.count))
                 .where(refusals.c.minute >= math.floor(start / 60), refusals.c.minute < math.ceil(ctx.now / 60),
                        refusals.c.source == "api")
                 .group_by(refusals.c.version_id))
        with ctx.store.read() as conn:
            refused = {version: int(count) for version, count in conn.execute(query)}
        return per_version, refused
    return ctx.once("traffic", window, read)


def _per_version(figure: str) -> Callable[[SignalContext, float], Series]:
    def signal(ctx: SignalContext, window: float) -> Series:
        per_version, _ = _traffic(ctx, window)
        return [({"version": v}, float(f[figure])) for v, f in per_version.items() if f["count"] and f[figure] is not None]
    return signal


def error_rate(ctx: SignalContext, window: float) -> Series:
    """Failed plus refused requests over all requests (answered and refused), per version."""
    per_version, refused = _traffic(ctx, window)
    out: Series = []
    for version in sorted(set(per_version) | set(refused)):
        answered = per_version.get(version, {"count": 0, "errors": 0})
        total = answered["count"] + refused.get(version, 0)
        if total:
            out.append(({"version": version}, (answered["errors"] + refused.get(version, 0)) / total))
    return out


def requests_per_minute(ctx: SignalContext, window: float) -> Series:
    per_version, _ = _traffic(ctx, window)
    return [({"version": v}, f["count"] / (window / 60)) for v, f in per_version.items()]


_cpu_primed = False


def _cpu_since_last_call() -> float:
    global _cpu_primed
    if _cpu_primed:
        return psutil.cpu_percent(interval=None)
    _cpu_primed = True
    return psutil.cpu_percent(interval=0.1)


def cpu_percent(ctx: SignalContext, window: float) -> Series:
    """Host CPU since the previous call in this process (the first call measures a tenth of a second),
    so an evaluator every 30 s reads the last 30 s without waiting for it."""
    return [({"host": this_host()}, float(ctx.once("cpu", 0, _cpu_since_last_call)))]


def memory_percent(ctx: SignalContext, window: float) -> Series:
    return [({"host": this_host()}, float(psutil.virtual_memory().percent))]


def telemetry_dropped(ctx: SignalContext, window: float) -> Series:
    """Records this serving process's telemetry writer dropped since it started."""
    return [] if ctx.telemetry_dropped is None else [({"host": this_host()}, float(ctx.telemetry_dropped()))]


def _newest_labelled(ctx: SignalContext, version: str, task: str, window: float) -> list[tuple[float, Any, Any]]:
    """(at, prediction, label) of the newest ``alert_accuracy_rows`` labelled predictions of ``version`` in the
    window; for classification both as class keys, so "1" and 1.0 are the same class.

    One read serves every accuracy rule of an evaluation: the newest rows of the longest window,
    cut to a shorter one, are that window's newest rows too.
    """
    horizon = max(window, ctx.horizons.get("accuracy_drop", 0.0))

    def read() -> list[tuple[float, Any, Any]]:
        query = (select(predictions.c.at, predictions.c.prediction, predictions.c.label)
                 .where(predictions.c.version_id == version, predictions.c.at >= ctx.now - horizon,
                        predictions.c.at < ctx.now, predictions.c.label.is_not(None), predictions.c.status == "ok")
                 .order_by(predictions.c.at.desc()).limit(ctx.settings.alert_accuracy_rows))
        with ctx.store.read() as conn:
            rows = [(at, json.loads(p), json.loads(label)) for at, p, label in conn.execute(query)]
        if task == "classification":
            return [(at, class_key(p), class_key(label)) for at, p, label in rows]
        return rows
    rows = ctx.once(f"labelled:{version}", horizon, read)
    return [row for row in rows if row[0] >= ctx.now - window][: ctx.settings.alert_accuracy_rows]


def accuracy_drop(ctx: SignalContext, window: float) -> Series:
    """How far production's primary metric on its newest labelled traffic in the window (at most
    ``alert_accuracy_rows`` predictions) fell below its holdout: accuracy points, or for regression the
    mean absolute error's rise as a share of the holdout's. Fewer than 30 labels is no data."""
    version = _production(ctx)
    if version is None:
        return []
    info = ctx.once(f"version:{version}", 0, lambda: registry.get_version(ctx.store, version))
    metric = PRIMARY[info.task]
    base = info.metrics.get(metric)
    rows = _newest_labelled(ctx, version, info.task, window)
    if base is None or len(rows) < MIN_LABELS:
        return []
    if info.task == "classification":
        value = sum(p == label for _, p, label in rows) / len(rows)
        return [({"version": version}, float(base - value))]
    errors = [abs(float(p) - float(label)) for _, p, label in rows if p is not None and label is not None]
    if len(errors) < MIN_LABELS or not base:
        return []
    return [({"version": version}, float((sum(errors) / len(errors) - base) / base))]


def _production(ctx: SignalContext) -> str | None:
    return ctx.once("production", 0, lambda: registry.alias_target(ctx.store, "production"))


def _sums(ctx: SignalContext, version: str, window: float) -> WindowSums:
    """The feature rollups of ``version`` over the window, read once for drift and data quality alike."""
    return ctx.once(f"sums:{version}", window, lambda: sums_by_window(
        ctx.store, version, ctx.now - window, ctx.now, window, "api")[0])


def _live_drift(ctx: SignalContext, window: float) -> LiveDriftReport | None:
    """Production's live drift over the window, or None when there is no production or too little traffic."""
    def read() -> LiveDriftReport | None:
        version = _production(ctx)
        if version is None:
            return None
        try:
            report = live_drift(ctx.settings, ctx.now - window, ctx.now, version, sums=_sums(ctx, version, window))
        except OpscoreError:  # a version without a reference profile has nothing to compare against
            return None
        return report if report.rows >= ctx.settings.alert_min_rows else None
    return ctx.once("drift", window, read)


def _quality(ctx: SignalContext, window: float) -> QualityReport | None:
    """Production's data quality over the window, or None when there is no production or too little traffic."""
    def read() -> QualityReport | None:
        version = _production(ctx)
        if version is None:
            return None
        try:
            report = data_quality(ctx.settings, ctx.now - window, ctx.now, version, sums=_sums(ctx, version, window))
        except OpscoreError:
            return None
        return report if report.rows >= ctx.settings.alert_min_rows else None
    return ctx.once("quality", window, read)


def dataset_drift_share(ctx: SignalContext, window: float) -> Series:
    """The share of production's columns whose live traffic drifted from the reference over the window."""
    report = _live_drift(ctx, window)
    return [] if report is None else [({"version": report.version}, float(report.report.drift_share))]


def _per_column(share: str) -> Callable[[SignalContext, float], Series]:
    def signal(ctx: SignalContext, window: float) -> Series:
        report = _quality(ctx, window)
        if report is None:
            return []
        return [({"version": report.version, "column": name}, float(getattr(quality, share)))
                for name, quality in report.columns.items() if quality.rows]
    signal.__doc__ = f"Per column of production's logged rows in the window: {share.replace('_', ' ')}."
    return signal


SIGNALS: dict[str, Callable[[SignalContext, float], Series]] = {
    "p95_latency_ms": _per_version("p95_ms"),
    "avg_latency_ms": _per_version("mean_ms"),
    "error_rate": error_rate,
    "requests_per_minute": requests_per_minute,
    "telemetry_dropped": telemetry_dropped,
    "cpu_percent": cpu_percent,
    "memory_percent": memory_percent,
    "accuracy_drop": accuracy_drop,
    "dataset_drift_share": dataset_drift_share,
    "missing_share": _per_column("missing_share"),
    "outlier_share": _per_column("outlier_share"),
}
