"""Capacity planning reads a planted pattern and growth back from the rollups, and sizes replicas by the queue rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opscore.operations.capacity import (
    P95_FACTOR,
    ServiceTime,
    measure_service_time,
    plan_capacity,
    replicas_for,
)
from opscore.operations.linear_trend import fit_line
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter

DAY, HOUR = 86_400.0, 3_600.0
MONDAY = 1_788_134_400.0  # Monday 2026-08-31 00:00 UTC
DAYS = 14


def planted_requests(day: int, hour: int) -> int:
    """Growth of one request per hour per day, and a 9:00 rush on weekdays."""
    return 1 + day // 2 + (6 if hour == 9 and day % 7 < 5 else 0)


@pytest.fixture
def traffic(workspace):
    writer = TelemetryWriter(workspace).start()
    for day in range(DAYS):
        for hour in range(24):
            start = MONDAY + day * DAY + hour * HOUR
            writer.submit_many(
                PredictionRecord(f"{day}-{hour}-{i}", start + i, "v1", "api", 5.0, "ok", {"age": 1}, 0, 0.1)
                for i in range(planted_requests(day, hour)))
    assert writer.close()
    return workspace


SERVICE = ServiceTime("v1", 1, 0.010, 1)


def test_the_planted_pattern_peak_and_growth_are_read_back(traffic):
    plan = plan_capacity(traffic, window_days=DAYS, horizon_days=30, now=MONDAY + DAYS * DAY, service=SERVICE)
    monday_nine = np.mean([planted_requests(d, 9) for d in (0, 7)])
    assert plan.pattern.loc["Monday", 9] == pytest.approx(monday_nine)
    assert plan.pattern.loc["Sunday", 9] == pytest.approx(np.mean([planted_requests(d, 9) for d in (6, 13)]))
    total = sum(planted_requests(d, h) for d in range(DAYS) for h in range(24))
    assert plan.mean_rps == pytest.approx(total / (DAYS * DAY))
    assert plan.peak_rps == pytest.approx(planted_requests(11, 9) / HOUR)
    daily = [sum(planted_requests(d, h) for h in range(24)) for d in range(DAYS)]
    assert plan.daily["requests"].tolist() == daily
    fit = fit_line(np.arange(DAYS) + MONDAY / DAY, np.array(daily, dtype=float))
    fitted, low, high = fit.predict(MONDAY / DAY + DAYS - 1 + 30)
    last = plan.projection.iloc[-1]
    assert (last["requests"], last["low"], last["high"]) == pytest.approx((fitted, low, high))
    assert plan.projected_peak_rps == pytest.approx(fitted / DAY * plan.peak_to_mean)


def test_replicas_follow_the_mm1_p95_rule():
    # S = 10 ms, target 100 ms: p95 = S ln20 / (1 - rho) <= 100 ms  =>  rho <= 1 - 0.1 ln20.
    max_load, replicas = replicas_for(50.0, SERVICE, 100.0)
    assert max_load == pytest.approx(1 - 0.01 * P95_FACTOR / 0.1)
    assert replicas == math.ceil(50 * 0.01 / max_load)
    # p95 of an exponential response time with mean S/(1-rho): check the rule at the load it allows.
    rng = np.random.default_rng(0)
    response = rng.exponential(SERVICE.seconds / (1 - max_load), size=200_000)
    assert np.quantile(response, 0.95) == pytest.approx(0.1, rel=0.02)
    assert replicas_for(50.0, ServiceTime("v1", 1, 0.05, 1), 100.0) == (None, None)


def test_the_service_time_is_measured_on_production(trained):
    service = measure_service_time(trained, rows=4, repeats=3)
    assert service.version_id == "v1" and service.rows == 4 and service.seconds > 0


def test_no_traffic_says_so(workspace):
    plan = plan_capacity(workspace, now=MONDAY)
    assert plan.replicas_needed is None and "no API traffic" in plan.notes[0]
