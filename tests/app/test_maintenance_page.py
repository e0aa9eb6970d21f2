"""Maintenance page: the health report, capacity and the scorecard; the queue for an operator, read-only for a viewer."""

from __future__ import annotations

from app_under_test import OPERATOR, run_page

from opscore.config import load_settings
from opscore.monitoring.health import CHECKS
from opscore.operations.maturity import AREAS, maturity_scorecard

PAGE = "pages/maintenance.py"


def table_with(at, column: str):
    """The page's table that has ``column`` (AppTest finds tables by position, not by key)."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def test_reports_render_for_a_viewer(demo_workspace) -> None:
    at = run_page(PAGE)
    assert not at.exception and not at.error, [e.value for e in at.error]
    charts = {chart.key for chart in at.get("plotly_chart")}
    assert {"capacity_heatmap", "capacity_projection", "maturity_chart"} <= charts
    scorecard = table_with(at, "next_step")
    expected = maturity_scorecard(load_settings()).to_df()
    assert list(scorecard["area"]) == list(AREAS) and list(scorecard["level"]) == list(expected["level"])
    tiles = [m.value for m in at.markdown if m.value.startswith("**") and "  \n:material/" in m.value]
    assert len(tiles) == len(CHECKS)


def test_reports_render_for_an_operator(demo_workspace) -> None:
    at = run_page(PAGE, OPERATOR)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert table_with(at, "figure").set_index("figure").loc["busiest hour", "value"] != "-"
