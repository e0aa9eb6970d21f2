import numpy as np
import pytest
from statsmodels.stats import multitest

from opscore.monitoring.corrections import correction_factor


def _drifted(p_values: np.ndarray, alpha: float, method: str) -> np.ndarray:
    return p_values < alpha * correction_factor(p_values, [alpha] * len(p_values), method)


def test_hand_checked_benjamini_hochberg_and_bonferroni() -> None:
    p = np.array([0.01, 0.02, 0.03, 0.2])
    # BH at 0.05 over 4: sorted p against 0.0125, 0.025, 0.0375, 0.05 -> the first three pass: k = 3.
    assert correction_factor(p, [0.05] * 4, "bh") == 0.75
    assert _drifted(p, 0.05, "bh").tolist() == [True, True, True, False]
    assert correction_factor(p, [0.05] * 4, "bonferroni") == 0.25
    assert _drifted(p, 0.05, "bonferroni").tolist() == [True, False, False, False]
    assert _drifted(p, 0.05, "none").tolist() == [True, True, True, False]


def test_bh_with_nothing_passing_lowers_as_far_as_bonferroni() -> None:
    p = np.array([0.04, 0.3, 0.5])
    assert correction_factor(p, [0.05] * 3, "bh") == pytest.approx(1 / 3)
    assert not _drifted(p, 0.05, "bh").any()


def test_columns_with_their_own_threshold_are_ranked_by_p_over_threshold() -> None:
    # ratios 0.9 and 0.8: the larger passes 2/2, so nothing is lowered.
    assert correction_factor([0.009, 0.04], [0.01, 0.05], "bh") == 1.0


def test_no_p_value_columns_means_no_correction() -> None:
    assert correction_factor([], [], "bh") == correction_factor([], [], "bonferroni") == 1.0


@pytest.mark.parametrize(("method", "statsmodels_method"), [("bh", "fdr_bh"), ("bonferroni", "bonferroni")])
def test_rejections_match_statsmodels(method: str, statsmodels_method: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(1, 60))
        p = np.concatenate([rng.uniform(size=m), rng.uniform(0, 0.01, size=int(rng.integers(0, 10)))])
        expected, *_ = multitest.multipletests(p, alpha=0.05, method=statsmodels_method)
        assert _drifted(p, 0.05, method).tolist() == expected.tolist()
