"""Model accuracy: the drop from the holdout where labels exist, the estimate where they do not, and drift.

Labelled traffic (at least ``MIN_LABELS`` labels in the window) is measured against the version's
holdout metric; without enough labels, accuracy is estimated from calibrated probabilities (CBPE).
A drop past ``health_accuracy_drop`` (a share of the baseline) is a warning, past
``health_critical_factor`` times that critical. Dataset drift, prediction drift and a multivariate
alert over the window (from the live rollups) are warnings: inputs moved, accuracy may follow.
"""

from __future__ import annotations

import math

from opscore.config import Settings
from opscore.models.registry import VersionInfo
from opscore.monitoring.accuracy import HIGHER_IS_BETTER, MIN_LABELS, DropThreshold, measure_accuracy
from opscore.monitoring.chunking import Chunking
from opscore.monitoring.health.status import CheckResult
from opscore.monitoring.live_drift import live_drift
from opscore.monitoring.performance_estimation import estimate_accuracy

RETRAIN = "retrain on recent labelled traffic (Retrain page or POST /retrain) and compare the candidate"


def _drop(value: float, baseline: float, metric: str) -> float:
    change = baseline - value if HIGHER_IS_BETTER[metric] else value - baseline
    return change / baseline if baseline else math.nan


def _judge_drop(result: CheckResult, settings: Settings, drop: float, text: str) -> None:
    if not math.isfinite(drop) or drop < settings.health_accuracy_drop - 1e-12:
        return
    status = "critical" if drop >= settings.health_accuracy_drop * settings.health_critical_factor else "warning"
    result.raise_to(status, text, RETRAIN)


def check_model_accuracy(settings: Settings, start: float, end: float, info: VersionInfo) -> CheckResult:
    """Realized or estimated accuracy of ``info`` over [start, end) against its holdout, and its drift."""
    result = CheckResult(figures={"version": info.version_id})
    window = Chunking(edges=(start, end))
    threshold = DropThreshold(settings.health_accuracy_drop)
    measured = measure_accuracy(settings, info.version_id, start=start, end=end, chunking=window, threshold=threshold)
    row = measured.to_df().iloc[0]
    metric, baseline = measured.metric, measured.baseline.get(measured.metric)
    labelled = int(row["labelled"])
    result.figures.update(metric=metric, baseline=baseline, labelled=labelled,
                          labelled_share=row["labelled_share"], realized=row.get(metric))
    if labelled >= MIN_LABELS and baseline is not None:
        value = float(row[metric])
        drop = _drop(value, baseline, metric)
        result.figures.update(source="labels", drop=drop)
        _judge_drop(result, settings, drop, f"{metric} {value:.3f} on {labelled:,} labels is {drop:.1%} worse than "
                                            f"the holdout's {baseline:.3f}")
    else:
        estimate = estimate_accuracy(settings, info.version_id, start=start, end=end, chunking=window)
        table = estimate.to_df()
        estimated = float(table["estimated_accuracy"].iloc[0]) if len(table) and table["predictions"].iloc[0] else None
        result.figures.update(source="estimate", estimated_accuracy=estimated)
        if estimate.unavailable:
            result.note(f"only {labelled} labels in the window, and {estimate.unavailable}")
        elif estimated is None or estimate.baseline is None:
            result.note(f"only {labelled} labels and no predictions in the window: accuracy was not judged")
        else:
            drop = _drop(estimated, estimate.baseline, "accuracy")
            result.figures["drop"] = drop
            _judge_drop(result, settings, drop, f"estimated accuracy {estimated:.3f} (no labels needed) is "
                                                f"{drop:.1%} below the holdout's {estimate.baseline:.3f}")
    _judge_drift(result, settings, start, end, info.version_id)
    return result


def _judge_drift(result: CheckResult, settings: Settings, start: float, end: float, version: str) -> None:
    drift = live_drift(settings, start, end, version=version)
    report = drift.report
    result.figures.update(drift_rows=drift.rows, dataset_drift=report.dataset_drift, drift_share=report.drift_share,
                          drifted_columns=report.drifted_columns,
                          prediction_drift=bool(drift.prediction_drift and drift.prediction_drift.drifted),
                          multivariate_alert=bool(drift.multivariate and drift.multivariate.get("alert")))
    if not drift.rows:
        result.note("no API traffic in the window: drift was not judged")
        return
    look = "compare reference and current distributions on the Drift page"
    if report.dataset_drift:
        result.raise_to("warning", f"dataset drift: {len(report.drifted_columns)} of {len(report.columns)} columns "
                                   f"drifted ({', '.join(report.drifted_columns)})", look)
    elif report.drifted_columns:
        result.note(f"drifted columns below the dataset line: {', '.join(report.drifted_columns)}")
    if result.figures["prediction_drift"]:
        result.raise_to("warning", "the prediction score's distribution drifted from the holdout's", look)
    if result.figures["multivariate_alert"]:
        result.raise_to("warning", "the multivariate reconstruction error left its reference bounds: the columns' "
                                   "joint behaviour changed", look)
