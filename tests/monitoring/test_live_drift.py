"""Live drift: binned statistics against scipy on raw data, known answers, and the logged-traffic path."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opscore.data.profile import categorical_profile, numeric_profile
from opscore.exceptions import BadInputError, NotFoundError
from opscore.monitoring import live_drift as ld
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.stattests import ks, wasserstein
from opscore.serving.feature_rollups import (
    FEATURE,
    CategoricalPlan,
    NumericPlan,
    WindowSums,
    count_categorical,
    count_numeric,
)
from tests.conftest import OPERATOR

N = 100_000


def _binned(reference: np.ndarray, current: np.ndarray):
    profile = numeric_profile(reference)
    return ld.numeric_counts(profile, count_numeric(NumericPlan.from_profile(profile), list(current)))


@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.05, 1.0), (0.5, 1.0), (0.0, 1.3), (0.3, 1.3)])
def test_binned_wasserstein_and_ks_stay_within_their_stated_bounds_of_scipy_on_raw_100k(shift, scale):
    rng = np.random.default_rng(11)
    reference, current = rng.normal(size=N), rng.normal(shift, scale, size=N)
    counts = _binned(reference, current)

    raw_w = stats.wasserstein_distance(reference, current) / reference.std()
    binned_w = wasserstein.wasserstein_on_counts(counts).statistic
    bound_w = wasserstein.error_bound(counts)
    assert abs(binned_w - raw_w) <= bound_w
    assert bound_w <= 0.05  # tight enough for the 0.1 threshold

    raw_ks = stats.ks_2samp(reference, current).statistic
    binned_ks = ks.ks_on_counts(counts).statistic
    assert 0 <= raw_ks - binned_ks <= ks.error_bound(counts) + 1e-12
    assert ks.error_bound(counts) <= 0.01


def test_twenty_quantile_bins_alone_would_be_too_loose_for_the_threshold():
    rng = np.random.default_rng(3)
    profile = numeric_profile(rng.normal(size=N))
    old = {k: v for k, v in profile.items() if not k.startswith("live_")}  # a profile written before live bins
    counts = ld.numeric_counts(old, count_numeric(NumericPlan.from_profile(old), list(rng.normal(size=N))))
    assert np.count_nonzero(counts.reference) == 20  # old profiles stay readable, over their 20 quantile bins
    assert wasserstein.error_bound(counts) > 0.1


def _sums(columns: dict) -> WindowSums:
    return WindowSums({(FEATURE, name): delta for name, delta in columns.items()}, None, 1)


def _numeric_case(shifted: set[int], n: int = N, columns: int = 50):
    rng = np.random.default_rng(42)
    profile, deltas = {"columns": {}}, {}
    for j in range(columns):
        name = f"x{j}"
        column = numeric_profile(rng.normal(size=n))
        profile["columns"][name] = column
        deltas[name] = count_numeric(NumericPlan.from_profile(column), list(rng.normal(0.5 if j in shifted else 0, 1, n)))
    return profile, deltas


def test_seeded_data_without_drift_stays_quiet_at_100k_rows():
    profile, deltas = _numeric_case(set())
    report, _ = ld.compare(profile, _sums(deltas), DriftOptions())
    assert len(report.drifted_columns) <= 1


def test_a_half_sigma_shift_on_ten_of_fifty_columns_is_found_exactly():
    shifted = set(range(0, 50, 5))
    profile, deltas = _numeric_case(shifted)
    report, _ = ld.compare(profile, _sums(deltas), DriftOptions())
    assert report.drifted_columns == [f"x{j}" for j in sorted(shifted)]
    assert not report.dataset_drift and report.drift_share == pytest.approx(0.2)


def test_a_new_category_is_found_and_named():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.choice(["a", "b", "c"], size=5_000))
    current = list(rng.choice(["a", "b", "c"], size=4_000)) + ["zeta"] * 1_000 + [None] * 50
    column = categorical_profile(reference)
    delta = count_categorical(CategoricalPlan(tuple(sorted(column["frequencies"]))), current)
    report, _ = ld.compare({"columns": {"kind_of": column}}, _sums({"kind_of": delta}), DriftOptions())
    verdict = report.columns["kind_of"]
    assert verdict.drifted and verdict.unseen_categories == ("zeta",)
    assert verdict.missing_share_current == pytest.approx(50 / 5_050)


@pytest.mark.parametrize("text, seconds", [("90m", 5400), ("24h", 86400), ("7d", 604800), ("1.5h", 5400)])
def test_parse_window_reads_minutes_hours_and_days(text, seconds):
    assert ld.parse_window(text) == seconds


@pytest.mark.parametrize("text", ["24", "h", "-1h", "0d", "3w", "1h30m", ""])
def test_parse_window_names_the_expected_form(text):
    with pytest.raises(BadInputError, match="90m, 24h or 7d"):
        ld.parse_window(text)


def _score(settings, rows: int, seed: int, shift: float = 0.0, version: str | None = None) -> None:
    from opscore.demo.credit_data import credit_applications
    from opscore.serving.predictor import load_version, score_frame
    from opscore.serving.telemetry_writer import TelemetryWriter

    writer = TelemetryWriter(settings).start()
    loaded = load_version(settings, version) if version else None
    score_frame(settings, credit_applications(n_rows=rows, seed=seed, shift=shift).drop(columns="default"),
                source="api", telemetry=writer, loaded=loaded)
    assert writer.close()


@pytest.fixture
def live(any_workspace, demo_frame):
    from opscore.models.training import train_version

    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    return any_workspace


def test_live_traffic_like_training_stays_quiet_and_shifted_traffic_drifts(live):
    start = time.time() - 1
    _score(live, 3_000, seed=21)
    quiet = ld.live_drift(live, start, time.time() + 1)
    assert quiet.version == "v1" and quiet.rows == 3_000
    assert len(quiet.report.drifted_columns) <= 1
    assert quiet.multivariate is not None and quiet.multivariate["rows"] == 3_000

    middle = time.time()
    _score(live, 3_000, seed=22, shift=1.0)
    both = ld.live_drift(live, start, time.time() + 1)
    assert both.rows == 6_000
    assert len(both.report.drifted_columns) >= 3
    body = both.to_dict()
    assert list(body)[:5] == ["dataset_drift", "drift_share", "threshold_share", "columns", "window"]
    assert body["window"]["rows"] == 6_000
    assert set(body["columns"]["age"]) >= {"type", "test", "statistic", "p_value", "threshold", "drifted",
                                            "missing_share_reference", "missing_share_current"}
    assert both.prediction_drift is not None
    assert middle > start


def test_drift_over_time_and_distribution_and_multivariate_read_the_same_rollups(live):
    start = time.time() - 1
    _score(live, 1_000, seed=23)
    end = time.time() + 1
    windows = ld.drift_over_time(live, start - 3600, end, 900)
    assert sum(w.rows for w in windows) == 1_000
    assert windows[0].start == start - 3600 and windows[-1].end == end
    counts = ld.column_distribution(live, "v1", "home_ownership", start, end)
    assert counts.n_current == 1_000 - int(round(ld.live_drift(live, start, end).report.columns["home_ownership"]
                                                 .missing_share_current * 1_000))
    series = ld.multivariate_over_time(live, start - 3600, end, 900)
    assert list(series.columns) == ["start", "end", "rows", "mean_error", "lower", "upper", "alert"]
    assert series["rows"].sum() == 1_000
    busy = series[series["rows"] > 0].iloc[0]
    assert busy["lower"] < busy["mean_error"] < busy["upper"] or busy["alert"]
    with pytest.raises(NotFoundError):
        ld.live_drift(live, start, end, version="v9")
    with pytest.raises(NotFoundError, match="no column"):
        ld.column_distribution(live, "v1", "nope", start, end)


def test_a_window_with_too_few_rows_gets_that_verdict_not_a_drift_score(live):
    from opscore.config import replace

    start = time.time() - 1
    _score(live, 40, seed=24, shift=1.0)  # a handful of rows from a shifted population
    end = time.time() + 1
    judged = ld.live_drift(replace(live, drift_min_rows=0), start, end)
    assert judged.report.drifted_columns and not judged.too_few_rows  # what the few rows alone would say
    small = ld.live_drift(live, start, end)  # drift_min_rows = 300 by default
    assert small.too_few_rows and small.rows == 40
    assert small.report.drifted_columns == [] and not small.report.dataset_drift
    reasons = {c.reason for c in small.report.columns.values()}
    assert reasons == {ld.too_few_rows_reason(40, 300)}
    assert small.prediction_drift is not None and not small.prediction_drift.drifted
    assert small.to_dict()["too_few_rows"] is True
    # The statistics are still there to look at, the same as when judged.
    assert [c.statistic for c in small.report.columns.values()] == [c.statistic for c in judged.report.columns.values()]
