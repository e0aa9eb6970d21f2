"""Accuracy on labelled traffic, per window, against the version's holdout baseline.

Labels arrive late and for a share of the traffic only, so every figure carries its interval and
the share of predictions it rests on. Classification: accuracy (Wilson interval), F1 (bootstrap
interval, drawn as confusion counts) and ROC-AUC (DeLong interval) where both outcomes occur in the
window, each costing the same however many rows were resampled; regression: MAE and RMSE (normal
intervals). A window whose primary metric (accuracy, or MAE for regression) has dropped at least
the threshold below the holdout's is a finding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata
from sklearn.metrics import f1_score

from opscore.config import Settings
from opscore.data.labelled_traffic import class_key, class_keys, labelled_outcomes, prediction_counts
from opscore.exceptions import BadInputError
from opscore.models import registry
from opscore.models.registry import VersionInfo
from opscore.monitoring.chunking import DAILY, Chunk, Chunking, chunk_edges
from opscore.serving.telemetry_queries import answered_rows
from opscore.store import Store, open_store

# Fewer labels than this in a window: figures are shown, but a drop there raises no finding.
MIN_LABELS = 30
RESAMPLES = 200
# Larger windows are resampled m-out-of-n (m rows, widths scaled by sqrt(m/n)) to bound the cost.
MAX_RESAMPLE_ROWS = 5_000
PRIMARY = {"classification": "accuracy", "regression": "mae"}
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "roc_auc": True, "mae": False, "rmse": False}

Totals = Callable[[list[float]], Sequence[int]]


@dataclass(frozen=True)
class DropThreshold:
    """How far the primary metric may move the wrong way from the holdout before it is a finding.

    ``relative`` (the default) reads ``limit`` as a share of the baseline: 0.05 of accuracy 0.90 is
    0.045, so the alert line is 0.855; for MAE 2.0 it is 2.1. Absolute reads it in the metric's units.
    """

    limit: float = 0.05
    relative: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.limit) and self.limit > 0) or (self.relative and self.limit >= 1):
            raise BadInputError(f"an accuracy drop threshold must be above 0{' and below 1' if self.relative else ''}, "
                                f"not {self.limit!r}")

    def alert_line(self, baseline: float, higher_is_better: bool) -> float:
        change = baseline * self.limit if self.relative else self.limit
        return baseline - change if higher_is_better else baseline + change

    def breached(self, value: float, baseline: float, higher_is_better: bool) -> bool:
        """True when ``value`` is at or beyond the alert line (a hair of float rounding counts as on it)."""
        line = self.alert_line(baseline, higher_is_better)
        slack = 1e-9 * max(1.0, abs(line))
        return value <= line + slack if higher_is_better else value >= line - slack

    def describe(self) -> str:
        return f"{self.limit:.0%} of the baseline" if self.relative else f"{self.limit:g} in the metric's units"


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion: sound near 0 and 1 and for small n, unlike the normal one."""
    if n <= 0:
        return math.nan, math.nan
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def delong_interval(scores: np.ndarray, positive: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """ROC-AUC's confidence interval from DeLong's variance (normal approximation), ties at half.

    Each positive's share of negatives it outscores and each negative's share of positives that
    outscore it come from three rankings; their variances give the AUC's, in O(n log n) once where a
    bootstrap would rank every resample (the cost that grew with traffic).
    """
    pos, neg = scores[positive], scores[~positive]
    n_pos, n_neg = pos.size, neg.size
    if n_pos < 2 or n_neg < 2:
        return math.nan, math.nan
    ranks = rankdata(np.concatenate([pos, neg]))
    beats = (ranks[:n_pos] - rankdata(pos)) / n_neg  # per positive: negatives below it (ties half)
    beaten = 1 - (ranks[n_pos:] - rankdata(neg)) / n_pos  # per negative: positives above it (ties half)
    auc = float(beats.mean())
    spread = math.sqrt(beats.var(ddof=1) / n_pos + beaten.var(ddof=1) / n_neg)
    z = float(norm.ppf(0.5 + confidence / 2))
    return max(0.0, auc - z * spread), min(1.0, auc + z * spread)


def f1_interval(hits: int, false_positives: int, false_negatives: int, n: int, estimate: float,
                rng: np.random.Generator, confidence: float = 0.95, resamples: int = RESAMPLES,
                max_rows: int = MAX_RESAMPLE_ROWS) -> tuple[float, float]:
    """Binary F1's percentile bootstrap interval, drawn as confusion-matrix counts.

    F1 depends on a resample only through its four confusion cells, so drawing min(n, max_rows)
    rows with replacement is one multinomial draw over the cells' shares: the same law as the row
    bootstrap, with no per-row work; m-out-of-n draws are rescaled as in :func:`bootstrap_interval`.
    """
    m = min(n, max_rows)
    shares = np.array([hits, false_positives, false_negatives, n - hits - false_positives - false_negatives]) / n
    cells = rng.multinomial(m, shares, size=resamples)
    errors = cells[:, 1] + cells[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(cells[:, 0] + errors > 0, 2 * cells[:, 0] / (2 * cells[:, 0] + errors), np.nan)
    values = values[np.isfinite(values)]
    if values.size < resamples / 2 or not math.isfinite(estimate):
        return math.nan, math.nan
    low, high = np.quantile(values, [0.5 - confidence / 2, 0.5 + confidence / 2])
    scale = math.sqrt(m / n)
    return float(estimate + (low - estimate) * scale), float(estimate + (high - estimate) * scale)


def _binary_f1(predicted: np.ndarray, actual: np.ndarray) -> float:
    tp = int(np.sum(predicted & actual))
    wrong = int(np.sum(predicted ^ actual))
    return 2 * tp / (2 * tp + wrong) if tp or wrong else math.nan


def bootstrap_interval(statistic: Callable[[np.ndarray], float], n: int, estimate: float, rng: np.random.Generator,
                       confidence: float = 0.95, resamples: int = RESAMPLES,
                       max_rows: int = MAX_RESAMPLE_ROWS) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(row positions)``; m-out-of-n beyond ``max_rows``.

    Resamples where the statistic is undefined (one class only) are skipped; with fewer than half
    defined the interval is unknown.
    """
    m = min(n, max_rows)
    values = np.array([statistic(rng.integers(0, n, m)) for _ in range(resamples)])
    values = values[np.isfinite(values)]
    if values.size < resamples / 2 or not math.isfinite(estimate):
        return math.nan, math.nan
    low, high = np.quantile(values, [0.5 - confidence / 2, 0.5 + confidence / 2])
    scale = math.sqrt(m / n)
    return float(estimate + (low - estimate) * scale), float(estimate + (high - estimate) * scale)


@dataclass
class AccuracyResult:
    """Per-window metrics on labelled traffic, the baseline they are held against, and the findings."""

    task: str
    metric: str
    baseline: dict[str, float]
    threshold: DropThreshold
    chunking: Chunking
    table: pd.DataFrame
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    version_id: str | None = None
    confidence: float = 0.95

    @property
    def alert_line(self) -> float | None:
        base = self.baseline.get(self.metric)
        return None if base is None else self.threshold.alert_line(base, HIGHER_IS_BETTER[self.metric])

    def to_df(self) -> pd.DataFrame:
        """One row per window: start, end, predictions, labelled, labelled_share, each metric with _low/_high."""
        return self.table.copy()


class AccuracyMonitor:
    """Metrics on labelled predictions per window, held against one version's holdout metrics."""

    def __init__(self, task: str, baseline: dict[str, float], classes: Sequence[Any] | None = None, *,
                 threshold: DropThreshold | None = None, chunking: Chunking | None = None,
                 min_labels: int = MIN_LABELS, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0,
                 version_id: str | None = None) -> None:
        if task not in PRIMARY:
            raise BadInputError(f"task must be classification or regression, not {task!r}")
        if not 0 < confidence < 1:
            raise BadInputError(f"confidence must be between 0 and 1, not {confidence!r}")
        self.task, self.baseline, self.classes = task, dict(baseline), list(classes or [])
        self.threshold = threshold or DropThreshold()
        self.chunking = chunking or DAILY
        self.min_labels, self.confidence, self.resamples, self.seed = min_labels, confidence, resamples, seed
        self.version_id = version_id

    @classmethod
    def for_version(cls, info: VersionInfo, **options: Any) -> AccuracyMonitor:
        """A monitor holding ``info``'s traffic against its own holdout metrics."""
        return cls(info.task, info.metrics, info.feature_schema.classes, version_id=info.version_id, **options)

    def calculate(self, labelled: pd.DataFrame, totals: Totals | None = None) -> AccuracyResult:
        """Metrics per window of ``labelled`` (columns at, prediction, label; probability for ROC-AUC).

        ``totals(edges)`` gives the number of all predictions per window, for the labelled share.
        """
        missing = [c for c in ("at", "prediction", "label") if c not in labelled.columns]
        if missing:
            raise BadInputError(f"labelled predictions lack column(s) {', '.join(missing)}")
        notes: list[str] = []
        frame = self._usable(labelled, notes)
        chunks = self.chunking.split(frame["at"].to_numpy(dtype=float))
        counts = list(totals(chunk_edges(chunks))) if totals is not None and chunks else None
        rng = np.random.default_rng(self.seed)
        rows = [self._window(frame, chunk, None if counts is None else counts[chunk.index], rng) for chunk in chunks]
        table = pd.DataFrame(rows, columns=self._columns())
        result = AccuracyResult(self.task, PRIMARY[self.task], self.baseline, self.threshold, self.chunking, table,
                                notes=notes, version_id=self.version_id, confidence=self.confidence)
        result.findings = self._findings(result, notes)
        if self.task == "classification" and len(self.classes) > 2:
            notes.append("ROC-AUC is not shown: it needs every class's probability and serving logs only the "
                         "top class's for a multiclass model")
        return result

    def _columns(self) -> list[str]:
        metrics = ["accuracy", "f1", "roc_auc"] if self.task == "classification" else ["mae", "rmse"]
        return ["start", "end", "predictions", "labelled", "labelled_share",
                *[f"{m}{s}" for m in metrics for s in ("", "_low", "_high")]]

    def _usable(self, labelled: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
        frame = labelled.reset_index(drop=True)
        if self.task == "classification":
            frame = frame.assign(predicted_key=class_keys(frame["prediction"]), label_key=class_keys(frame["label"]))
            keep = frame["predicted_key"].notna() & frame["label_key"].notna()
        else:
            frame = frame.assign(predicted_value=pd.to_numeric(frame["prediction"], errors="coerce"),
                                 label_value=pd.to_numeric(frame["label"], errors="coerce"))
            keep = np.isfinite(frame["predicted_value"]) & np.isfinite(frame["label_value"])
            if (~keep).any():
                notes.append(f"{int((~keep).sum())} labelled row(s) left out: label or prediction is not a number")
        return frame[keep].reset_index(drop=True)

    def _window(self, frame: pd.DataFrame, chunk: Chunk, total: int | None, rng: np.random.Generator) -> dict[str, Any]:
        rows = frame.iloc[chunk.positions]
        n = len(rows)
        out: dict[str, Any] = {"start": pd.to_datetime(chunk.start, unit="s", utc=True),
                               "end": pd.to_datetime(chunk.end, unit="s", utc=True), "predictions": total,
                               "labelled": n, "labelled_share": n / total if total else math.nan}
        if n == 0:
            return out
        if self.task == "classification":
            out.update(self._classification(rows, rng))
        else:
            out.update(self._regression(rows))
        return out

    def _classification(self, rows: pd.DataFrame, rng: np.random.Generator) -> dict[str, float]:
        predicted = rows["predicted_key"].to_numpy(dtype=object)
        actual = rows["label_key"].to_numpy(dtype=object)
        n = actual.size
        correct = int(np.sum(predicted == actual))
        out = {"accuracy": correct / n}
        out["accuracy_low"], out["accuracy_high"] = wilson_interval(correct, n, self.confidence)
        keys = [class_key(c) for c in self.classes] or sorted(set(actual) | set(predicted))
        if len(set(actual)) < 2:
            return out  # F1 and ROC-AUC need both outcomes in the window
        if len(keys) == 2:
            positive = keys[1]
            predicted_positive, actually_positive = predicted == positive, actual == positive

            out["f1"] = _binary_f1(predicted_positive, actually_positive)
            out["f1_low"], out["f1_high"] = f1_interval(
                int(np.sum(predicted_positive & actually_positive)), int(np.sum(predicted_positive & ~actually_positive)),
                int(np.sum(~predicted_positive & actually_positive)), n, out["f1"], rng, self.confidence,
                self.resamples)
            probability = pd.to_numeric(rows["probability"], errors="coerce").to_numpy(dtype=float) \
                if "probability" in rows else np.full(n, np.nan)
            scored = np.isfinite(probability)
            scores, outcomes = probability[scored], actually_positive[scored]
            if outcomes.any() and not outcomes.all():

                out["roc_auc"] = _auc(scores, outcomes)
                out["roc_auc_low"], out["roc_auc_high"] = delong_interval(scores, outcomes, self.confidence)
        else:
            labels = sorted(set(actual) | set(predicted))

            def macro_f1(idx: np.ndarray) -> float:
                return float(f1_score(actual[idx], predicted[idx], labels=labels, average="macro", zero_division=0))

            out["f1"] = macro_f1(np.arange(n))
            out["f1_low"], out["f1_high"] = bootstrap_interval(macro_f1, n, out["f1"], rng, self.confidence,
                                                               self.resamples)
        return out

    def _regression(self, rows: pd.DataFrame) -> dict[str, float]:
        errors = rows["predicted_value"].to_numpy(dtype=float) - rows["label_value"].to_numpy(dtype=float)
        n = errors.size
        absolute, squared = np.abs(errors), errors ** 2
        z = float(norm.ppf(0.5 + self.confidence / 2))
        out = {"mae": float(absolute.mean()), "rmse": float(math.sqrt(squared.mean()))}
        if n >= 2:
            half_mae = z * absolute.std(ddof=1) / math.sqrt(n)
            half_mse = z * squared.std(ddof=1) / math.sqrt(n)
            out["mae_low"], out["mae_high"] = max(0.0, out["mae"] - half_mae), out["mae"] + half_mae
            out["rmse_low"] = math.sqrt(max(0.0, squared.mean() - half_mse))
            out["rmse_high"] = math.sqrt(squared.mean() + half_mse)
        return out

    def _findings(self, result: AccuracyResult, notes: list[str]) -> list[str]:
        metric, table = result.metric, result.table
        baseline = self.baseline.get(metric)
        if baseline is None:
            notes.append(f"the version has no holdout {metric}; windows are shown without a baseline")
            return []
        better_high = HIGHER_IS_BETTER[metric]
        line = self.threshold.alert_line(baseline, better_high)
        thin = int(((table["labelled"] > 0) & (table["labelled"] < self.min_labels)).sum())
        if thin:
            notes.append(f"{thin} window(s) have fewer than {self.min_labels} labels: shown, but they raise no finding")
        findings = []
        for row in table.itertuples(index=False):
            value = getattr(row, metric)
            if row.labelled < self.min_labels or value is None or not math.isfinite(value):
                continue
            if not self.threshold.breached(value, baseline, better_high):
                continue
            change = (baseline - value) if better_high else (value - baseline)
            size = f"{change / baseline:.1%}" if self.threshold.relative and baseline else f"{change:.3g}"
            direction = "below" if better_high else "above"
            low, high = getattr(row, f"{metric}_low"), getattr(row, f"{metric}_high")
            findings.append(
                f"{_span(row.start, row.end)}: {metric} {value:.3f} ({self.confidence:.0%} CI {low:.3f}–{high:.3f}, "
                f"{row.labelled} labels) is {size} {direction} the holdout's {baseline:.3f} "
                f"(alert at {self.threshold.describe()}: {line:.3f})")
        return findings


def _span(start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M} UTC"


def measure_accuracy(settings: Settings, version_id: str, *, start: float | None = None, end: float | None = None,
                     chunking: Chunking | None = None, threshold: DropThreshold | None = None,
                     now: float | None = None, labelled: pd.DataFrame | None = None) -> AccuracyResult:
    """Accuracy of ``version_id`` on its labelled traffic in [start, end), per window, from the store.

    ``labelled`` is that traffic when the caller already read it (``labelled_outcomes``).
    """
    store = open_store(settings)
    info = registry.get_version(store, version_id)
    end = end if end is not None else (now or time.time())
    if labelled is None:
        labelled = labelled_outcomes(store, start, end, version_id)
    monitor = AccuracyMonitor.for_version(info, threshold=threshold, chunking=(chunking or DAILY).over(start, end))
    return monitor.calculate(labelled, lambda edges: answered_per_window(store, edges, version_id))


def answered_per_window(store: Store, edges: Sequence[float], version_id: str) -> list[int]:
    """Answered predictions per window (the labelled share's denominator): summed from the per-minute
    rollups when every edge is a whole minute (any traffic, same cost), else counted from the rows."""
    if all(float(edge) % 60 == 0 for edge in edges):
        return answered_rows(store, version_id, edges)
    return prediction_counts(store, edges, version_id)
