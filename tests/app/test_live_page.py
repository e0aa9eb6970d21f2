"""Live predictions page: CSV upload (good and bad), the single-record form, the live feed."""

from __future__ import annotations

import pytest
from app_under_test import OPERATOR, run_page

from opscore.demo.credit_data import credit_applications
from opscore.serving.telemetry_queries import recent_predictions
from opscore.store import open_store

LIVE = "pages/live.py"


def dashboard_rows(settings) -> int:
    logged = recent_predictions(open_store(settings), limit=100_000)
    return int((logged["source"] == "dashboard").sum())


def good_csv(rows: int = 40) -> bytes:
    return credit_applications(n_rows=rows, seed=31).drop(columns="default").to_csv(index=False).encode()


def upload(at, name: str, data: bytes, mime: str = "text/csv"):
    return at.file_uploader(key="csv").upload(name, data, mime).run()


def test_the_live_feed_shows_the_newest_predictions(demo_workspace):
    at = run_page(LIVE)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Versions answering"] == "v2, v1" and metrics["Error rate"] == "0.00 %"
    feed = at.dataframe[0].value
    assert len(feed) == 50 and set(feed["version"]) == {"v2"} and feed["source"].eq("api").all()
    assert at.get("plotly_chart")[0].proto.spec


def test_a_good_upload_is_validated_scored_logged_and_downloadable(demo_workspace):
    at = upload(run_page(LIVE, OPERATOR), "loans.csv", good_csv(40))
    assert not at.exception and not at.error
    assert "Scored 40 of 40 row(s) with v2" in at.success[0].value
    columns, predictions = at.dataframe[1].value, at.dataframe[2].value
    assert columns["status"].isin(["ok", "outside training range"]).all()
    assert len(predictions) == 40
    assert {"prediction", "probability_0", "probability_1", "version"} <= set(predictions.columns)
    assert predictions["version"].eq("v2").all()
    assert at.get("download_button")
    assert dashboard_rows(demo_workspace) == 40
    at.run()  # a rerun (any widget, the feed) must not log the same file again
    assert dashboard_rows(demo_workspace) == 40


def test_rows_with_wrong_types_are_named_and_not_logged(demo_workspace):
    frame = credit_applications(n_rows=10, seed=32).drop(columns="default").astype({"credit_score": object})
    frame["credit_score"] = "excellent"
    at = upload(run_page(LIVE, OPERATOR), "loans.csv", frame.to_csv(index=False).encode())
    assert not at.exception
    assert "0 of 10 row(s)" in at.warning[0].value and "10 row(s) failed validation" in at.warning[0].value
    columns = at.dataframe[1].value.set_index("column")
    assert columns.loc["credit_score", "status"] == "wrong type"
    problems = at.dataframe[2].value
    assert problems["column"].eq("credit_score").all()
    assert problems["problem"].str.contains("expected a number, got the text 'excellent'").all()
    assert dashboard_rows(demo_workspace) == 0


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.csv", b"", "empty.csv is empty"),
    ("loans.csv", b"customer,amount\nann,100\nbob,200\n", "lacks column(s)"),
    ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "is not a CSV file"),
    ("big.csv", b"age\n" + b"1\n" * (25 * 1024 * 1024), "the limit is 25 MB"),
], ids=["empty", "wrong-columns", "not-a-csv", "50MB"])
def test_bad_uploads_get_a_readable_error_and_log_nothing(demo_workspace, name, data, message):
    at = upload(run_page(LIVE, OPERATOR), name, data)
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not any("Traceback" in e.value for e in at.error)
    assert not at.get("download_button")
    assert dashboard_rows(demo_workspace) == 0


def test_wrong_columns_still_get_a_column_report(demo_workspace):
    at = upload(run_page(LIVE, OPERATOR), "loans.csv", b"customer,amount\nann,100\n")
    report = at.dataframe[1].value.set_index("column")
    assert report.loc["age", "status"] == "missing"
    assert report.loc["customer", "status"] == "unexpected (ignored)"


def test_the_single_record_form_scores_one_logged_row(demo_workspace):
    at = run_page(LIVE, OPERATOR)
    assert at.number_input(key="field_age").value > 0
    at.number_input(key="field_credit_score").set_value(820)
    at.selectbox(key="field_employment_type").set_value("salaried")
    at.button(key="predict_record").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prediction"] in {"0", "1"}
    assert float(metrics["P(0)"]) + float(metrics["P(1)"]) == pytest.approx(1, abs=0.002)
    logged = recent_predictions(open_store(demo_workspace), limit=1)
    assert logged["source"].item() == "dashboard" and logged["version_id"].item() == "v2"


def test_a_viewer_sees_scoring_locked_and_cannot_log_a_row(demo_workspace):
    at = run_page(LIVE)
    assert at.get("file_uploader")[0].proto.disabled and at.button(key="predict_record").disabled
    notes = [c.value for c in at.caption if "needs an operator" in c.value]
    assert any("Scoring a file" in n for n in notes) and any("Scoring a record" in n for n in notes)
    assert dashboard_rows(demo_workspace) == 0
