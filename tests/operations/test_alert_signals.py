"""Signals read the rollups: checked against numpy on the latencies that were logged."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from opscore.config import Settings
from opscore.operations.alert_signals import SIGNALS, SignalContext
from opscore.serving.predictor import request_records
from opscore.serving.telemetry_writer import TelemetryWriter

T0 = 1_800_000_000.0


def test_latency_error_and_throughput_signals_per_version(any_workspace: Settings) -> None:
    rng = np.random.default_rng(3)
    latencies = {"v1": rng.lognormal(4, 0.6, 300), "v2": rng.lognormal(6, 0.3, 120)}
    writer = TelemetryWriter(any_workspace).start()
    for version, values in latencies.items():
        for i, latency in enumerate(values):
            failed = "boom" if version == "v2" and i % 10 == 0 else None
            writer.submit_many(request_records(version, [{"a": 1}], None, source="api", latency_ms=float(latency),
                                               request_ids=[uuid.uuid4().hex], at=T0 + i % 290, error=failed))
    for _ in range(30):
        writer.count_refusal("v2", "invalid_rows", at=T0 + 5)
    assert writer.close()
    ctx = SignalContext(any_workspace, T0 + 300)

    def read(name: str) -> dict[str, float]:
        return {labels["version"]: value for labels, value in SIGNALS[name](ctx, 300)}

    p95, mean = read("p95_latency_ms"), read("avg_latency_ms")
    for version, values in latencies.items():
        assert p95[version] == pytest.approx(np.percentile(values, 95), rel=0.04)
        assert mean[version] == pytest.approx(values.mean(), rel=1e-9)
    assert read("error_rate") == pytest.approx({"v1": 0.0, "v2": (12 + 30) / (120 + 30)})
    assert read("requests_per_minute") == pytest.approx({"v1": 60.0, "v2": 24.0})
    assert SignalContext(any_workspace, T0 + 3600).once("x", 1, lambda: 1) == 1
    assert SIGNALS["p95_latency_ms"](SignalContext(any_workspace, T0 + 7200), 300) == []  # nothing to measure


def test_host_and_telemetry_signals(workspace: Settings) -> None:
    ctx = SignalContext(workspace, T0, telemetry_dropped=lambda: 7)
    [(_, cpu)] = SIGNALS["cpu_percent"](ctx, 60)
    [(_, memory)] = SIGNALS["memory_percent"](ctx, 60)
    assert 0 <= cpu <= 100 and 0 < memory <= 100
    assert SIGNALS["telemetry_dropped"](ctx, 60)[0][1] == 7
    assert SIGNALS["telemetry_dropped"](SignalContext(workspace, T0), 60) == []
    assert SIGNALS["accuracy_drop"](ctx, 86400) == []  # no production version yet
