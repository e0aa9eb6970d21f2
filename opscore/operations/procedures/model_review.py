"""Model reviews: accuracy and drift over the week, a monthly evaluation against a retrained candidate,
and the versions that never served, listed for archiving.

The monthly evaluation fits a candidate in memory, on production's training data plus the older 70 %
of the last 30 days' labelled traffic, and scores both on the newest 30 % (which neither learned
from). It registers nothing: a registered version is a promise an operator can promote, so when the
candidate wins, the finding opens an adaptive ``retrain_candidate`` task, which retrains through
``models/retraining.py`` as the Retrain page does (a candidate, never production). The comparison is
paired, row by row, with a t interval on the difference.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select

from opscore.access.actors import SYSTEM
from opscore.config import Settings
from opscore.data.labelled_traffic import labelled_predictions
from opscore.exceptions import BadInputError
from opscore.models import artifacts, registry
from opscore.models.ensemble import build_pipeline
from opscore.models.registration import refit_estimator
from opscore.models.registry import VersionInfo
from opscore.models.retraining import retrain
from opscore.monitoring.accuracy import measure_accuracy
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.file_drift import file_drift
from opscore.operations.alerts import note
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure
from opscore.store import open_store, predictions

DAY = 86_400.0
# The week's drift compares at most this many of its newest answered requests with the training data.
MAX_DRIFT_ROWS = 20_000


def _production(settings: Settings) -> VersionInfo | None:
    store = open_store(settings)
    version_id = registry.alias_target(store, "production")
    return registry.get_version(store, version_id) if version_id else None


def logged_features(settings: Settings, version_id: str, start: float, end: float,
                    newest: int = MAX_DRIFT_ROWS) -> pd.DataFrame:
    """The features of ``version_id``'s answered API rows in [start, end), at most ``newest`` of the newest."""
    query = (select(predictions.c.features).where(predictions.c.version_id == version_id,
                                                  predictions.c.status == "ok", predictions.c.source == "api",
                                                  predictions.c.at >= start, predictions.c.at < end)
             .order_by(predictions.c.at.desc()).limit(newest))
    with open_store(settings).read() as conn:
        return pd.DataFrame.from_records([json.loads(f) for f in conn.execute(query).scalars()])


@procedure("accuracy_and_drift", title="Accuracy per version on labelled traffic, and drift over the week",
           maintenance_set="weekly", estimated_seconds=30)
def accuracy_and_drift(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    start = now - float(params.get("days", 7)) * DAY
    findings, recommendations, accuracy = [], [], {}
    served = _versions_with_traffic(settings, start, now)
    for index, version_id in enumerate(served):
        checkpoint(f"accuracy of {version_id}", 0.6 * index / max(1, len(served)))
        result = measure_accuracy(settings, version_id, start=start, end=now)
        table = result.to_df()
        labelled = int(table["labelled"].sum()) if not table.empty else 0
        metric = result.metric
        values = table[metric].dropna() if metric in table else pd.Series(dtype=float)
        accuracy[version_id] = {"metric": metric, "labelled": labelled, "windows": len(table),
                                "mean": float(values.mean()) if len(values) else None,
                                "holdout": result.baseline.get(metric)}
        findings += [Finding(f"{version_id}: {line}", "high", follow_up="corrective",
                             follow_up_procedure="comprehensive_evaluation") for line in result.findings]
        if not labelled:
            recommendations.append(f"{version_id} served without labels this week: send ground truth to /feedback")
    checkpoint("drift of production's traffic", 0.7)
    drift: dict[str, Any] = {}
    production = _production(settings)
    if production is not None:
        current = logged_features(settings, production.version_id, start, now)
        if len(current) >= 30:
            reference = artifacts.read_dataset(settings.model_store_path, production.fingerprint)
            names = [c for c in production.feature_schema.names if c in current.columns]
            report = file_drift(reference[names], current[names], DriftOptions.from_settings(settings))
            drifted = sorted(name for name, column in report.columns.items() if column.drifted)
            drift = {"version_id": production.version_id, "rows": len(current), "dataset_drift": report.dataset_drift,
                     "drift_share": report.drift_share, "drifted_columns": drifted}
            if report.dataset_drift:
                findings.append(Finding(
                    f"{production.version_id}'s traffic this week drifted from its training data in {len(drifted)} of "
                    f"{len(report.columns)} columns ({', '.join(drifted[:6])})", "high", follow_up="adaptive",
                    follow_up_procedure="comprehensive_evaluation"))
        else:
            recommendations.append(f"{len(current)} API rows for {production.version_id} this week: too few to test drift")
    return ProcedureResult({"accuracy": accuracy, "drift": drift, "window_days": (now - start) / DAY},
                           findings, recommendations)


def _versions_with_traffic(settings: Settings, start: float, end: float) -> list[str]:
    query = (select(predictions.c.version_id).where(predictions.c.at >= start, predictions.c.at < end)
             .group_by(predictions.c.version_id).order_by(predictions.c.version_id))
    with open_store(settings).read() as conn:
        return list(conn.execute(query).scalars())


def _per_row_score(model: Any, frame: pd.DataFrame, labels: pd.Series, task: str) -> np.ndarray:
    """1 for a right answer, 0 for a wrong one (classification); minus the absolute error (regression)."""
    predicted = model.predict(frame)
    if task == "classification":
        return (np.asarray(predicted) == labels.to_numpy()).astype(float)
    return -np.abs(np.asarray(predicted, dtype=float) - labels.to_numpy(dtype=float))


def paired_difference(candidate: np.ndarray, production: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Mean of candidate minus production per row, with its t interval (as ``scipy.stats.ttest_rel``)."""
    diff = np.asarray(candidate, dtype=float) - np.asarray(production, dtype=float)
    n = len(diff)
    mean, sd = float(diff.mean()), float(diff.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)) if n > 1 else float("inf")
    return {"difference": mean, "low": mean - half, "high": mean + half, "rows": n}


@procedure("comprehensive_evaluation", title="Production against a candidate retrained on recent labelled data",
           maintenance_set="monthly", estimated_seconds=120)
def comprehensive_evaluation(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    days, min_labels = float(params.get("days", 30)), int(params.get("min_labels", 100))
    production = _production(settings)
    if production is None:
        return ProcedureResult(recommendations=["nothing is in production: there is nothing to evaluate"])
    checkpoint("reading labelled traffic", 0.0)
    base = artifacts.read_dataset(settings.model_store_path, production.fingerprint)
    names, target = production.feature_schema.names, production.target
    traffic = labelled_predictions(open_store(settings), now - days * DAY, now)
    if len(traffic) < min_labels:
        return ProcedureResult({"labelled_rows": len(traffic)}, recommendations=[
            f"{len(traffic)} labelled predictions in the last {days:g} days; the evaluation needs {min_labels}"])
    for name in names:
        if name not in traffic.columns:
            traffic[name] = None
    try:
        labels = traffic["label"].astype(base[target].dtype)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"labelled traffic has labels unlike {target!r} in the training data: {exc}") from exc
    split = int(len(traffic) * 0.7)
    older, newer = traffic.iloc[:split], traffic.iloc[split:]
    checkpoint("fitting a candidate in memory", 0.2)
    estimator = refit_estimator(settings, production)
    candidate = (estimator.model if estimator is not None else
                 build_pipeline(production.feature_schema, settings.seed, settings.forest_trees, settings.boosting_rounds))
    candidate.fit(pd.concat([base[names], older[names]], ignore_index=True),
                  pd.concat([base[target], labels.iloc[:split]], ignore_index=True))
    checkpoint("scoring both on the newest labelled traffic", 0.8)
    current = registry.load_version_model(settings, production)
    truth = labels.iloc[split:].reset_index(drop=True)
    frame = newer[names].reset_index(drop=True)
    production_rows = _per_row_score(current, frame, truth, production.task)
    candidate_rows = _per_row_score(candidate, frame, truth, production.task)
    comparison = paired_difference(candidate_rows, production_rows)
    metric = "accuracy" if production.task == "classification" else "mean absolute error"
    sign = 1 if production.task == "classification" else -1
    figures = {"version_id": production.version_id, "metric": metric, "labelled_rows": len(traffic),
               "training_rows_added": split, "evaluation_rows": len(newer),
               "production": float(sign * production_rows.mean()), "candidate": float(sign * candidate_rows.mean()),
               **{f"difference_{k}" if k != "difference" else k: v for k, v in comparison.items()}}
    findings, recommendations = [], []
    interval = f"95 % interval {comparison['low']:+.3f} to {comparison['high']:+.3f} per row"
    if comparison["low"] > 0:
        findings.append(Finding(
            f"a candidate retrained on {split} recent labelled rows beats {production.version_id} on the newest "
            f"{len(newer)}: {metric} {figures['candidate']:.3f} against {figures['production']:.3f} ({interval})",
            "medium", follow_up="adaptive", follow_up_procedure="retrain_candidate",
            follow_up_params={"base_version": production.version_id}))
        recommendations.append("retrain a candidate on labelled traffic (the follow-up task does) and promote it "
                               "after reading its pre-flight")
    elif comparison["high"] < 0:
        recommendations.append(f"keep {production.version_id}: it beats a retrained candidate on recent data ({interval})")
    else:
        recommendations.append(f"keep {production.version_id}: a retrained candidate is no better on recent data ({interval})")
    return ProcedureResult(figures, findings, recommendations)


@procedure("retrain_candidate", title="Retrain a candidate on labelled production traffic", task_type="adaptive",
           estimated_seconds=120)
def retrain_candidate(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    production = _production(settings)
    base = params.get("base_version") or (production.version_id if production else None)
    if base is None:
        raise BadInputError("retrain_candidate needs base_version: nothing is in production")

    def progress(stage: str, fraction: float) -> None:
        checkpoint(stage, fraction)

    outcome = retrain(settings, base, include_labelled_traffic=True, actor=SYSTEM, progress=progress)
    if params.get("alert_id") is not None:  # a trigger's retrain: the alert's timeline shows the candidate
        note(settings, int(params["alert_id"]), "retrained",
             f"candidate {outcome.candidate.version_id} registered from {base}; not promoted")
    return ProcedureResult(
        {"candidate": outcome.candidate.version_id, "base_version": base, "sources": outcome.sources,
         "metrics": outcome.candidate.metrics},
        recommendations=[f"{outcome.candidate.version_id} is the candidate: compare it on the Versions page and promote "
                         "it if it holds up"] + outcome.notes)


@procedure("archive_candidates", title="Versions never served and older than N days, listed for archiving",
           maintenance_set="monthly", estimated_seconds=5)
def archive_candidates(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    older_than = float(params.get("older_than_days", 90))
    store = open_store(settings)
    served = set(registry.production_seconds(store, now))
    with store.read() as conn:
        logged = {v for v, in conn.execute(select(predictions.c.version_id).group_by(predictions.c.version_id)).all()}
    candidate = registry.alias_target(store, "candidate")
    listed = []
    root = settings.model_store_path
    for info in registry.list_versions(store):
        if info.version_id in served or info.version_id in logged or info.version_id == candidate:
            continue  # production history is never archived, nor a version with traffic, nor the candidate
        if now - info.created_at < older_than * DAY:
            continue
        folder = root / info.version_id
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
        listed.append({"version_id": info.version_id, "created_at": info.created_at, "bytes": size,
                       "created_by": info.created_by})
    findings = []
    if listed:
        total = sum(v["bytes"] for v in listed)
        findings.append(Finding(
            f"{len(listed)} version(s) never served and older than {older_than:g} days hold {total / 1e6:.1f} MB: "
            f"{', '.join(v['version_id'] for v in listed[:10])}", "low"))
    return ProcedureResult({"archive": listed, "older_than_days": older_than}, findings,
                           ["nothing is deleted here: archive the listed folders by hand once nobody needs them"]
                           if listed else [])
