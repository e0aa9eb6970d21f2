"""The Maintenance page's capacity and scorecard sections, assembled in one call without Streamlit."""

from __future__ import annotations

from opscore.operations.capacity import ServiceTime
from opscore.operations.maturity import AREAS
from opscore.views.maintenance_reports import maintenance_reports


def test_reports_on_a_served_workspace(served):
    reports = maintenance_reports(served, service=ServiceTime("v1", 1, 0.004, 1))
    table = reports.capacity_table.set_index("figure")
    assert table.loc["one replica at most", "value"] == "250.00 requests/s"
    assert table.loc["busiest hour", "value"] != "-" and reports.heatmap.data
    # One day of traffic: no projection, and the figure says why.
    assert not reports.projection.data and any("projection needs 3" in n for n in reports.notes)
    assert list(reports.scorecard["area"]) == list(AREAS)
    assert reports.scorecard.set_index("area").loc["monitoring", "level"] == "standard"
    assert list(reports.maturity.data[0].y) == list(AREAS)


def test_reports_on_an_empty_workspace_say_there_is_no_traffic(workspace):
    reports = maintenance_reports(workspace)
    assert reports.capacity_table.set_index("figure").loc["mean load", "value"] == "0.00 requests/s"
    assert "no API traffic" in reports.notes[0]
