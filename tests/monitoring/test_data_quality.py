"""Data quality from the rollups: missing, out of range and outlier shares, rejected rows, findings."""

from __future__ import annotations

import time

import numpy as np
import pytest

from opscore.config import replace
from opscore.data.features import validate_records
from opscore.exceptions import BadInputError
from opscore.models.artifacts import read_document
from opscore.monitoring.data_quality import data_quality, quality_over_time
from opscore.serving.predictor import load_version, request_records
from opscore.serving.telemetry_writer import INVALID_ROWS, TelemetryWriter, rejected_cells_of
from tests.conftest import OPERATOR


@pytest.fixture
def live(any_workspace, demo_frame):
    from opscore.models.training import train_version

    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    return any_workspace


def _log(settings, features: list[dict]) -> None:
    loaded = load_version(settings, "v1")
    scores = loaded.predict_frame(validate_records(loaded.schema, features).frame)
    writer = TelemetryWriter(settings).start()
    writer.submit_many(request_records("v1", features, scores, source="api", latency_ms=3.0,
                                       request_ids=[f"r{i}" for i in range(len(features))], at=time.time()))
    bad = [{**features[0], "age": "old"}, {**features[1], "age": None, "credit_score": float("inf")}]
    writer.count_refusal("v1", INVALID_ROWS, cells=rejected_cells_of(validate_records(loaded.schema, bad).errors))
    assert writer.close()


def test_known_missing_out_of_range_and_outlier_shares_and_rejected_rows(live, demo_frame):
    profile = read_document(live.model_store_path, "v1", "reference_profile.json")["columns"]["age"]
    iqr = profile["q3"] - profile["q1"]
    rows = demo_frame.drop(columns="default").head(200).astype(object).where(lambda f: f.notna(), None)
    features = rows.to_dict(orient="records")
    ages = np.full(200, profile["q1"])
    ages[:30] = np.nan  # 15 % missing
    ages[30:50] = profile["max"] + 1  # 10 % above the range, and outliers
    ages[50:54] = profile["q1"] - 1.6 * iqr  # 2 % low outliers, inside the range or below it
    for record, age in zip(features, ages, strict=True):
        record["age"] = None if np.isnan(age) else float(age)
    start = time.time() - 1
    _log(live, features)

    report = data_quality(live, start, time.time() + 1)
    age = report.columns["age"]
    assert report.rows == 200 and age.rows == 200
    assert age.missing_share == pytest.approx(0.15)
    assert age.outlier_share == pytest.approx(24 / 200)
    assert age.out_of_range_share >= 0.10
    assert report.rejected == {("age", "not_a_number"): 1, ("credit_score", "not_finite"): 1}
    assert any(f.startswith("age: 15.0% missing") for f in report.findings)
    assert any(f.startswith("age: 12.0% outliers") for f in report.findings)
    assert not any(f.startswith("loan_term_months") for f in report.findings)
    assert list(report.to_df().columns) == ["kind", "rows", "missing_share", "out_of_range_share", "outlier_share",
                                            "unseen_share"]

    relaxed = data_quality(replace(live, quality_missing_share=0.2, quality_outlier_share=0.2), start, time.time() + 1)
    assert not any("missing" in f or "outliers" in f for f in relaxed.findings)

    series = quality_over_time(live, start - 1800, time.time() + 1, 600)
    assert list(series.columns) == ["start", "column", "rows", "missing_share", "out_of_range_share", "outlier_share"]
    assert series.loc[series["column"] == "age", "rows"].sum() == 200
    with pytest.raises(BadInputError):
        quality_over_time(live, start, start + 10, 0)
