"""CBPE: accuracy estimated from calibrated probabilities, checked against the labels that follow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from opscore.models import registry
from opscore.models.calibration import fit_calibration
from opscore.models.monitor_reference import FILE_NAME
from opscore.monitoring.chunking import Chunking
from opscore.monitoring.performance_estimation import NO_REGRESSION, PerformanceEstimator, estimate_accuracy
from opscore.store import open_store

HOUR = 3_600.0
START = 1_800_000_000.0


def outcome(x: np.ndarray, rng: np.random.Generator, flipped: bool = False) -> np.ndarray:
    """The one relation between inputs and outcome (P(y | x)); ``flipped`` is concept drift."""
    logit = 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.8 * x[:, 0] * x[:, 2] + np.sin(2 * x[:, 3]) - 0.5
    return (rng.random(len(x)) < 1 / (1 + np.exp(logit if flipped else -logit))).astype(int)


@pytest.fixture(scope="module")
def model_and_calibration():
    rng = np.random.default_rng(21)
    x_train, x_holdout = rng.normal(size=(4_000, 4)), rng.normal(size=(2_000, 4))
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x_train, outcome(x_train, rng))
    calibration = fit_calibration(model.predict_proba(x_holdout), outcome(x_holdout, rng), model.classes_)
    return model, calibration


def traffic(model, hours: int, rng: np.random.Generator, *, shift_to: float = 1.5, rows: int = 500,
            flipped: bool = False) -> pd.DataFrame:
    """Hourly traffic whose feature means move step by step to ``shift_to`` σ, as logged with its labels."""
    frames = []
    for hour in range(hours):
        x = rng.normal(size=(rows, 4)) + np.array([1.0, -1.0, 0.5, 0.5]) * shift_to * hour / max(hours - 1, 1)
        probability = model.predict_proba(x)
        frames.append(pd.DataFrame({"at": START + hour * HOUR + np.arange(rows), "prediction": model.classes_[
            probability.argmax(axis=1)], "probability": probability[:, 1], "label": outcome(x, rng, flipped)}))
    return pd.concat(frames, ignore_index=True)


def estimator(calibration, **options) -> PerformanceEstimator:
    return PerformanceEstimator("classification", calibration, [0, 1], chunking=Chunking(frequency="1h"), **options)


def test_under_covariate_shift_the_estimate_holds_the_realized_accuracy_within_its_band(model_and_calibration):
    model, calibration = model_and_calibration
    logged = traffic(model, 40, np.random.default_rng(22))
    table = estimator(calibration).calculate(logged.drop(columns="label")).to_df()
    realized = estimator(calibration).calculate(logged).to_df()
    # The shift is real: accuracy moves by far more than the band is wide.
    assert realized["realized_accuracy"].max() - realized["realized_accuracy"].min() > 0.12
    assert table["estimated_accuracy"].tolist() == realized["estimated_accuracy"].tolist()
    inside = (realized["realized_accuracy"] >= realized["estimate_low"]) & \
        (realized["realized_accuracy"] <= realized["estimate_high"])
    assert inside.mean() >= 0.9 and realized["realized_within_band"].mean() >= 0.9
    assert (table["labelled"] == 0).all() and table["realized_accuracy"].isna().all()
    sigma = table["sigma"].iloc[0]
    assert 0.01 < sigma < 0.03 and table["estimate_high"].iloc[0] - table["estimate_low"].iloc[0] == \
        pytest.approx(6 * sigma)


def test_concept_drift_puts_realized_accuracy_outside_the_band_and_says_so(model_and_calibration):
    model, calibration = model_and_calibration
    logged = traffic(model, 3, np.random.default_rng(23), shift_to=0.0, flipped=True)
    result = estimator(calibration).calculate(logged)
    assert not result.to_df()["realized_within_band"].any()
    assert len(result.findings) == 3 and all("concept drift" in f for f in result.findings)


def test_an_estimated_drop_below_the_alert_line_is_a_finding_before_any_label(model_and_calibration):
    model, calibration = model_and_calibration
    rng = np.random.default_rng(24)
    usual = traffic(model, 1, rng, shift_to=0.0)
    baseline = float((usual["prediction"] == usual["label"]).mean())
    # Inputs crowd around the decision boundary (covariate shift only): a harder population.
    x = rng.normal(size=(500, 4)) * 0.3 + np.array([0.33, 0.0, 0.0, 0.0])
    hard = pd.DataFrame({"at": START + HOUR + np.arange(500.0), "prediction": model.predict(x),
                         "probability": model.predict_proba(x)[:, 1]})
    result = estimator(calibration, baseline=baseline).calculate(pd.concat([usual.drop(columns="label"), hard]))
    estimated = result.to_df()["estimated_accuracy"]
    assert estimated.iloc[0] > baseline * 0.95 > estimated.iloc[1]
    assert len(result.findings) == 1 and "no labels needed" in result.findings[0]
    assert result.findings[0].startswith(f"{pd.Timestamp(START + HOUR, unit='s'):%Y-%m-%d %H}:00")


def test_multiclass_uses_the_calibrated_top_class_probability():
    calibration = {"method": "isotonic", "kind": "top_class", "x": [0.0, 1.0], "y": [0.0, 0.5]}
    logged = pd.DataFrame({"at": START + np.arange(4.0), "prediction": ["a", "b", "c", "a"],
                           "probability": [0.8, 0.6, np.nan, 1.0], "label": [None, None, None, None]})
    result = PerformanceEstimator("classification", calibration, ["a", "b", "c"],
                                  chunking=Chunking(size=10)).calculate(logged)
    row = result.to_df().iloc[0]
    assert row["predictions"] == 3 and row["estimated_accuracy"] == pytest.approx((0.4 + 0.3 + 0.5) / 3)
    assert any("1 prediction(s) without a logged probability" in note for note in result.notes)


def test_regression_and_versions_without_a_calibration_say_why_there_is_no_estimate():
    regression = PerformanceEstimator("regression", None).calculate(pd.DataFrame())
    assert regression.unavailable == NO_REGRESSION and regression.to_df().empty
    old = PerformanceEstimator("classification", None, [0, 1]).calculate(pd.DataFrame())
    assert "trained before" in old.unavailable


def test_estimated_from_the_store_for_a_trained_version(served):
    result = estimate_accuracy(served, "v1", chunking=Chunking(size=1_000))
    row = result.to_df().iloc[0]
    assert row["predictions"] == 120 and 0.5 < row["estimated_accuracy"] < 1 and row["labelled"] == 0
    assert result.unavailable is None
    assert result.baseline == registry.get_version(open_store(served), "v1").metrics["accuracy"]
    (served.model_store_path / "v1" / FILE_NAME).unlink()
    assert "trained before" in estimate_accuracy(served, "v1").unavailable


def _labels(settings, share: float, seed: int) -> int:
    from sqlalchemy import select

    from opscore.serving.feedback import record_feedback
    from opscore.store import predictions

    rng = np.random.default_rng(seed)
    with open_store(settings).read() as conn:
        ids = list(conn.execute(select(predictions.c.request_id).where(predictions.c.version_id == "v1")).scalars())
    chosen = [i for i in ids if rng.random() < share]
    record_feedback(open_store(settings), [{"request_id": i, "label": int(rng.random() < 0.3)} for i in chosen])
    return len(chosen)


def test_the_estimate_from_the_rollups_is_the_estimate_from_the_rows(served):
    import time

    from opscore.data.labelled_traffic import logged_outcomes
    from opscore.monitoring import performance_estimation as pe
    from opscore.serving.feature_rollups import bucket_of

    labelled = _labels(served, 0.4, seed=3)
    end = time.time() + 60
    start = bucket_of(end - 86_400)
    chunking = Chunking(frequency=3600).over(start, end)
    store = open_store(served)
    assert pe._rollup_windows(store, "v1", start, end, chunking) is not None  # the rollups hold every row
    from_rollups = estimate_accuracy(served, "v1", start=start, end=end, chunking=chunking).to_df()
    info = registry.get_version(store, "v1")
    reference = pe.read_monitor_reference(served.model_store_path, "v1")
    from_rows = PerformanceEstimator.for_version(info, reference, chunking=chunking).calculate(
        logged_outcomes(store, start, end, "v1")).to_df()
    assert from_rollups["predictions"].sum() == 120 and from_rollups["labelled"].sum() == labelled > 0
    pd.testing.assert_frame_equal(from_rollups, from_rows, check_exact=False, rtol=1e-9, atol=1e-12)
    # A window edge off the 5-minute buckets, or rows the rollups never saw: the rows are read instead.
    assert pe._rollup_windows(store, "v1", start + 60, end, Chunking(frequency=3600).over(start + 60, end)) is None
    from opscore.store import estimate_rollups

    with store.write() as conn:
        conn.execute(estimate_rollups.delete())
    assert pe._rollup_windows(store, "v1", start, end, chunking) is None
    again = estimate_accuracy(served, "v1", start=start, end=end, chunking=chunking).to_df()
    pd.testing.assert_frame_equal(again, from_rows, check_exact=False, rtol=1e-9, atol=1e-12)
