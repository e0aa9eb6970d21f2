"""Accuracy on labelled traffic: intervals, windows, the labelled share and drop findings."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from opscore.data.labelled_traffic import labelled_predictions
from opscore.exceptions import BadInputError
from opscore.monitoring.accuracy import AccuracyMonitor, DropThreshold, measure_accuracy, wilson_interval
from opscore.monitoring.chunking import Chunking
from opscore.serving import feedback
from opscore.serving.telemetry_queries import recent_predictions
from opscore.store import open_store

DAY = 86_400.0
START = 1_800_000_000.0 - 1_800_000_000.0 % DAY  # a UTC midnight


def window(correct: int, n: int, *, day: int = 0, positive_share: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """``n`` labelled binary predictions in one day, ``correct`` of them right."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < positive_share).astype(int)
    right = np.zeros(n, dtype=bool)
    right[rng.permutation(n)[:correct]] = True
    prediction = np.where(right, label, 1 - label)
    probability = np.clip(np.where(prediction == 1, 0.75, 0.25) + rng.normal(0, 0.2, n), 0, 1)
    return pd.DataFrame({"at": START + day * DAY + np.sort(rng.uniform(0, DAY - 1, n)), "prediction": prediction,
                         "probability": probability, "label": label})


def monitor(**options) -> AccuracyMonitor:
    return AccuracyMonitor("classification", {"accuracy": 0.9, "f1": 0.88, "roc_auc": 0.95}, [0, 1], **options)


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (score interval without correction).
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_published_values(successes, n, low, high):
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=5e-5)


def test_an_accuracy_drop_is_a_finding_at_the_threshold_and_not_below_it():
    # Relative 5 % of 0.90 is 0.045: the alert line is 0.855, which is 171 of 200.
    at_line = monitor().calculate(window(171, 200))
    assert len(at_line.findings) == 1 and "accuracy 0.855" in at_line.findings[0]
    assert "5.0% below the holdout's 0.900 (alert at 5% of the baseline: 0.855)" in at_line.findings[0]
    assert at_line.alert_line == pytest.approx(0.855)
    assert monitor().calculate(window(172, 200)).findings == []
    # Absolute 0.05 points: the line is 0.85 (170 of 200).
    absolute = DropThreshold(0.05, relative=False)
    assert len(monitor(threshold=absolute).calculate(window(170, 200)).findings) == 1
    assert monitor(threshold=absolute).calculate(window(171, 200)).findings == []


def test_windows_with_too_few_labels_raise_no_finding_but_say_so():
    result = monitor(min_labels=30).calculate(window(10, 29))
    assert result.findings == [] and result.to_df()["accuracy"].iloc[0] == pytest.approx(10 / 29)
    assert any("fewer than 30 labels" in note for note in result.notes)


def test_daily_windows_with_the_labelled_share_and_metrics_like_scikit_learns():
    days = [window(180, 200, day=0, seed=1), window(150, 200, day=2, seed=2)]
    labelled = pd.concat(days, ignore_index=True)
    asked = []

    def totals(edges):
        asked.append(edges)
        return [1_000, 50, 400]

    result = monitor(chunking=Chunking(frequency="1D")).calculate(labelled, totals)
    table = result.to_df()
    assert asked == [[START, START + DAY, START + 2 * DAY, START + 3 * DAY]]
    assert table["labelled"].tolist() == [200, 0, 200]
    assert table["labelled_share"].iloc[[0, 2]].tolist() == [0.2, 0.5]
    assert np.isnan(table["accuracy"].iloc[1])  # an empty day is kept, with nothing to measure
    assert table["start"].iloc[0] == pd.Timestamp(START, unit="s", tz="UTC")
    first = days[0]
    assert table["accuracy"].iloc[0] == 0.9
    assert (table["accuracy_low"].iloc[0], table["accuracy_high"].iloc[0]) == wilson_interval(180, 200)
    assert table["f1"].iloc[0] == pytest.approx(f1_score(first["label"], first["prediction"]))
    assert table["roc_auc"].iloc[0] == pytest.approx(roc_auc_score(first["label"], first["probability"]))
    for metric in ("f1", "roc_auc"):
        assert table[f"{metric}_low"].iloc[0] < table[metric].iloc[0] < table[f"{metric}_high"].iloc[0]
    # 150 of 200 is 0.75: 16.7 % below 0.90, beyond the default 5 %.
    assert len(result.findings) == 1 and result.findings[0].startswith("2027-01-")


def test_f1_and_roc_auc_need_both_outcomes_in_the_window():
    one_sided = window(45, 50, positive_share=1.0)
    table = monitor().calculate(one_sided).to_df()
    assert table["accuracy"].iloc[0] == 0.9
    assert np.isnan(table["f1"].iloc[0]) and np.isnan(table["roc_auc"].iloc[0])


def test_labels_sent_as_text_match_numeric_predictions():
    rows = window(40, 50)
    rows["label"] = [str(v) if i % 2 else float(v) for i, v in enumerate(rows["label"])]
    assert monitor().calculate(rows).to_df()["accuracy"].iloc[0] == 0.8


def test_count_chunks_and_bounded_bootstrap_intervals_shrink_with_size():
    big = window(45_000, 50_000, seed=3)
    small = window(4_500, 5_000, seed=4)
    by_count = monitor(chunking=Chunking(size=20_000)).calculate(big).to_df()
    assert by_count["labelled"].tolist() == [20_000, 20_000, 10_000]
    widths = [(t["f1_high"] - t["f1_low"]).iloc[0] for t in
              (monitor(chunking=Chunking(size=50_000)).calculate(frame).to_df() for frame in (big, small))]
    assert 0.2 < widths[0] / widths[1] < 0.45  # about sqrt(5_000 / 50_000) = 0.32


def test_regression_measures_mae_and_rmse_and_a_rise_is_a_finding():
    rng = np.random.default_rng(5)
    truth = rng.normal(10, 3, 400)
    predicted = truth + rng.normal(0, 2, 400)
    rows = pd.DataFrame({"at": START + np.arange(400.0), "prediction": predicted, "label": truth.astype(object)})
    rows.loc[0, "label"] = "not a number"
    regression = AccuracyMonitor("regression", {"mae": 1.2, "rmse": 1.5}, chunking=Chunking(size=1_000))
    result = regression.calculate(rows)
    table = result.to_df()
    errors = predicted[1:] - truth[1:]
    assert table["mae"].iloc[0] == pytest.approx(np.abs(errors).mean())
    assert table["rmse"].iloc[0] == pytest.approx(np.sqrt((errors ** 2).mean()))
    assert table["mae_low"].iloc[0] < table["mae"].iloc[0] < table["mae_high"].iloc[0]
    assert table["rmse_low"].iloc[0] < table["rmse"].iloc[0] < table["rmse_high"].iloc[0]
    assert any("1 labelled row(s) left out" in note for note in result.notes)
    assert len(result.findings) == 1 and "mae" in result.findings[0] and "above the holdout's 1.200" in result.findings[0]


def test_bad_settings_are_refused_with_a_reason():
    with pytest.raises(BadInputError, match="above 0 and below 1"):
        DropThreshold(1.5)
    with pytest.raises(BadInputError, match="exactly one of"):
        Chunking(frequency="1h", size=10)
    with pytest.raises(BadInputError, match="fixed length"):
        Chunking(frequency="monthly")
    with pytest.raises(BadInputError, match="lack column"):
        monitor().calculate(pd.DataFrame({"at": [1.0]}))


def test_measured_from_the_store_with_probabilities_and_the_labelled_share(served):
    store = open_store(served)
    logged = recent_predictions(store, limit=500)
    v1 = logged[logged["version_id"] == "v1"].head(60)
    feedback.record_feedback(store, [{"request_id": r, "label": p}
                                     for r, p in zip(v1["request_id"], v1["prediction"], strict=True)])
    table = labelled_predictions(store, version_id="v1")
    assert set(table["request_id"]) == set(v1["request_id"])
    assert table["probability"].tolist() == pytest.approx(v1.set_index("request_id").loc[table["request_id"],
                                                                                           "probability"].tolist())
    result = measure_accuracy(served, "v1", chunking=Chunking(size=1_000))
    row = result.to_df().iloc[0]
    assert row["labelled"] == 60 and row["predictions"] == 120 and row["labelled_share"] == 0.5
    assert row["accuracy"] == 1.0 and result.findings == []
    now = time.time()
    hourly = measure_accuracy(served, "v1", start=now - 3 * 3_600, end=now + 1, chunking=Chunking(frequency="1h"))
    table = hourly.to_df()
    assert len(table) in (4, 5) and (table["labelled"] == 0).sum() >= 2  # the quiet hours are there too
    assert table["labelled"].sum() == 60 and table["predictions"].sum() == 120


def test_auc_and_f1_intervals_agree_with_a_bootstrap_over_rows():
    from opscore.monitoring.accuracy import _auc, _binary_f1, bootstrap_interval, delong_interval, f1_interval

    rng = np.random.default_rng(8)
    positive = rng.random(3_000) < 0.3
    scores = np.round(np.clip(rng.normal(0.4 + 0.3 * positive, 0.2), 0, 1), 2)  # rounded: many ties
    predicted = scores > 0.5
    auc, f1 = _auc(scores, positive), _binary_f1(predicted, positive)
    slow_auc = bootstrap_interval(lambda idx: _auc(scores[idx], positive[idx]), 3_000, auc, rng, resamples=400)
    slow_f1 = bootstrap_interval(lambda idx: _binary_f1(predicted[idx], positive[idx]), 3_000, f1, rng, resamples=400)
    fast_auc = delong_interval(scores, positive)
    fast_f1 = f1_interval(int(np.sum(predicted & positive)), int(np.sum(predicted & ~positive)),
                          int(np.sum(~predicted & positive)), 3_000, f1, rng, resamples=400)
    for (low, high), (slow_low, slow_high), estimate in ((fast_auc, slow_auc, auc), (fast_f1, slow_f1, f1)):
        assert low < estimate < high
        assert (high - low) == pytest.approx(slow_high - slow_low, rel=0.2)
    assert np.isnan(delong_interval(scores[:1], positive[:1])[0])


def test_the_labelled_shares_denominator_from_the_rollups_is_the_count_of_rows(served):
    from opscore.data.labelled_traffic import prediction_counts
    from opscore.monitoring.accuracy import answered_per_window

    store = open_store(served)
    now = (time.time() // 60 + 2) * 60
    edges = [now - 3 * 3_600 + k * 900 for k in range(13)]
    assert answered_per_window(store, edges, "v1") == prediction_counts(store, edges, "v1")
    assert sum(answered_per_window(store, edges, "v1")) == 120
    off_minute = [e + 7 for e in edges]
    assert answered_per_window(store, off_minute, "v1") == prediction_counts(store, off_minute, "v1")
