"""The Drift page: production's live traffic against its reference profile over the chosen window.

Everything is summed from the rollups kept at ingestion (drift, quality, multivariate score), so the
page costs the same at any traffic; accuracy reads the labelled rows of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from opscore.config import Settings
from opscore.data.labelled_traffic import labelled_outcomes
from opscore.models import registry
from opscore.models.registry import ProductionChange
from opscore.monitoring.accuracy import AccuracyResult, measure_accuracy
from opscore.monitoring.chunking import Chunking
from opscore.monitoring.data_quality import quality_over_time
from opscore.monitoring.distributions import Counts
from opscore.monitoring.live_drift import (
    LiveDriftReport,
    column_distribution,
    drift_with_windows,
    multivariate_frame,
    resolve_version,
)
from opscore.monitoring.performance_estimation import PerformanceEstimate, estimate_accuracy
from opscore.serving.feature_rollups import bucket_of
from opscore.store import open_store
from opscore.views.sources import DEFAULT_SOURCE, TrafficSource, traffic_source
from opscore.views.windows import Window, resolve_window

TABLE_COLUMNS = ["type", "test", "measure", "statistic", "threshold", "p_value", "drifted", "missing_share_current",
                 "note"]
# What each test's statistic is; distance tests (Wasserstein, Jensen-Shannon, PSI) have no p-value:
# their statistic itself is held against the threshold.
MEASURES = {"ks": "KS statistic D", "chisquare": "chi-square statistic", "z": "Z statistic",
            "wasserstein": "normed Wasserstein distance", "jensenshannon": "Jensen-Shannon distance",
            "psi": "population stability index"}
NO_P_VALUE = "—"


def p_value_text(p_value: float | None) -> str:
    """A p-value as the table shows it; a dash for tests that give none (distances)."""
    return NO_P_VALUE if p_value is None or p_value != p_value else f"{p_value:.3g}"


@dataclass(frozen=True)
class DriftPage:
    window: Window
    every: float
    source: TrafficSource
    drift: LiveDriftReport
    over_time: list[LiveDriftReport]
    multivariate: pd.DataFrame
    quality: pd.DataFrame
    accuracy: AccuracyResult
    estimate: PerformanceEstimate
    markers: list[ProductionChange]

    def table(self) -> pd.DataFrame:
        """One row per column, drifted first, as the page's sortable table.

        ``measure`` names the statistic; ``p_value`` is text, a dash for distance tests (which have
        none), so no cell reads "None"; ``note`` is the verdict's reason or the unseen categories.
        """
        frame = self.drift.report.to_df()
        if frame.empty:
            return pd.DataFrame(columns=TABLE_COLUMNS)
        frame = frame.assign(
            measure=[MEASURES.get(test, test) for test in frame["test"]],
            p_value=[p_value_text(None if pd.isna(p) else float(p)) for p in frame["p_value"]],
            note=[_note(reason, unseen) for reason, unseen in zip(frame["reason"], frame["unseen_categories"],
                                                                   strict=True)],
        )[TABLE_COLUMNS]
        return frame.sort_values(["drifted", "column"], ascending=[False, True])


def _note(reason: object, unseen: object) -> str:
    parts = [str(reason)] if isinstance(reason, str) and reason else []
    if isinstance(unseen, list | tuple) and unseen:
        parts.append("unseen: " + ", ".join(map(str, unseen)))
    return "; ".join(parts)


def _every(seconds: float) -> float:
    return 3600.0 if seconds <= 2 * 86400 else 86400.0


def drift_page(settings: Settings, window_label: str, version: str | None = None,
               source: str = DEFAULT_SOURCE) -> DriftPage:
    """Drift, quality and accuracy of ``version`` (default: production's) over the window, per sub-window too.

    Drift, quality and the multivariate score read ``source``'s rollups only (the sidebar's traffic
    choice): rows scored from a file are not production's API traffic and must not move its verdict.
    """
    traffic = traffic_source(source)
    picked = resolve_window(settings, window_label, source=source)
    # Start on a rollup bucket, so the window's sums are exactly one window's.
    window = Window(picked.label, bucket_of(picked.start), picked.end)
    chosen = resolve_version(settings, window.start, window.end, version)
    every = _every(window.seconds)
    chunking = Chunking(frequency=every).over(window.start, window.end)
    drift, over_time = drift_with_windows(settings, window.start, window.end, every, version=chosen, source=source)
    labelled = labelled_outcomes(open_store(settings), window.start, window.end, chosen)  # read once for both
    return DriftPage(
        window=window, every=every, source=traffic,
        drift=drift, over_time=over_time, multivariate=multivariate_frame(over_time),
        quality=quality_over_time(settings, window.start, window.end, every, version=chosen, source=source),
        accuracy=measure_accuracy(settings, chosen, start=window.start, end=window.end, chunking=chunking,
                                  labelled=labelled),
        estimate=estimate_accuracy(settings, chosen, start=window.start, end=window.end, chunking=chunking,
                                   labelled=labelled),
        markers=registry.production_changes(open_store(settings)),
    )


def distribution_of(settings: Settings, version: str, column: str, start: float, end: float,
                    source: str = DEFAULT_SOURCE) -> Counts:
    """Reference and current counts of ``column`` (or "prediction") of ``version``'s ``source`` traffic over [start, end)."""
    return column_distribution(settings, version, column, start, end, source)


def has_production(settings: Settings) -> bool:
    """Whether any version has served production (the page has nothing to compare before)."""
    return registry.alias_target(open_store(settings)) is not None
