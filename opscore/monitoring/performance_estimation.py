"""Accuracy estimated before labels arrive (CBPE, as NannyML), beside realized accuracy where they have.

With calibrated probabilities, a row predicted positive with probability p is right with chance p
and one predicted negative with chance 1 - p (multiclass: the calibrated top-class probability is
the chance the prediction is right). A chunk's expected accuracy is the mean of those chances, and
the accuracy it will actually show scatters around that by sqrt(sum q(1 - q)) / n; the band is
± 3 of those σ, as NannyML draws it.

The estimate holds under covariate shift (inputs move, P(y | x) stays) and fails under concept drift
(P(y | x) changes): realized accuracy outside the band is reported as exactly that. Regression models
give no probabilities, so there is no estimate and the result says why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opscore.config import Settings
from opscore.data.labelled_traffic import class_keys, labelled_outcomes, logged_outcomes
from opscore.exceptions import BadInputError
from opscore.models import registry
from opscore.models.calibration import chances_right
from opscore.models.monitor_reference import read_monitor_reference
from opscore.models.registry import VersionInfo
from opscore.monitoring.accuracy import DropThreshold, class_key, wilson_interval
from opscore.monitoring.chunking import DAILY, Chunk, Chunking
from opscore.serving.feature_rollups import EstimateDelta, estimate_sums
from opscore.serving.telemetry_queries import answered_rows
from opscore.store import FEATURE_BUCKET_SECONDS, Store, open_store

SIGMAS = 3.0
# Fewer predictions than this in a chunk: the estimate is shown, but it raises no finding.
MIN_ROWS = 30
NO_REGRESSION = ("accuracy cannot be estimated without labels for a regression model: the estimate needs "
                 "predicted class probabilities, and a regression model gives none")
COLUMNS = ["start", "end", "predictions", "estimated_accuracy", "sigma", "estimate_low", "estimate_high",
           "labelled", "realized_accuracy", "realized_low", "realized_high", "realized_within_band"]


@dataclass
class PerformanceEstimate:
    """Estimated accuracy per chunk with its band, realized accuracy where labelled, and the findings.

    ``unavailable`` says why there is no estimate at all (a regression model, a version without a
    calibration); the table is then empty.
    """

    task: str
    table: pd.DataFrame
    chunking: Chunking
    baseline: float | None = None
    threshold: DropThreshold = field(default_factory=DropThreshold)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None
    version_id: str | None = None
    sigmas: float = SIGMAS

    @property
    def alert_line(self) -> float | None:
        return None if self.baseline is None else self.threshold.alert_line(self.baseline, True)

    def to_df(self) -> pd.DataFrame:
        """One row per chunk: estimate with sigma and band, labelled rows, realized accuracy with its Wilson CI."""
        return self.table.copy()


class PerformanceEstimator:
    """CBPE for one classifier: its calibration, its classes and its holdout accuracy."""

    def __init__(self, task: str, calibration: dict[str, Any] | None, classes: Sequence[Any] | None = None, *,
                 baseline: float | None = None, threshold: DropThreshold | None = None,
                 chunking: Chunking | None = None, sigmas: float = SIGMAS, min_rows: int = MIN_ROWS,
                 version_id: str | None = None) -> None:
        self.task, self.calibration, self.classes = task, calibration, list(classes or [])
        self.baseline, self.threshold = baseline, threshold or DropThreshold()
        self.chunking = chunking or DAILY
        self.sigmas, self.min_rows, self.version_id = sigmas, min_rows, version_id

    @classmethod
    def for_version(cls, info: VersionInfo, reference: dict[str, Any] | None, **options: Any) -> PerformanceEstimator:
        """An estimator for ``info`` from its stored monitor reference (None for versions trained before it)."""
        calibration = None if reference is None else reference.get("calibration")
        return cls(info.task, calibration, info.feature_schema.classes, baseline=info.metrics.get("accuracy"),
                   version_id=info.version_id, **options)

    def _empty(self, reason: str) -> PerformanceEstimate:
        return PerformanceEstimate(self.task, pd.DataFrame(columns=COLUMNS), self.chunking, self.baseline,
                                   self.threshold, unavailable=reason, version_id=self.version_id, sigmas=self.sigmas)

    def calculate(self, logged: pd.DataFrame) -> PerformanceEstimate:
        """Estimate per chunk of ``logged`` (columns at, prediction, probability; label where known)."""
        if self.task == "regression":
            return self._empty(NO_REGRESSION)
        if self.calibration is None:
            return self._empty("this version was trained before opscore kept a probability calibration; "
                               "retrain it to estimate accuracy without labels")
        missing = [c for c in ("at", "prediction", "probability") if c not in logged.columns]
        if missing:
            raise BadInputError(f"logged predictions lack column(s) {', '.join(missing)}")
        notes: list[str] = []
        frame = logged.reset_index(drop=True)
        probability = pd.to_numeric(frame["probability"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(probability).any():
            notes.append(f"{int(np.isnan(probability).sum())} prediction(s) without a logged probability left out")
        frame = frame.assign(chance_right=self._chances(frame["prediction"], probability))
        frame = frame[np.isfinite(frame["chance_right"])].reset_index(drop=True)
        labels = frame["label"] if "label" in frame else pd.Series([None] * len(frame))
        frame = frame.assign(right=[None if class_key(t) is None else class_key(p) == class_key(t)
                                    for p, t in zip(frame["prediction"], labels, strict=True)])
        chunks = self.chunking.split(frame["at"].to_numpy(dtype=float))
        table = pd.DataFrame([self._chunk(frame, c) for c in chunks], columns=COLUMNS)
        estimate = PerformanceEstimate(self.task, table, self.chunking, self.baseline, self.threshold, notes=notes,
                                       version_id=self.version_id, sigmas=self.sigmas)
        estimate.findings = self._findings(table)
        return estimate

    def calculate_from_sums(self, windows: list[tuple[float, float, EstimateDelta]],
                            labelled: pd.DataFrame) -> PerformanceEstimate:
        """The same table from per-window rollup sums of every row's chance, and the labelled rows alone.

        Exactly :meth:`calculate` on the rows those sums were made from: the estimate and its σ need
        only n, Σc and Σc(1 - c); the realized side needs the labelled rows (and their chances).
        """
        if self.task == "regression":
            return self._empty(NO_REGRESSION)
        if self.calibration is None:
            return self._empty("this version was trained before opscore kept a probability calibration; "
                               "retrain it to estimate accuracy without labels")
        probability = pd.to_numeric(labelled["probability"], errors="coerce").to_numpy(dtype=float)
        frame = labelled.reset_index(drop=True).assign(chance_right=self._chances(labelled["prediction"], probability))
        frame = frame[np.isfinite(frame["chance_right"])].reset_index(drop=True)
        frame = frame.assign(right=[None if t is None else p == t for p, t in
                                    zip(class_keys(frame["prediction"]), class_keys(frame["label"]), strict=True)])
        at = frame["at"].to_numpy(dtype=float)
        rows = []
        for start, end, sums in windows:
            out: dict[str, Any] = {"start": pd.to_datetime(start, unit="s", utc=True),
                                   "end": pd.to_datetime(end, unit="s", utc=True), "predictions": sums.count,
                                   "labelled": 0}
            if sums.count:
                estimate, sigma = sums.chance_sum / sums.count, math.sqrt(max(sums.variance_sum, 0.0)) / sums.count
                out.update(estimated_accuracy=estimate, sigma=sigma,
                           estimate_low=max(0.0, estimate - self.sigmas * sigma),
                           estimate_high=min(1.0, estimate + self.sigmas * sigma))
                inside = frame[(at >= start) & (at < end)]
                known = inside["right"].notna().to_numpy()
                if known.any():
                    right = inside["right"].to_numpy()[known].astype(bool)
                    subset = inside["chance_right"].to_numpy(dtype=float)[known]
                    out["labelled"] = int(known.sum())
                    out["realized_accuracy"] = float(right.mean())
                    out["realized_low"], out["realized_high"] = wilson_interval(int(right.sum()), int(known.sum()))
                    out["realized_within_band"] = bool(abs(right.mean() - subset.mean())
                                                       <= self.sigmas * _sigma(subset) + 1e-12)
            rows.append(out)
        table = pd.DataFrame(rows, columns=COLUMNS)
        estimate = PerformanceEstimate(self.task, table, self.chunking, self.baseline, self.threshold,
                                       version_id=self.version_id, sigmas=self.sigmas)
        estimate.findings = self._findings(table)
        return estimate

    def _chances(self, predictions: pd.Series, probability: np.ndarray) -> np.ndarray:
        """Per row, the calibrated chance that the prediction is right."""
        return chances_right(self.calibration or {}, self.classes, predictions, probability)

    def _chunk(self, frame: pd.DataFrame, chunk: Chunk) -> dict[str, Any]:
        rows = frame.iloc[chunk.positions]
        chances = rows["chance_right"].to_numpy(dtype=float)
        n = chances.size
        out: dict[str, Any] = {"start": pd.to_datetime(chunk.start, unit="s", utc=True),
                               "end": pd.to_datetime(chunk.end, unit="s", utc=True), "predictions": n, "labelled": 0}
        if n == 0:
            return out
        estimate, sigma = float(chances.mean()), _sigma(chances)
        out.update(estimated_accuracy=estimate, sigma=sigma, estimate_low=max(0.0, estimate - self.sigmas * sigma),
                   estimate_high=min(1.0, estimate + self.sigmas * sigma))
        known = rows["right"].notna().to_numpy()
        m = int(known.sum())
        out["labelled"] = m
        if m:
            right = rows["right"].to_numpy()[known].astype(bool)
            out["realized_accuracy"] = float(right.mean())
            out["realized_low"], out["realized_high"] = wilson_interval(int(right.sum()), m)
            # Held against the estimate on the same labelled rows, so partial labelling is a fair test.
            subset = chances[known]
            out["realized_within_band"] = bool(abs(right.mean() - subset.mean()) <= self.sigmas * _sigma(subset) + 1e-12)
        return out

    def _findings(self, table: pd.DataFrame) -> list[str]:
        findings = []
        line = None if self.baseline is None else self.threshold.alert_line(self.baseline, True)
        for row in table.itertuples(index=False):
            span = f"{row.start:%Y-%m-%d %H:%M}–{row.end:%Y-%m-%d %H:%M} UTC"
            estimated = row.estimated_accuracy
            if line is not None and row.predictions >= self.min_rows and math.isfinite(estimated) \
                    and self.threshold.breached(estimated, self.baseline, True):
                findings.append(f"{span}: estimated accuracy {estimated:.3f} (band {row.estimate_low:.3f}–"
                                f"{row.estimate_high:.3f}, {row.predictions} predictions, no labels needed) is below "
                                f"the alert line {line:.3f} ({self.threshold.describe()} under the holdout's "
                                f"{self.baseline:.3f})")
            if row.labelled >= max(self.min_rows, 1) and not row.realized_within_band:
                findings.append(f"{span}: realized accuracy {row.realized_accuracy:.3f} on {row.labelled} labels is "
                                f"outside the estimate's band: the relation between inputs and outcome may have "
                                f"changed (concept drift), which an estimate from probabilities cannot see")
        return findings


def _sigma(chances: np.ndarray) -> float:
    return float(math.sqrt(np.sum(chances * (1 - chances))) / chances.size) if chances.size else math.nan


def estimate_accuracy(settings: Settings, version_id: str, *, start: float | None = None, end: float | None = None,
                      chunking: Chunking | None = None, threshold: DropThreshold | None = None,
                      now: float | None = None, labelled: pd.DataFrame | None = None) -> PerformanceEstimate:
    """CBPE for ``version_id``'s logged predictions in [start, end), per chunk, from the store.

    ``labelled`` is the window's labelled traffic when the caller already read it (``labelled_outcomes``).
    """
    store = open_store(settings)
    info = registry.get_version(store, version_id)
    reference = read_monitor_reference(settings.model_store_path, version_id)
    end = end if end is not None else (now or time.time())
    estimator = PerformanceEstimator.for_version(info, reference, chunking=(chunking or DAILY).over(start, end),
                                                 threshold=threshold)
    if info.task == "regression" or reference is None:
        return estimator.calculate(pd.DataFrame(columns=["at", "prediction", "probability"]))
    windows = _rollup_windows(store, version_id, start, end, estimator.chunking)
    if windows is not None:
        if labelled is None:
            labelled = labelled_outcomes(store, start, end, version_id)
        return estimator.calculate_from_sums(windows, labelled)
    return estimator.calculate(logged_outcomes(store, start, end, version_id))


def _rollup_windows(store: Store, version_id: str, start: float | None, end: float,
                    chunking: Chunking) -> list[tuple[float, float, EstimateDelta]] | None:
    """Per time window, the estimate rollups of [start, end), or None where they cannot stand in for the rows.

    They can when every window edge inside the range falls on a rollup bucket (the range's end may
    also be now or later: nothing is logged after now) and, in every window, the rollups hold every
    answered prediction the per-minute latency rollups count: none logged before the estimate
    rollups existed, with feature rollups off, or without a probability.
    """
    if chunking.edges is None or start is None:
        return None
    bounds = [min(max(edge, start), end) for edge in chunking.edges]
    inner = bounds[:-1] if bounds[-1] >= time.time() else bounds
    if any(edge % FEATURE_BUCKET_SECONDS for edge in inner):
        return None
    sums = estimate_sums(store, version_id, bounds)
    answered = answered_rows(store, version_id, bounds)
    if any(s.count != n for s, n in zip(sums, answered, strict=True)):
        return None
    return [(float(a), float(b), s) for a, b, s in zip(chunking.edges[:-1], chunking.edges[1:], sums, strict=True)]
