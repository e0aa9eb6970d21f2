"""Holdout metrics as operators compare them: which ones matter for a task, their labels, which is better.

Shared by the Versions page, the Retrain page and retraining's candidate report, so every place
names and orders metrics the same way.
"""

from __future__ import annotations

import pandas as pd

from opscore.models.registry import VersionInfo

HEADLINE_METRICS = {"classification": ("roc_auc", "accuracy", "f1", "log_loss"), "regression": ("r2", "rmse", "mae")}
METRIC_LABELS = {"roc_auc": "ROC-AUC", "accuracy": "accuracy", "f1": "F1", "log_loss": "log loss", "r2": "R²",
                 "rmse": "RMSE", "mae": "MAE"}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def headline_metrics(info: VersionInfo) -> list[str]:
    """The holdout metrics worth a column for this version's task, in the order operators read them."""
    preferred = HEADLINE_METRICS.get(info.task, ())
    return [m for m in preferred if m in info.metrics] + [m for m in info.metrics if m not in preferred]


def metrics_side_by_side(left: VersionInfo | None, right: VersionInfo) -> pd.DataFrame:
    """Holdout metrics of two versions: metric, <left>, <right>, change (right - left), better (which one).

    With no ``left`` (nothing to compare with) only ``right``'s column is filled.
    """
    names = list(dict.fromkeys((headline_metrics(left) if left else []) + headline_metrics(right)))
    frame = pd.DataFrame({"metric": [metric_label(m) for m in names],
                          right.version_id: [right.metrics.get(m) for m in names]})
    if left is None or left.version_id == right.version_id:
        return frame
    frame.insert(1, left.version_id, [left.metrics.get(m) for m in names])
    change = frame[right.version_id].astype(float) - frame[left.version_id].astype(float)
    frame["change"] = change
    better = []
    for name, delta in zip(names, change, strict=True):
        if pd.isna(delta) or delta == 0:
            better.append("—")
        else:
            right_wins = delta < 0 if name in LOWER_IS_BETTER else delta > 0
            better.append(right.version_id if right_wins else left.version_id)
    frame["better"] = better
    return frame
