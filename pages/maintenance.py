"""Maintenance: the latest health report, capacity and the maturity scorecard."""

from __future__ import annotations

import streamlit as st

from opscore.views import maintenance_reports
from opscore.views import overview as overview_view
from opscore.views.formatting import when
from opscore.views.maintenance_reports import MaintenanceReports
from pages import _shared

DAY = 86_400.0

_shared.run_inside_dashboard()
st.title("Maintenance")
st.caption("The five health checks, how much capacity the traffic needs, and how far each operational area "
           "has come.")
_shared.show_flash()

st.subheader("Latest health report")
health = _shared.cached(overview_view.health_section, DAY)
st.caption(f"Overall **{health.overall}**, the five checks over the last 24 hours of API traffic, checked "
           f"{when(health.checked_at)}. Also `opscore health`.")
_shared.health_tiles(health, "Every issue and what to do")

with st.spinner("Timing production's model for the capacity plan…"):
    reports: MaintenanceReports = _shared.cached(maintenance_reports.maintenance_reports)

st.subheader("Capacity")
st.caption("From the API traffic of the last four weeks and the service time of production's model on this host.")
left, right = st.columns(2)
left.plotly_chart(reports.heatmap, key="capacity_heatmap")
right.plotly_chart(reports.projection, key="capacity_projection")
replicas = "—" if reports.plan.replicas_needed is None else str(reports.plan.replicas_needed)
st.metric(f"Replicas for p95 under {reports.plan.p95_target_ms:.0f} ms at the projected busiest hour", replicas)
st.dataframe(reports.capacity_table, hide_index=True, key="capacity_table")
for note in reports.notes:
    st.caption(f":material/info: {note}")

st.subheader("Maturity scorecard")
st.plotly_chart(reports.maturity, key="maturity_chart")
st.dataframe(reports.scorecard.drop(columns="score"), hide_index=True, key="maturity_table",
             column_config={"next_step": st.column_config.TextColumn("next step")})
