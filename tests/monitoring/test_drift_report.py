import json

import pytest

from opscore.monitoring.drift_report import ColumnDrift, DriftReport

CONTRACT_COLUMN_KEYS = {
    "type": str, "test": str, "statistic": float, "p_value": (float, type(None)), "threshold": float,
    "drifted": bool, "missing_share_reference": float, "missing_share_current": float,
}


def _column(drifted: bool, **extra: object) -> ColumnDrift:
    fields = {"kind": "numeric", "test": "ks", "statistic": 0.2, "p_value": 0.01, "threshold": 0.05, "drifted": drifted,
              "missing_share_reference": 0.0, "missing_share_current": 0.1}
    return ColumnDrift(**(fields | extra))


def test_to_dict_is_the_cli_json_contract() -> None:
    report = DriftReport(
        {"a": _column(True), "b": _column(False, kind="categorical", test="jensenshannon", p_value=None, unseen_categories=("x",)),
         "c": _column(True, reason="current has no values (all missing); nothing to compare")},
        threshold_share=0.5,
    )

    out = json.loads(json.dumps(report.to_dict(), allow_nan=False))

    assert set(out) == {"dataset_drift", "drift_share", "threshold_share", "columns"}
    assert out["dataset_drift"] is True and out["drift_share"] == pytest.approx(2 / 3) and out["threshold_share"] == 0.5
    for column in out["columns"].values():
        assert set(CONTRACT_COLUMN_KEYS) <= set(column) <= set(CONTRACT_COLUMN_KEYS) | {"reason", "unseen_categories"}
        for key, kind in CONTRACT_COLUMN_KEYS.items():
            assert isinstance(column[key], kind), key
    assert out["columns"]["b"]["unseen_categories"] == ["x"] and out["columns"]["b"]["type"] == "categorical"
    assert "reason" in out["columns"]["c"] and "reason" not in out["columns"]["a"]


@pytest.mark.parametrize(("drifted", "expected"), [(1, False), (2, True), (3, True)])
def test_dataset_drifts_when_the_drifted_share_reaches_the_threshold(drifted: int, expected: bool) -> None:
    report = DriftReport({str(i): _column(i < drifted) for i in range(4)}, threshold_share=0.5)
    assert report.dataset_drift is expected
    assert report.drifted_columns == [str(i) for i in range(drifted)]


def test_numpy_values_come_out_as_plain_json_types() -> None:
    import numpy as np

    column = _column(np.bool_(True), statistic=np.float64(0.3), p_value=np.float64(0.001))
    out = DriftReport({"a": column}).to_dict()
    assert json.dumps(out) and type(out["columns"]["a"]["drifted"]) is bool


def test_to_df_has_one_row_per_column_in_order() -> None:
    table = DriftReport({"z": _column(True), "a": _column(False, unseen_categories=("new",))}).to_df()
    assert table.index.tolist() == ["z", "a"]
    assert table.loc["z", "drifted"] and not table.loc["a", "drifted"]
    assert {"type", "test", "statistic", "p_value", "threshold", "reason", "unseen_categories"} <= set(table.columns)
