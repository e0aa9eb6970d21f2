"""The Drift page's view model: one window of live traffic, its per-column table and its windows."""

import pandas as pd

from opscore.monitoring.live_drift import drift_over_time, live_drift, multivariate_over_time
from opscore.views.drift import TABLE_COLUMNS, drift_page


def test_the_page_reads_productions_traffic_over_the_window(served):
    page = drift_page(served, "Last 24 hours")
    assert page.drift.version == "v1" and page.drift.rows == 120
    assert page.window.start <= page.window.end - 86400
    table = page.table()
    assert list(table.columns) == TABLE_COLUMNS and len(table) == len(page.drift.report.columns)
    assert list(table["drifted"]) == sorted(table["drifted"], reverse=True)
    same = live_drift(served, page.window.start, page.window.end, version="v1").report.to_dict()
    assert page.drift.report.to_dict() == same
    assert sum(r.rows for r in page.over_time) == 120 and page.every == 3600
    windows = drift_over_time(served, page.window.start, page.window.end, 3600.0, version="v1")
    assert [r.report.to_dict() for r in page.over_time] == [r.report.to_dict() for r in windows]
    pd.testing.assert_frame_equal(page.multivariate, multivariate_over_time(served, page.window.start, page.window.end,
                                                                            3600.0, version="v1"))
    assert page.accuracy.version_id == "v1"


def _log_batch_rows(settings, rows: int) -> None:
    """Production's version scores a file (source "batch"), as ``opscore predict`` would log it."""
    from opscore.demo.credit_data import credit_applications
    from opscore.serving.predictor import score_frame
    from opscore.serving.telemetry_writer import TelemetryWriter

    writer = TelemetryWriter(settings).start()
    frame = credit_applications(n_rows=rows, seed=11, shift=1.0).drop(columns="default")
    score_frame(settings, frame, source="batch", telemetry=writer)
    assert writer.close()


def test_the_page_reads_only_the_chosen_traffic_source(served):
    _log_batch_rows(served, 300)
    api = drift_page(served, "Last 24 hours")
    batch = drift_page(served, "Last 24 hours", source="batch")
    assert api.source.name == "api" and api.drift.rows == 120
    assert batch.source.label == "batch scoring" and batch.drift.rows == 300
    assert sum(r.rows for r in batch.over_time) == 300
    assert int(batch.multivariate["rows"].sum()) == 300
    assert batch.drift.report.to_dict() != api.drift.report.to_dict()
    assert batch.drift.report.to_dict() == live_drift(served, batch.window.start, batch.window.end, version="v1",
                                                      source="batch").report.to_dict()


def test_distance_tests_show_a_dash_and_their_statistics_name_never_none(served):
    table = drift_page(served, "Last 24 hours").table()
    distance = table["test"].isin(["wasserstein", "jensenshannon", "psi"])
    assert distance.any()  # 1,200 reference rows: Wasserstein and Jensen-Shannon
    assert set(table.loc[distance, "p_value"]) == {"—"}
    assert set(table.loc[distance, "measure"]) <= {"normed Wasserstein distance", "Jensen-Shannon distance",
                                                   "population stability index"}
    assert all(0 <= float(p) <= 1 for p in table.loc[~distance, "p_value"])
    assert "None" not in table.astype(str).to_numpy()
