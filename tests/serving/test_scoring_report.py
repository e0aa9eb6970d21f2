"""Scoring a file or one record by hand: the validation report, the predictions, what gets logged."""

from __future__ import annotations

import numpy as np
import pytest

from opscore.access.actors import Actor
from opscore.config import replace
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import BadInputError, NotFoundError, PermissionDenied, TooLargeError
from opscore.serving import scoring_report, telemetry_queries
from opscore.serving.telemetry_queries import recent_predictions
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store

OPERATOR = Actor("tester", "operator", "dashboard")


@pytest.fixture
def writer(trained):
    writer = TelemetryWriter(trained).start()
    yield writer
    writer.close()


def logged(settings) -> list[str]:
    return recent_predictions(open_store(settings), limit=10_000)["source"].tolist()


def features(rows: int = 20, seed: int = 21):
    return credit_applications(n_rows=rows, seed=seed).drop(columns="default")


def test_column_report_counts_what_each_column_gets_wrong(trained):
    from opscore.models import registry

    schema = registry.get_version(open_store(trained), "v1").feature_schema
    frame = features().drop(columns="age").assign(region="north")
    frame["credit_score"] = frame["credit_score"].astype(object)
    frame.loc[[0, 1], "credit_score"] = "excellent"
    frame.loc[2, "loan_amount"] = 10_000_000
    frame.loc[3, "home_ownership"] = "houseboat"
    frame.loc[[4, 5, 6], "annual_income"] = np.nan
    empty_income = int(frame["annual_income"].isna().sum())  # the demo data has gaps of its own
    report = scoring_report.column_report(schema, frame).set_index("column")
    assert report.loc["age", "status"] == "missing"
    assert report.loc["region", "status"] == "unexpected (ignored)"
    assert report.loc["credit_score", ["status", "wrong type"]].tolist() == ["wrong type", 2]
    assert report.loc["loan_amount", ["status", "outside training range"]].tolist() == ["outside training range", 1]
    assert report.loc["home_ownership", "outside training range"] == 1
    assert report.loc["annual_income", ["status", "empty cells"]].tolist() == ["ok", empty_income]
    assert report.loc["loan_amount", "expected"].startswith("number, trained on ")


def test_a_good_upload_is_scored_and_logged_as_dashboard_traffic(trained, writer):
    raw = features(25).to_csv(index=False).encode()
    report = scoring_report.score_upload(trained, OPERATOR, "loans.csv", raw, writer)
    assert report.refused is None and report.version_id == "v1"
    assert report.scored.scored == 25 and report.scored.failed == 0
    predictions = report.predictions
    assert {"prediction", "probability_0", "probability_1", "version"} <= set(predictions.columns)
    assert np.allclose(predictions["probability_0"] + predictions["probability_1"], 1)
    assert logged(trained) == ["dashboard"] * 25
    assert report.csv_bytes().decode().splitlines()[0].endswith("prediction,probability_0,probability_1,version,error")


def test_rows_with_wrong_types_are_reported_by_line_and_not_logged(trained, writer):
    frame = features(10).astype({"age": object})
    frame.loc[[3, 7], "age"] = "forty"
    report = scoring_report.score_upload(trained, OPERATOR, "loans.csv", frame.to_csv(index=False).encode(), writer)
    assert report.scored.scored == 8 and report.scored.failed == 2
    errors = report.problems[report.problems.severity == "error"]
    assert errors["line"].tolist() == [5, 9]  # header is line 1, so row 3 sits on line 5
    assert set(errors["column"]) == {"age"} and errors["problem"].str.contains("expected a number").all()
    assert len(logged(trained)) == 8


def test_missing_columns_refuse_the_whole_file_and_log_nothing(trained, writer):
    raw = features(5).drop(columns=["age", "credit_score"]).to_csv(index=False).encode()
    report = scoring_report.score_upload(trained, OPERATOR, "loans.csv", raw, writer)
    assert report.scored is None and "'age', 'credit_score'" in report.refused
    assert report.predictions.empty and logged(trained) == []


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
    (b"age,income\n", "no data rows"),
])
def test_unreadable_uploads_are_refused_with_a_reason(trained, writer, raw, message):
    with pytest.raises(BadInputError, match=message):
        scoring_report.score_upload(trained, OPERATOR, "upload.csv", raw, writer)
    assert logged(trained) == []


def test_oversized_uploads_are_refused(trained, writer):
    with pytest.raises(TooLargeError, match="limit is 1 MB"):
        scoring_report.score_upload(replace(trained, dashboard_upload_mb=1), OPERATOR, "big.csv", b"a\n" + b"1\n" * 600_000,
                                    writer)


def test_record_form_comes_from_the_production_schema(trained, writer):
    form = scoring_report.record_form(trained)
    assert form.version_id == "v1"
    assert [f.spec.name for f in form.fields] == features().columns.tolist()
    defaults = {f.spec.name: f.default for f in form.fields}
    employment = next(f for f in form.fields if f.spec.name == "employment_type")
    assert employment.default in employment.spec.categories
    report = scoring_report.score_record(trained, OPERATOR, defaults, writer)
    prediction, probabilities, error = report.first_row()
    assert error == "" and prediction in (0, 1)
    assert set(probabilities) == {"0", "1"} and sum(probabilities.values()) == pytest.approx(1)
    assert logged(trained) == ["dashboard"]


def test_no_production_version_means_nothing_to_score(workspace):
    with pytest.raises(NotFoundError, match="no production version"):
        scoring_report.record_form(workspace)


def test_a_viewer_cannot_write_a_prediction_row(trained, writer):
    viewer = Actor("viewer", "viewer", "dashboard")
    with pytest.raises(PermissionDenied, match="needs an operator"):
        scoring_report.score_upload(trained, viewer, "loans.csv", features(5).to_csv(index=False).encode(), writer)
    defaults = {f.spec.name: f.default for f in scoring_report.record_form(trained).fields}
    with pytest.raises(PermissionDenied, match="needs an operator"):
        scoring_report.score_record(trained, viewer, defaults, writer)
    assert writer.close()
    assert logged(trained) == []
    assert telemetry_queries.window_percentiles(open_store(trained), 0, 4e9)["count"] == 0
