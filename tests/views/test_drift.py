"""The Drift page's view model: one window of live traffic, its per-column table and its windows."""

from opscore.monitoring.live_drift import live_drift
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
    assert page.accuracy.version_id == "v1"
