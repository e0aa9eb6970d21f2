"""The performance trend reads a week of planted daily latencies back from the rollups and finds the slope."""

from __future__ import annotations

import numpy as np
import pytest

from opscore.operations.procedures import get_procedure, no_checkpoint
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter

NOW = 1_790_000_000.0  # a fixed "now": the trend reads whole days before it
DAY = 86_400.0


def _plant_week(settings, latency_of_day):
    writer = TelemetryWriter(settings).start()
    today = NOW // DAY * DAY
    rng = np.random.default_rng(1)
    for back in range(7, 0, -1):
        start = today - back * DAY
        for i, jitter in enumerate(rng.uniform(0.8, 1.0, size=60)):
            at = start + 600 + i * 60
            writer.submit(PredictionRecord(f"d{back}-{i}", at, "v1", "api", latency_of_day(7 - back) * jitter,
                                           "ok", {"age": 30}, 0, 0.3))
    assert writer.close()


def _trend(settings):
    return get_procedure("performance_trend").run(settings, {"now": NOW}, no_checkpoint)


def test_a_planted_rising_p95_is_found_with_its_slope(workspace):
    _plant_week(workspace, lambda day: 50.0 + 10.0 * day)
    result = _trend(workspace)
    assert len(result.figures["days"]) == 7
    # p95 of uniform(0.8, 1.0) x latency is about 0.99 x latency: the slope is close to 10 ms/day.
    assert result.figures["slope_low"] > 0
    assert result.figures["slope_ms_per_day"] == pytest.approx(9.9, rel=0.06)
    assert result.findings and result.findings[0].follow_up_procedure == "capacity_planning"


def test_flat_latency_raises_no_finding(workspace):
    _plant_week(workspace, lambda day: 50.0)
    result = _trend(workspace)
    assert result.findings == [] and abs(result.figures["slope_ms_per_day"]) < 2


def test_too_few_days_says_so(workspace):
    result = _trend(workspace)
    assert result.findings == [] and "a trend needs 3" in result.recommendations[0]
