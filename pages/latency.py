"""Latency: p50/p95/p99, throughput, failed and refused requests over time, per version, with production changes."""

from __future__ import annotations

import streamlit as st

from opscore.views import latency as latency_view
from opscore.views import plots
from opscore.views.formatting import when
from opscore.views.latency import LatencyReport
from pages import _shared

_shared.run_inside_dashboard()
st.title("Latency")
window, version, source = _shared.window_label(), _shared.version_filter(), _shared.source_filter()
exact_asked = st.session_state.get("exact_asked") == (window, version, source)
report: LatencyReport = _shared.cached(latency_view.latency_report, window, version, exact_asked, source)
traffic = report.source
st.caption(f"{traffic.label} traffic, {traffic.counts}; {report.window.label} ({when(report.window.start)} → now), "
           f"{'version ' + version if version else 'all versions'}; one point per "
           f"{report.window.step_seconds // 60} min. Dashed lines mark production changes.")

estimated, exact = report.estimated, report.exact
unit = "Requests" if traffic.unit == "request" else "Rows scored"
# Traffic and what went wrong with it first (failed beside refused), then the latency figures.
tiles = st.columns(4)
tiles[0].metric(unit, f"{estimated['count']:,}", border=True, help=traffic.counts)
tiles[1].metric("Rows", f"{estimated['rows']:,}", border=True, help="Rows the requests carried")
tiles[2].metric("Error rate", f"{estimated['errors'] / estimated['count'] * 100:.2f} %"
                if estimated["count"] else "—", border=True, help=f"{estimated['errors']:,} failed: the model call failed")
tiles[3].metric("Refused", f"{report.refused_total:,}", border=True,
                help="Requests answered 4xx before any prediction: malformed body, invalid rows, too large")
tiles = st.columns(4)
tiles[0].metric("p50", f"{estimated['p50_ms']:,.1f} ms" if estimated["count"] else "—", border=True,
                help="Estimated from per-minute latency histograms")
tiles[1].metric("p95 (estimated)", f"{estimated['p95_ms']:,.1f} ms" if estimated["count"] else "—", border=True,
                help="From per-minute histograms (4 % wide buckets): cheap at any traffic")
with tiles[2]:
    if exact is not None:
        st.metric("p95 (exact)", f"{exact['p95_ms']:,.1f} ms" if exact["count"] else "—", border=True,
                  help=f"From the raw rows of all {exact['count']:,} requests in the window, one latency each")
    elif report.exact_needs_request:
        st.metric("p95 (exact)", "—", border=True, help="Reads the raw rows of every request in the window")
        if st.button(f"Compute from {estimated['rows']:,} rows", key="exact"):
            st.session_state["exact_asked"] = (window, version, source)
            st.rerun()
    else:
        st.metric("p95 (exact)", "—", border=True)
tiles[3].metric("p99", f"{estimated['p99_ms']:,.1f} ms" if estimated["count"] else "—", border=True)

empty = (f"No {traffic.label} traffic logged in the {report.window.label.lower()}" if report.window.label != "All time"
         else f"No {traffic.label} traffic logged yet") + (
    ": send traffic with opscore simulate, or score a CSV on Live predictions")
st.plotly_chart(plots.latency_percentiles(report.series, report.markers, empty_message=empty,
                                          title=traffic.latency_title), key="percentiles")
left, right = st.columns(2)
left.plotly_chart(plots.throughput(report.series, report.markers, empty_message=empty,
                                   title=traffic.throughput_title,
                                   y_title="requests per second" if traffic.unit == "request" else "rows per second"),
                  key="throughput")
if traffic.unit == "request":
    right.plotly_chart(plots.throughput(report.series, report.markers, empty_message=empty, column="rows_per_s",
                                        title=f"Rows scored per second ({traffic.label}, every row of every request)",
                                        y_title="rows per second"), key="rows")
left, right = st.columns(2)
left.plotly_chart(plots.error_rate(report.series, report.markers, empty_message=empty, title=traffic.error_title),
                  key="errors")
right.plotly_chart(plots.refusals(report.refused_series, latency_view.REFUSAL_LABELS, report.markers,
                                  step_seconds=report.window.step_seconds,
                                  title=f"Refused requests by reason ({traffic.label}: answered 4xx, nothing predicted)"),
                   key="refused")
if report.refused_total:
    st.dataframe(report.refused, hide_index=True, column_config={
        "requests": st.column_config.NumberColumn("refused requests", format="localized")})

st.subheader("Per version in this window")
if report.per_version.empty:
    st.caption("No version answered requests in this window.")
else:
    st.dataframe(report.per_version, hide_index=True, column_config={
        "requests": st.column_config.NumberColumn(format="localized", help=traffic.counts),
        "rows": st.column_config.NumberColumn(format="localized"),
        "errors": st.column_config.NumberColumn(format="localized", help="failed: the model call failed"),
        **{c: st.column_config.NumberColumn(format="%.2f")
           for c in ("error rate (%)", "p50 (ms)", "p95 (ms)", "p99 (ms)", "mean (ms)")},
    })
