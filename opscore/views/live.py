"""The Live predictions page: the newest predictions and the figures of the last minutes."""


from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd

from opscore.config import Settings
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views.formatting import when
from opscore.views.sources import DEFAULT_SOURCE, TrafficSource, traffic_source
from opscore.views.windows import Window, window_series

LIVE_MINUTES = 30


@dataclass(frozen=True)
class LiveFeed:
    """The newest predictions of one traffic source and its traffic over the last half hour, for a view
    that refreshes itself."""

    source: TrafficSource
    stats: dict
    recent: pd.DataFrame
    series: pd.DataFrame
    window_size: int


def live_feed(settings: Settings, limit: int = 50, source: str = DEFAULT_SOURCE) -> LiveFeed:
    """Figures over the last ``settings.live_window`` logged rows of ``source``, its newest ``limit`` rows,
    and its requests per second over the last half hour (from rollups)."""
    store = open_store(settings)
    traffic = traffic_source(source)
    now = time.time()
    recent = telemetry_queries.recent_predictions(store, limit=limit, source=source)
    table = pd.DataFrame({
        "time (UTC)": [when(t, "%H:%M:%S") for t in recent["at"]],
        "version": recent["version_id"],
        "source": recent["source"],
        # Every row of a request shows the request's latency; for scoring sources, the row's share of its chunk.
        "latency (ms)": recent["latency_ms"],
        "status": recent["status"],
        "prediction": [_cell(v) for v in recent["prediction"]],
        "probability": recent["probability"],
        "label": [_cell(v) for v in recent["label"]],
    })
    end = math.ceil(now / 60) * 60
    return LiveFeed(
        source=traffic,
        stats=telemetry_queries.live_window(store, settings.live_window, source=source),
        recent=table,
        series=window_series(settings, Window("live", end - LIVE_MINUTES * 60, end), now=now, source=source),
        window_size=settings.live_window,
    )


def _cell(value: object) -> str:
    """A logged prediction or label as text: empty when absent, 1 rather than 1.0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
