"""Time windows operators pick from, and traffic and latency per step over one, from the rollups.

Figures over a window read the per-minute rollups only, so a page costs the same with a thousand
or a million logged predictions.
"""


from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd

from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views.sources import DEFAULT_SOURCE

# Time windows an operator picks from; None means "since the first logged prediction".
WINDOWS: dict[str, float | None] = {
    "Last 15 minutes": 15 * 60,
    "Last hour": 3600,
    "Last 6 hours": 6 * 3600,
    "Last 24 hours": 24 * 3600,
    "Last 7 days": 7 * 24 * 3600,
    "All time": None,
}
DEFAULT_WINDOW = "Last 24 hours"
# About this many points per chart, whatever the window; rollups are per minute, so never finer.
POINTS_PER_CHART = 120


@dataclass(frozen=True)
class Window:
    """A time range [start, end) in epoch seconds, with the bucket size its charts use."""

    label: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 60.0)

    @property
    def step_seconds(self) -> int:
        raw = self.seconds / POINTS_PER_CHART
        for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
            if raw <= step:
                return step
        return 86400


def resolve_window(settings: Settings, label: str, now: float | None = None,
                   source: str | None = DEFAULT_SOURCE) -> Window:
    """The window an operator picked, ending now; "All time" starts at the first logged request (of ``source``)."""
    if label not in WINDOWS:
        raise BadInputError(f"unknown time window {label!r}; choose one of: {', '.join(WINDOWS)}")
    # Whole minutes, so the exact figures (raw rows) and the estimates (minute rollups) cover the same requests.
    end = math.ceil((time.time() if now is None else now) / 60) * 60
    length = WINDOWS[label]
    if length is not None:
        return Window(label, end - length, end)
    first = telemetry_queries.first_traffic_at(open_store(settings), source=source)
    return Window(label, math.floor((first if first is not None else end - 3600) / 60) * 60, end)


def window_series(settings: Settings, window: Window, version_id: str | None = None,
                  now: float | None = None, source: str | None = DEFAULT_SOURCE) -> pd.DataFrame:
    """Per-step traffic and latency per version over ``window`` (of ``source``), from the rollups.

    Steps without requests are filled in (zero requests, no latency), so a quiet spell reads as zero
    traffic rather than a line drawn across it. Requests per second divide by the part of each step
    the window covers, so the step still in progress (and one cut by the window's start) does not
    read as a drop in traffic.
    """
    step = window.step_seconds
    series = telemetry_queries.latency_series(open_store(settings), window.start, window.end, version_id=version_id,
                                              source=source, step_seconds=step)
    if series.empty:
        return series
    grid = pd.MultiIndex.from_product(
        [range(int(window.start // step * step), int(window.end), step), sorted(series["version_id"].unique())],
        names=["bucket_start", "version_id"],
    )
    series = series.set_index(["bucket_start", "version_id"]).reindex(grid).reset_index()
    series[["count", "errors", "rows"]] = series[["count", "errors", "rows"]].fillna(0).astype("int64")
    now = time.time() if now is None else now
    starts = series["bucket_start"].astype(float)
    covered = (starts + window.step_seconds).clip(upper=now) - starts.clip(lower=window.start)
    series["rps"] = series["count"] / covered.clip(lower=1.0)
    series["rows_per_s"] = series["rows"] / covered.clip(lower=1.0)
    return series


def refusal_series(settings: Settings, window: Window, version_id: str | None = None,
                   source: str | None = DEFAULT_SOURCE) -> pd.DataFrame:
    """Refused requests per step and reason over ``window`` (bucket_start, reason, count), from the store."""
    return telemetry_queries.refusal_series(open_store(settings), window.start, window.end, version_id=version_id,
                                            source=source, step_seconds=window.step_seconds)


