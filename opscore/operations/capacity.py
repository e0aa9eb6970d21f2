"""Capacity planning: when requests come, how they grow, and how many replicas keep p95 under target.

Everything comes from the workspace: requests per hour of API traffic from the latency rollups
(pattern by hour of day and weekday, peak hour against the mean), a straight line through requests
per day with its prediction interval (the growth projection and its band), and the service time of
one request, measured here by timing production's model on rows like its stored input example, at
the mean rows per request the rollups report, one native thread per call as in serving. That service
time gives the throughput of one replica; the replicas needed follow from an M/M/1 queue per
replica, whose p95 response time is ``S·ln(20)/(1-ρ)``: the load ρ a replica may carry is whatever
keeps that under the target.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opscore.config import Settings
from opscore.data.features import validate_records
from opscore.exceptions import BadInputError, NotFoundError
from opscore.models import artifacts, registry
from opscore.operations.linear_trend import fit_line
from opscore.serving.telemetry_queries import latency_series
from opscore.store import open_store

HOUR, DAY = 3_600.0, 86_400.0
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
P95_FACTOR = math.log(20)  # p95 of an exponential response time is ln(20) times its mean


@dataclass(frozen=True)
class ServiceTime:
    """How long production's model takes for one request of ``rows`` rows, measured on this host."""

    version_id: str
    rows: int
    seconds: float
    repeats: int

    @property
    def requests_per_second(self) -> float:
        """Throughput of one replica busy all the time (the ceiling, not a load to run at)."""
        return 1.0 / self.seconds


@dataclass
class CapacityPlan:
    """What the planning found; ``pattern`` is mean requests per hour, weekdays by hours of day (UTC)."""

    window_days: int
    horizon_days: int
    p95_target_ms: float
    pattern: pd.DataFrame
    daily: pd.DataFrame
    mean_rps: float
    peak_rps: float
    peak_at: float | None
    projection: pd.DataFrame = field(default_factory=pd.DataFrame)
    projected_peak_rps: float | None = None
    projected_peak_rps_high: float | None = None
    service: ServiceTime | None = None
    max_load_per_replica: float | None = None
    replicas_needed: int | None = None
    replicas_needed_high: int | None = None
    utilisation_at_peak: float | None = None
    host_load_per_core: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def peak_to_mean(self) -> float | None:
        return self.peak_rps / self.mean_rps if self.mean_rps else None

    def figures(self) -> dict[str, Any]:
        """The plan's numbers as plain JSON (a task result keeps these)."""
        return {
            "window_days": self.window_days, "horizon_days": self.horizon_days, "p95_target_ms": self.p95_target_ms,
            "mean_rps": self.mean_rps, "peak_rps": self.peak_rps, "peak_to_mean": self.peak_to_mean,
            "peak_at": self.peak_at, "projected_peak_rps": self.projected_peak_rps,
            "projected_peak_rps_high": self.projected_peak_rps_high,
            "service_seconds": self.service.seconds if self.service else None,
            "service_rows": self.service.rows if self.service else None,
            "replica_rps": self.service.requests_per_second if self.service else None,
            "max_load_per_replica": self.max_load_per_replica, "replicas_needed": self.replicas_needed,
            "replicas_needed_high": self.replicas_needed_high, "utilisation_at_peak": self.utilisation_at_peak,
            "host_load_per_core": self.host_load_per_core,
            # A weekday and hour the window never reached has no mean: None, not zero.
            "pattern": {day: [None if math.isnan(v) else float(v) for v in row] for day, row in self.pattern.iterrows()},
            "daily_requests": [{"day_start": float(r.day_start), "requests": int(r.requests)}
                               for r in self.daily.itertuples()],
            "notes": list(self.notes),
        }


def hourly_requests(settings: Settings, start: float, end: float, source: str = "api") -> pd.DataFrame:
    """Requests and rows per hour in [start, end), every hour present (zero when quiet)."""
    series = latency_series(open_store(settings), start, end, source=source, step_seconds=int(HOUR))
    summed = series.groupby("bucket_start")[["count", "rows"]].sum()
    hours = np.arange(start // HOUR * HOUR, end, HOUR)
    frame = summed.reindex(hours, fill_value=0).rename_axis("hour_start").reset_index()
    return frame.rename(columns={"count": "requests"})


def request_pattern(hourly: pd.DataFrame) -> pd.DataFrame:
    """Mean requests per hour by weekday (rows, Monday first) and hour of day (columns 0-23), UTC."""
    stamps = pd.to_datetime(hourly["hour_start"], unit="s", utc=True)
    table = (hourly.assign(weekday=stamps.dt.day_of_week, hour=stamps.dt.hour)
             .pivot_table(index="weekday", columns="hour", values="requests", aggfunc="mean"))
    table = table.reindex(index=range(7), columns=range(24))
    table.index = list(WEEKDAYS)
    return table


def measure_service_time(settings: Settings, rows: int, repeats: int = 15) -> ServiceTime:
    """Median time of one model call on ``rows`` rows like production's input example, one native thread."""
    from threadpoolctl import threadpool_limits

    store = open_store(settings)
    version_id = registry.alias_target(store, "production")
    if version_id is None:
        raise NotFoundError("nothing is in production, so there is no model to measure")
    info = registry.get_version(store, version_id)
    model = registry.load_version_model(settings, info)
    example = artifacts.read_document(settings.model_store_path, version_id, "input_example.json")
    frame = validate_records(info.feature_schema, example).frame
    batch = frame.sample(n=max(1, rows), replace=True, random_state=0).reset_index(drop=True)
    call = model.predict_proba if info.task == "classification" and hasattr(model, "predict_proba") else model.predict
    timings = []
    with threadpool_limits(limits=1):
        call(batch)  # the first call warms caches; serving has made it long before
        for _ in range(repeats):
            started = time.perf_counter()
            call(batch)
            timings.append(time.perf_counter() - started)
    return ServiceTime(version_id, max(1, rows), float(np.median(timings)), repeats)


def replicas_for(peak_rps: float, service: ServiceTime, p95_target_ms: float) -> tuple[float | None, int | None]:
    """The load one replica may carry with p95 under target (M/M/1), and the replicas for ``peak_rps``."""
    max_load = 1 - service.seconds * P95_FACTOR / (p95_target_ms / 1000)
    if max_load <= 0:
        return None, None
    return max_load, max(1, math.ceil(peak_rps * service.seconds / max_load))


def plan_capacity(settings: Settings, *, window_days: int = 28, horizon_days: int = 90, p95_target_ms: float = 200.0,
                  now: float | None = None, service: ServiceTime | None = None) -> CapacityPlan:
    """The capacity plan over the last ``window_days`` of API traffic, projected ``horizon_days`` ahead."""
    if window_days < 1 or horizon_days < 0 or p95_target_ms <= 0:
        raise BadInputError("window_days must be 1 or more, horizon_days 0 or more and p95_target_ms positive")
    now = time.time() if now is None else now
    # The hour under way counts too: a workspace that started serving today has only that.
    hourly = hourly_requests(settings, now - window_days * DAY, now)
    busy = hourly[hourly["requests"] > 0]
    if busy.empty:
        plan = CapacityPlan(window_days, horizon_days, p95_target_ms, request_pattern(hourly),
                            pd.DataFrame(columns=["day_start", "requests"]), 0.0, 0.0, None)
        plan.notes.append(f"no API traffic in the last {window_days} days: nothing to plan from")
        return plan
    hourly = hourly[hourly["hour_start"] >= busy["hour_start"].min() // DAY * DAY]
    daily = (hourly.assign(day_start=hourly["hour_start"] // DAY * DAY).groupby("day_start", as_index=False)
             ["requests"].sum())
    peak = hourly.loc[hourly["requests"].idxmax()]
    plan = CapacityPlan(window_days, horizon_days, p95_target_ms, request_pattern(hourly), daily,
                        mean_rps=float(hourly["requests"].sum() / (len(hourly) * HOUR)),
                        peak_rps=float(peak["requests"] / HOUR), peak_at=float(peak["hour_start"]))
    _project(plan, now)
    rows_per_request = float(hourly["rows"].sum() / max(1, hourly["requests"].sum()))
    plan.service = service or measure_service_time(settings, math.ceil(rows_per_request))
    plan.utilisation_at_peak = plan.peak_rps * plan.service.seconds
    target_peak = plan.projected_peak_rps if plan.projected_peak_rps is not None else plan.peak_rps
    plan.max_load_per_replica, plan.replicas_needed = replicas_for(target_peak, plan.service, p95_target_ms)
    if plan.projected_peak_rps_high is not None:
        plan.replicas_needed_high = replicas_for(plan.projected_peak_rps_high, plan.service, p95_target_ms)[1]
    if plan.max_load_per_replica is None:
        plan.notes.append(f"one request takes {plan.service.seconds * 1000:.0f} ms on this host: a p95 under "
                          f"{p95_target_ms:.0f} ms cannot be reached by adding replicas, only by a faster model")
    if hasattr(os, "getloadavg"):
        plan.host_load_per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return plan


def _project(plan: CapacityPlan, now: float) -> None:
    """Fit requests per day (whole days only) and project the busiest hour ``horizon_days`` ahead."""
    complete = plan.daily[plan.daily["day_start"] + DAY <= now]
    if len(complete) < 3:
        plan.notes.append(f"{len(complete)} whole day(s) of traffic: a growth projection needs 3 or more")
        return
    days = complete["day_start"].to_numpy(dtype=float) / DAY
    fit = fit_line(days, complete["requests"].to_numpy(dtype=float))
    ahead = np.arange(days[-1] + 1, days[-1] + plan.horizon_days + 1)
    fitted, low, high = fit.predict(ahead)
    plan.projection = pd.DataFrame({"day_start": ahead * DAY, "requests": np.maximum(fitted, 0),
                                    "low": np.maximum(low, 0), "high": np.maximum(high, 0)})
    # The busiest hour keeps its ratio to the mean as traffic grows.
    ratio = plan.peak_to_mean or 1.0
    if len(ahead):
        plan.projected_peak_rps = float(max(fitted[-1], 0) / DAY * ratio)
        plan.projected_peak_rps_high = float(max(high[-1], 0) / DAY * ratio)
    plan.notes.append(f"requests per day change by {fit.slope:+.0f} a day ({fit.confidence:.0%} interval "
                      f"{fit.slope_low:+.0f} to {fit.slope_high:+.0f}) over {fit.n} days")
