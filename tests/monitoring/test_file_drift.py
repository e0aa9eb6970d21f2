import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from opscore.exceptions import BadInputError
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.file_drift import file_drift

SHIFTED = [f"f{i}" for i in range(0, 50, 5)]  # 10 of 50, spread across the frame


def _frames(rows: int, seed: int, shifted: list[str] = (), shift_sd: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current with the same 50 column distributions (varied scales); ``shifted`` move by shift_sd."""
    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(50)]
    scales, centres = rng.uniform(0.1, 100, 50), rng.uniform(-1000, 1000, 50)
    reference = pd.DataFrame(rng.normal(size=(rows, 50)) * scales + centres, columns=names)
    current = pd.DataFrame(rng.normal(size=(rows, 50)) * scales + centres, columns=names)
    for name in shifted:
        current[name] += shift_sd * scales[names.index(name)]
    return reference, current


def test_no_drift_at_100k_rows_by_50_columns_stays_quiet() -> None:
    report = file_drift(*_frames(100_000, seed=1))
    assert len(report.drifted_columns) <= 1
    assert not report.dataset_drift
    assert {c.test for c in report.columns.values()} == {"wasserstein"}


def test_half_sigma_shift_on_10_of_50_columns_finds_exactly_those() -> None:
    report = file_drift(*_frames(100_000, seed=2, shifted=SHIFTED))
    assert report.drifted_columns == SHIFTED
    assert report.drift_share == pytest.approx(0.2) and not report.dataset_drift


def test_on_small_data_p_value_tests_with_correction_find_the_shift_and_nothing_else() -> None:
    quiet = file_drift(*_frames(500, seed=3))
    shifted = file_drift(*_frames(500, seed=4, shifted=SHIFTED))
    assert {c.test for c in quiet.columns.values()} == {"ks"}
    assert len(quiet.drifted_columns) <= 1
    assert shifted.drifted_columns == SHIFTED


def test_dataset_drift_once_the_drifted_share_reaches_the_threshold() -> None:
    report = file_drift(*_frames(5_000, seed=5, shifted=[f"f{i}" for i in range(25)]))
    assert report.drift_share == 0.5 and report.dataset_drift
    assert not file_drift(*_frames(5_000, seed=5, shifted=[f"f{i}" for i in range(25)]), DriftOptions(drift_share=0.6)).dataset_drift


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric with NaN and +-inf, a categorical with missing values and a new category, a binary one."""
    rng = np.random.default_rng(6)
    n, m = 3000, 2500
    reference = pd.DataFrame({
        "x": rng.gamma(2.0, 3.0, n),
        "city": rng.choice(["oslo", "rome", "lima", None], n, p=[0.5, 0.3, 0.15, 0.05]),
        "flag": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
    })
    current = pd.DataFrame({
        "x": rng.gamma(2.1, 3.0, m),
        "city": rng.choice(["oslo", "rome", "lima", "mars", None], m, p=[0.45, 0.3, 0.15, 0.05, 0.05]),
        "flag": rng.choice(["yes", "no"], m, p=[0.33, 0.67]),
    })
    reference.loc[:99, "x"] = np.nan
    reference.loc[100:109, "x"] = np.inf
    current.loc[:4, "x"] = -np.inf
    return reference, current


def _finite(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _category_table(reference: pd.Series, current: pd.Series) -> np.ndarray:
    labels = sorted(set(reference.dropna()) | set(current.dropna()))
    return np.array([[int((side == label).sum()) for label in labels] for side in (reference, current)])


def test_statistics_on_raw_columns_agree_with_scipy(mixed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = mixed
    tests = {"x": "ks", "city": "chisquare", "flag": "z"}
    report = file_drift(reference, current, DriftOptions(column_tests=tests, correction="none")).columns
    x_ref, x_cur = _finite(reference["x"]), _finite(current["x"])

    ks = stats.ks_2samp(x_ref, x_cur)
    assert (report["x"].statistic, report["x"].p_value) == pytest.approx((ks.statistic, ks.pvalue), abs=1e-9)
    chi = stats.chi2_contingency(_category_table(reference["city"], current["city"]), correction=False)
    assert (report["city"].statistic, report["city"].p_value) == pytest.approx((chi.statistic, chi.pvalue), abs=1e-9)
    two_by_two = stats.chi2_contingency(_category_table(reference["flag"], current["flag"]), correction=False)
    assert (report["flag"].statistic ** 2, report["flag"].p_value) == pytest.approx((two_by_two.statistic, two_by_two.pvalue), abs=1e-9)

    distances = file_drift(reference, current, DriftOptions(column_tests={"x": "wasserstein", "city": "jensenshannon"})).columns
    assert distances["x"].statistic == pytest.approx(stats.wasserstein_distance(x_ref, x_cur) / np.std(x_ref), abs=1e-9)
    table = _category_table(reference["city"], current["city"])
    assert distances["city"].statistic == pytest.approx(distance.jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum()), abs=1e-9)


def test_missing_values_and_infinities_are_dropped_and_reported_as_shares(mixed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = mixed
    report = file_drift(reference, current).columns
    assert report["x"].missing_share_reference == 110 / 3000
    assert report["x"].missing_share_current == 5 / 2500
    assert report["city"].missing_share_reference == reference["city"].isna().mean()


def test_a_new_category_is_found_and_named(mixed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = mixed
    report = file_drift(reference, current).columns
    assert report["city"].unseen_categories == ("mars",)
    assert report["city"].test == "jensenshannon" and report["city"].drifted
    assert report["flag"].unseen_categories == ()
    assert file_drift(reference.head(800), current.head(800)).columns["city"].test == "chisquare"


def test_a_numeric_column_with_at_most_five_values_is_categorical() -> None:
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"five": rng.integers(0, 5, 2000), "six": rng.integers(0, 6, 2000)})
    current = pd.DataFrame({"five": rng.integers(0, 5, 2000), "six": rng.integers(0, 6, 2000)})
    current.loc[:50, "five"] = 4
    report = file_drift(reference, current).columns
    assert (report["five"].kind, report["five"].test) == ("categorical", "jensenshannon")
    assert (report["six"].kind, report["six"].test) == ("numeric", "wasserstein")
    current.loc[:10, "five"] = 9  # a sixth value, in current only
    assert file_drift(reference, current).columns["five"].kind == "numeric"


def test_awkward_columns_get_a_verdict_with_a_reason_never_an_exception() -> None:
    n = 200
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({
        "all_missing_current": rng.normal(size=n), "all_missing_reference": np.full(n, np.nan),
        "all_missing_both": np.full(n, np.nan), "only_infinities": np.full(n, np.inf),
        "constant_same": np.full(n, 3.0), "constant_moved": np.full(n, 3.0), "constant_reference": np.zeros(n),
        "text_constant": ["a"] * n,
    })
    current = reference.copy()
    current["all_missing_current"] = np.nan
    current["all_missing_reference"] = rng.normal(size=n)
    current["constant_moved"] = 4.0
    current["constant_reference"] = rng.normal(size=n)

    report = file_drift(reference, current)
    json.dumps(report.to_dict(), allow_nan=False)
    columns = report.columns

    assert columns["all_missing_current"].drifted and "current has no values" in columns["all_missing_current"].reason
    assert columns["all_missing_current"].missing_share_current == 1.0
    assert columns["all_missing_reference"].drifted and "reference has no values" in columns["all_missing_reference"].reason
    for name in ("all_missing_both", "only_infinities"):
        assert not columns[name].drifted and columns[name].reason == "no values on either side"
    for name in ("constant_same", "text_constant"):
        assert not columns[name].drifted and columns[name].statistic == 0.0 and columns[name].reason.startswith("constant")
    assert columns["constant_moved"].drifted
    assert columns["constant_reference"].drifted and columns["constant_reference"].reason == "reference is constant"


def test_empty_files_give_a_report() -> None:
    reference, current = _frames(100, seed=10)
    both = file_drift(reference.iloc[:0], current.iloc[:0])
    assert not both.dataset_drift and {c.reason for c in both.columns.values()} == {"no values on either side"}
    assert {c.missing_share_current for c in both.columns.values()} == {0.0}
    assert file_drift(reference, current.iloc[:0]).dataset_drift


def test_pandas_dtypes_bool_category_and_nullable_integers() -> None:
    rng = np.random.default_rng(11)
    def frame(p: float) -> pd.DataFrame:
        return pd.DataFrame({
            "flag": rng.random(400) < p,
            "tier": pd.Categorical(rng.choice(["gold", "silver"], 400), categories=["gold", "silver", "bronze"]),
            "count": pd.array(np.where(rng.random(400) < 0.1, None, rng.integers(0, 100, 400)), dtype="Int64"),
        })
    report = file_drift(frame(0.5), frame(0.8)).columns
    assert (report["flag"].kind, report["flag"].test, report["flag"].drifted) == ("categorical", "z", True)
    assert file_drift(frame(0.0), frame(1.0)).columns["flag"].unseen_categories == ("True",)
    assert (report["tier"].kind, report["tier"].test, report["tier"].drifted) == ("categorical", "z", False)
    assert report["count"].kind == "numeric" and 0.05 < report["count"].missing_share_reference < 0.15


def test_mismatched_column_sets_name_the_missing_columns() -> None:
    reference, current = _frames(50, seed=12)
    with pytest.raises(BadInputError, match=r"current lacks f3, f7; reference lacks extra"):
        file_drift(reference, current.drop(columns=["f3", "f7"]).assign(extra=1.0))
    with pytest.raises(BadInputError, match=r"same columns: reference lacks extra$"):
        file_drift(reference, current.assign(extra=1.0))
    with pytest.raises(BadInputError, match="'nope'|nope"):
        file_drift(reference, current, DriftOptions(column_tests={"nope": "ks"}))


def test_correction_lowers_only_p_value_thresholds_and_reports_the_effective_one() -> None:
    reference, current = _frames(500, seed=13, shifted=["f0"], shift_sd=0.15)
    reference["f49"] = current["f49"] = 1.0  # constant: judged without a test, so outside the family
    options = {"column_tests": {f"f{i}": "wasserstein" for i in range(40, 49)}}
    plain = file_drift(reference, current, DriftOptions(correction="none", **options)).columns
    strict = file_drift(reference, current, DriftOptions(correction="bonferroni", **options)).columns

    assert plain["f0"].p_value == strict["f0"].p_value and 0.05 / 40 < plain["f0"].p_value < 0.05
    assert plain["f0"].drifted and not strict["f0"].drifted
    assert strict["f0"].threshold == pytest.approx(0.05 / 40)  # 40 KS columns; distances, constants are not in the family
    assert strict["f45"].threshold == 0.1 and strict["f45"].p_value is None
    assert strict["f49"].threshold == 0.05 and strict["f49"].p_value == 1.0
