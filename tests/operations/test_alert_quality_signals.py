"""Dataset drift and data quality as alert signals: logged traffic that drifted fires, clean traffic stays quiet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from opscore.config import Settings, replace
from opscore.data.features import validate_records
from opscore.demo.credit_data import credit_applications
from opscore.models import registry
from opscore.models.artifacts import read_document
from opscore.models.training import train_version
from opscore.operations.alert_signals import SIGNALS, SignalContext
from opscore.operations.alerts import evaluate, list_alerts
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import Scores, load_version, request_records
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store, predictions
from tests.conftest import OPERATOR

T0 = 1_800_000_000.0
HOUR = 3600.0


@pytest.fixture
def production(any_workspace: Settings, demo_frame: pd.DataFrame) -> Settings:
    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    return any_workspace


def log_frame(settings: Settings, frame: pd.DataFrame, start: float, span: float = 1800.0) -> None:
    """Score ``frame`` with production's model and log it through the telemetry writer, spread over ``span`` s."""
    features = frame.drop(columns="default", errors="ignore").astype(object).where(lambda f: f.notna(), None)
    records = features.to_dict(orient="records")
    loaded = load_version(settings, "v1")
    scores = loaded.predict_frame(validate_records(loaded.schema, records).frame)
    writer = TelemetryWriter(settings).start()
    step = max(len(records) // 30, 1)  # one batch of single-row requests a minute
    for n, i in enumerate(range(0, len(records), step)):
        part = Scores(scores.predictions[i:i + step], scores.probabilities and scores.probabilities[i:i + step],
                      scores.classes)
        writer.submit_many(request_records("v1", records[i:i + step], part, source="api", latency_ms=3.0,
                                           request_ids=[f"r{start:.0f}-{j}" for j in range(i, i + len(part.predictions))],
                                           at=start + n * span / 30, one_request=False))
    assert writer.close()


def _firing(settings: Settings, rule: str) -> list[dict]:
    return [a for a in list_alerts(settings, state="firing") if a["rule"] == rule]


def test_drifted_traffic_fires_the_dataset_drift_rule_and_clean_traffic_does_not(production: Settings) -> None:
    log_frame(production, credit_applications(n_rows=2_000, seed=31), T0)
    clean = SIGNALS["dataset_drift_share"](SignalContext(production, T0 + HOUR), HOUR)
    assert clean and clean[0][0] == {"version": "v1"} and clean[0][1] < 0.5
    for minutes in (0, 3):  # the rule holds for 2m before it fires
        evaluate(production, now=T0 + HOUR + 60 * minutes, sleep=lambda _: None)
    assert _firing(production, "dataset_drift") == []

    later = T0 + 2 * HOUR
    log_frame(production, credit_applications(n_rows=2_000, seed=32, shift=1.0), later)
    [(labels, share)] = SIGNALS["dataset_drift_share"](SignalContext(production, later + HOUR), HOUR)
    assert labels == {"version": "v1"} and share >= 0.5
    evaluate(production, now=later + HOUR, sleep=lambda _: None)
    assert _firing(production, "dataset_drift") == []  # pending: one reading is not yet 2 minutes
    evaluate(production, now=later + HOUR + 180, sleep=lambda _: None)
    [alert] = _firing(production, "dataset_drift")
    assert alert["labels"] == {"version": "v1"} and alert["value"] == pytest.approx(share)
    assert "of the columns of v1 drifted" in alert["summary"]

    # An hour after the drifted traffic stopped there is nothing to measure: no data, not firing.
    evaluate(production, now=later + 3 * HOUR, sleep=lambda _: None)
    assert _firing(production, "dataset_drift") == []
    assert [a["state"] for a in list_alerts(production) if a["rule"] == "dataset_drift"] == ["nodata"]


def test_missing_and_outlier_shares_per_column_fire_their_rules(production: Settings) -> None:
    frame = credit_applications(n_rows=1_000, seed=33)
    profile = read_document(production.model_store_path, "v1", "reference_profile.json")["columns"]["credit_score"]
    high = profile["q3"] + 3 * (profile["q3"] - profile["q1"])
    frame.loc[frame.index[:80], "loan_amount"] = np.nan  # 8 % missing: over the 5 % line
    frame.loc[frame.index[100:250], "credit_score"] = high  # 15 % outliers: over the 10 % line
    log_frame(production, frame, T0)

    ctx = SignalContext(production, T0 + HOUR)
    missing = {labels["column"]: value for labels, value in SIGNALS["missing_share"](ctx, HOUR)}
    outliers = {labels["column"]: value for labels, value in SIGNALS["outlier_share"](ctx, HOUR)}
    features = frame.drop(columns="default")
    assert missing == pytest.approx(features.isna().mean().to_dict())
    iqr = profile["q3"] - profile["q1"]
    scores = features["credit_score"]
    expected = ((scores < profile["q1"] - 1.5 * iqr) | (scores > profile["q3"] + 1.5 * iqr)).mean()
    assert outliers["credit_score"] == pytest.approx(expected) and expected >= 0.15

    for minutes in (0, 3):
        evaluate(production, now=T0 + HOUR + 60 * minutes, sleep=lambda _: None)
    assert [a["labels"] for a in _firing(production, "missing_values")] == [{"version": "v1", "column": "loan_amount"}]
    [outlier] = _firing(production, "outliers")
    assert outlier["labels"] == {"version": "v1", "column": "credit_score"}
    assert outlier["summary"].startswith("credit_score of v1 has 0.15")


def test_accuracy_drop_reads_the_newest_labelled_predictions_in_the_window(production: Settings) -> None:
    frame = credit_applications(n_rows=600, seed=35)
    log_frame(production, frame, T0)
    labels = frame["default"].to_numpy()
    flipped = labels.copy()
    flipped[:300] = 1 - flipped[:300]  # the older half's labels contradict the model more often
    with open_store(production).read() as conn:
        rows = conn.execute(select(predictions.c.request_id, predictions.c.prediction).order_by(predictions.c.at,
                                                                                              predictions.c.id)).all()
    predicted = np.array([int(json.loads(p)) for _, p in rows])
    record_feedback(open_store(production), [{"request_id": rid, "label": int(label)}
                                             for (rid, _), label in zip(rows, flipped, strict=True)])
    holdout = registry.get_version(open_store(production), "v1").metrics["accuracy"]

    [(labels_of, drop)] = SIGNALS["accuracy_drop"](SignalContext(production, T0 + HOUR), HOUR)
    assert labels_of == {"version": "v1"} and drop == pytest.approx(holdout - (predicted == flipped).mean())
    newest = replace(production, alert_accuracy_rows=200)
    [(_, drop_newest)] = SIGNALS["accuracy_drop"](SignalContext(newest, T0 + HOUR), HOUR)
    assert drop_newest == pytest.approx(holdout - (predicted[-200:] == flipped[-200:]).mean())
    # A shorter window inside the same evaluation is cut from the longest one's read.
    ctx = SignalContext(production, T0 + HOUR, horizons={"accuracy_drop": 2 * HOUR})
    in_window = np.array([T0 + n * 60 for n in range(30) for _ in range(20)]) >= T0 + HOUR - 40 * 60
    [(_, recent)] = SIGNALS["accuracy_drop"](ctx, 40 * 60)
    assert recent == pytest.approx(holdout - (predicted[in_window] == flipped[in_window]).mean())
    assert SIGNALS["accuracy_drop"](SignalContext(production, T0 + 3 * HOUR), HOUR) == []  # no labels: no data


def test_too_little_traffic_or_no_production_is_no_data(any_workspace: Settings, demo_frame: pd.DataFrame) -> None:
    for name in ("dataset_drift_share", "missing_share", "outlier_share"):
        assert SIGNALS[name](SignalContext(any_workspace, T0), HOUR) == []
    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    log_frame(any_workspace, credit_applications(n_rows=60, seed=34, shift=1.0), T0)
    for name in ("dataset_drift_share", "missing_share", "outlier_share"):
        assert SIGNALS[name](SignalContext(any_workspace, T0 + HOUR), HOUR) == []
        assert SIGNALS[name](SignalContext(replace(any_workspace, alert_min_rows=50), T0 + HOUR), HOUR)
