"""Drift: production's live traffic against its reference profile, per column and over time."""

from __future__ import annotations

import streamlit as st

from opscore.views import drift as drift_view
from opscore.views import drift_plots, performance_plots
from opscore.views.formatting import when
from opscore.views.windows import WINDOWS
from pages import _shared

_shared.run_inside_dashboard()
st.title("Drift")
if not _shared.cached(drift_view.has_production):
    st.info("No version has served production yet: drift needs a version's traffic.", icon=":material/info:")
    st.stop()
labels = list(WINDOWS)
window = st.selectbox("Window", labels, index=labels.index(_shared.window_label()), key="drift_window")
source = _shared.source_filter()
with st.spinner("Summing the rollups…"):
    view = _shared.cached(drift_view.drift_page, window, _shared.version_filter(), source)
report = view.drift.report
st.caption(f"Version {view.drift.version}, {view.source.label} traffic {when(view.window.start)} → {when(view.window.end)}, "
           f"{view.drift.rows:,} rows, against the version's reference profile.")

verdict, share, prediction = st.columns(3)
verdict.metric("Dataset drift", "yes" if report.dataset_drift else "no",
               help=f"Drifted when at least {report.threshold_share:.0%} of the columns drifted")
share.metric("Drifted columns", f"{len(report.drifted_columns)} of {len(report.columns)}",
             help=f"share {report.drift_share:.2f}")
scored = view.drift.prediction_drift
prediction.metric("Prediction drift", "—" if scored is None else ("yes" if scored.drifted else "no"),
                  help="The prediction score's distribution against the holdout's")

st.dataframe(view.table(), key="drift_table", column_config={
    "measure": st.column_config.TextColumn("statistic is", help="What the test measures"),
    "p_value": st.column_config.TextColumn(
        "p-value", help="Hypothesis tests (KS, chi-square, Z) only; distance tests (Wasserstein, Jensen-Shannon, "
                        "PSI) have none: their statistic itself is held against the threshold"),
    "statistic": st.column_config.NumberColumn(format="%.4f"),
    "threshold": st.column_config.NumberColumn(format="%.4g", help="p-value tests: drifted below it (after the "
                                                                    "correction); distances: drifted at or above it"),
    "missing_share_current": st.column_config.NumberColumn("missing share", format="percent"),
    "note": st.column_config.TextColumn("note", help="Why a verdict is not a plain test result; unseen categories"),
})

columns = [*report.columns, "prediction"]
chosen = st.selectbox("Column", columns, index=columns.index(report.drifted_columns[0]) if report.drifted_columns
                      else 0, key="drift_column")
counts = _shared.cached(drift_view.distribution_of, view.drift.version, chosen, view.window.start, view.window.end,
                        source)
st.plotly_chart(drift_plots.column_distribution_figure(chosen, counts), key="drift_distribution")
st.plotly_chart(drift_plots.drift_heatmap(view.over_time, view.markers), key="drift_heatmap")
left, right = st.columns(2)
left.plotly_chart(drift_plots.multivariate_figure(view.multivariate, view.markers), key="drift_multivariate")
right.plotly_chart(drift_plots.quality_figure(view.quality), key="drift_quality")
left, right = st.columns(2)
left.plotly_chart(performance_plots.accuracy_figure(view.accuracy), key="drift_accuracy")
right.plotly_chart(performance_plots.estimated_accuracy_figure(view.estimate), key="drift_estimate")
