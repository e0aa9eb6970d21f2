"""Latency: p50/p95/p99, throughput and error rate over time, per version, with production changes."""

from __future__ import annotations

import streamlit as st

from opscore.views import latency as latency_view
from opscore.views import plots
from opscore.views.formatting import when
from opscore.views.latency import LatencyReport
from pages import _shared

_shared.run_inside_dashboard()
st.title("Latency")
window, version = _shared.window_label(), _shared.version_filter()
exact_asked = st.session_state.get("exact_asked") == (window, version)
report: LatencyReport = _shared.cached(latency_view.latency_report, window, version, exact_asked)
st.caption(f"{report.window.label} ({when(report.window.start)} → now), "
           f"{'version ' + version if version else 'all versions'}; one point per "
           f"{report.window.step_seconds // 60} min. Dashed lines mark production changes.")

estimated, exact = report.estimated, report.exact
tiles = st.columns(6)
tiles[0].metric("Requests", f"{estimated['count']:,}", border=True)
tiles[1].metric("p50", f"{estimated['p50_ms']:,.1f} ms" if estimated["count"] else "—", border=True,
                help="Estimated from per-minute latency histograms")
tiles[2].metric("p95 (estimated)", f"{estimated['p95_ms']:,.1f} ms" if estimated["count"] else "—", border=True,
                help="From per-minute histograms (4 % wide buckets): cheap at any traffic")
with tiles[3]:
    if exact is not None:
        st.metric("p95 (exact)", f"{exact['p95_ms']:,.1f} ms" if exact["count"] else "—", border=True,
                  help=f"From all {exact['count']:,} raw rows in the window")
    elif report.exact_needs_request:
        st.metric("p95 (exact)", "—", border=True, help="Reads every raw row in the window")
        if st.button(f"Compute from {estimated['count']:,} rows", key="exact"):
            st.session_state["exact_asked"] = (window, version)
            st.rerun()
    else:
        st.metric("p95 (exact)", "—", border=True)
tiles[4].metric("p99", f"{estimated['p99_ms']:,.1f} ms" if estimated["count"] else "—", border=True)
tiles[5].metric("Error rate", f"{estimated['errors'] / estimated['count'] * 100:.2f} %"
                if estimated["count"] else "—", border=True)

empty = (f"No requests logged in the {report.window.label.lower()}" if report.window.label != "All time"
         else "No requests logged yet") + ": send traffic with opscore simulate, or score a CSV on Live predictions"
st.plotly_chart(plots.latency_percentiles(report.series, report.markers, empty_message=empty), key="percentiles")
left, right = st.columns(2)
left.plotly_chart(plots.throughput(report.series, report.markers, empty_message=empty), key="throughput")
right.plotly_chart(plots.error_rate(report.series, report.markers, empty_message=empty), key="errors")

st.subheader("Per version in this window")
if report.per_version.empty:
    st.caption("No version answered requests in this window.")
else:
    st.dataframe(report.per_version, hide_index=True, column_config={
        "requests": st.column_config.NumberColumn(format="localized"),
        "errors": st.column_config.NumberColumn(format="localized"),
        **{c: st.column_config.NumberColumn(format="%.2f")
           for c in ("error rate (%)", "p50 (ms)", "p95 (ms)", "p99 (ms)", "mean (ms)")},
    })
