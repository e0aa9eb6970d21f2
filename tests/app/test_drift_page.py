"""The Drift page on the demo-like workspace: verdict, per-column table, and every chart rendered."""

from app_under_test import run_page


def test_drift_page_shows_the_verdict_table_and_charts(demo_workspace):
    at = run_page("pages/drift.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dataset drift"] in {"yes", "no"}
    assert metrics["Drifted columns"].endswith("of 11")
    table = at.dataframe[0].value
    assert list(table.columns) == ["type", "test", "measure", "statistic", "threshold", "p_value", "drifted",
                                   "missing_share_current", "note"]
    assert len(table) == 11
    # Distance tests show a dash, never "None"; hypothesis tests their p-value.
    distance = table["test"].isin(["wasserstein", "jensenshannon", "psi"])
    assert set(table.loc[distance, "p_value"]) <= {"—"}
    assert all(0 <= float(p) <= 1 for p in table.loc[~distance, "p_value"])
    assert len(at.get("plotly_chart")) == 6
    at.selectbox(key="drift_column").set_value("prediction").run()
    assert not at.exception
    at.selectbox(key="drift_window").set_value("Last 7 days").run()
    assert not at.exception and len(at.get("plotly_chart")) == 6


def test_drift_page_says_what_is_missing_on_an_empty_workspace(workspace):
    at = run_page("pages/drift.py")
    assert not at.exception
    assert any("No version has served production" in i.value for i in at.info)
