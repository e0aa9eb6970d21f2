"""Overview: health at a glance, each figure linking to the page that explains it."""

from __future__ import annotations

import time

import streamlit as st

from opscore.exceptions import OpscoreError
from opscore.models import version_metrics
from opscore.views import overview as overview_view
from opscore.views import plots
from opscore.views import versions as version_history
from opscore.views.formatting import duration, when
from opscore.views.overview import Overview
from pages import _shared

_shared.run_inside_dashboard()
st.title("Overview")
_shared.show_flash()
view: Overview = _shared.cached(overview_view.overview, _shared.window_label(), _shared.version_filter(),
                                _shared.source_filter())

if view.versions == 0:
    st.info("This workspace has no model yet.", icon=":material/info:")
    with st.container(border=True):
        st.markdown("#### Build the demo workspace")
        st.markdown(
            "Trains a credit-risk model on generated loan applications, serves it, sends realistic traffic "
            "(with a drift episode and delayed labels) and registers a second version — through the same "
            "pipeline as `opscore demo`."
        )
        if st.button("Build the demo workspace", key="build_demo", type="primary", icon=":material/play_arrow:",
                     disabled=not _shared.is_operator()):
            with st.status("Building the demo workspace…", expanded=True) as status:
                bar = st.progress(0.0, text="starting")

                def progress(stage: str, fraction: float) -> None:
                    bar.progress(min(max(fraction, 0.0), 1.0), text=stage)

                try:
                    # Imported on demand: the demo pulls in the simulator, which no other view needs.
                    from opscore.demo.workspace import build_demo

                    build_demo(_shared.settings(), _shared.actor(), progress=progress)
                except OpscoreError as exc:
                    status.update(label="The demo workspace could not be built", state="error")
                    _shared.show_error(exc)
                else:
                    status.update(label="Demo workspace ready", state="complete")
                    _shared.forget_cached_reads()
                    _shared.flash("success", "Demo workspace built: two versions, logged traffic and labels.")
                    st.rerun()
        _shared.operator_note("Building the demo workspace")
        st.caption("Or from a terminal: `opscore demo`; or train on your own data: "
                   "`opscore train --version-id v1 --data loans.csv --target default`.")
    st.stop()

scope = (f"{view.source.label} traffic, "
         + (f"version {_shared.version_filter()}" if _shared.version_filter() else "all versions"))
comparison = (f" Changes compare with the {view.window.label.lower().replace('last ', 'previous ')}."
              if view.comparable and view.window.label != "All time" else "")
st.caption(f"{view.window.label} ({when(view.window.start)} → now), {scope}.{comparison}")

changes = view.changes()


def change(value: float | None, shape: str) -> dict:
    """st.metric arguments for a change against the previous window (no arrow when it rounds to nothing)."""
    if value is None:
        return {"delta": None}
    text = shape.format(value)
    return {"delta": text, "delta_arrow": "off" if float(text.split()[0].replace(",", "")) == 0 else "auto"}


# Two rows of three, so every label and value shows whole at a laptop's width: models, then traffic.
production, candidate, retrain = st.columns(3)
traffic, latency, errors = st.columns(3)
with production.container(border=True, height="stretch"):
    info = view.production
    metric = version_metrics.headline_metrics(info)[0] if info else None
    st.metric("Production", info.version_id if info else "none",
              help="The version answering /predict now")
    st.caption(f"{version_metrics.metric_label(metric)} {info.metrics[metric]:.3f}" if info else "nothing serves yet")
    st.page_link("pages/versions.py", label="Versions", icon=":material/arrow_forward:")
with candidate.container(border=True, height="stretch"):
    info = view.candidate
    st.metric("Candidate", info.version_id if info else "none", help="The version waiting to be promoted")
    st.caption(f"trained {duration(time.time() - info.created_at)} ago" if info else "no version waiting")
    st.page_link("pages/versions.py", label="Versions", icon=":material/arrow_forward:")
with traffic.container(border=True, height="stretch"):
    per_request = view.source.unit == "request"
    st.metric("Requests / min" if per_request else "Rows scored / min", f"{view.requests_per_minute:,.1f}",
              delta_color="off", help=f"{view.source.label}: {view.source.counts}",
              **change(changes["requests_per_minute"], "{:+,.1f}"))
    st.caption(f"{view.requests:,} requests ({view.rows:,} rows) in the window" if per_request
               else f"{view.rows:,} rows in the window")
    st.page_link("pages/live.py", label="Live", icon=":material/arrow_forward:")
with latency.container(border=True, height="stretch"):
    st.metric("p95 (ms)", f"{view.p95_ms:,.1f}" if view.p95_ms is not None else "—", delta_color="inverse",
              help="Estimated from per-minute latency histograms", **change(changes["p95_ms"], "{:+,.1f} ms"))
    st.caption("no requests in the window" if view.p95_ms is None else scope)
    st.page_link("pages/latency.py", label="Latency", icon=":material/arrow_forward:")
with errors.container(border=True, height="stretch"):
    rate = view.error_rate
    st.metric("Error rate", f"{rate * 100:.2f} %" if rate is not None else "—", delta_color="inverse",
              help="Share of requests where the model call failed; refused requests (4xx) are counted apart",
              **change(changes["error_rate"], "{:+.2f} pp"))
    st.caption(f"{view.errors:,} failed, {view.refused:,} refused (4xx, nothing predicted)")
    st.page_link("pages/latency.py", label="Latency", icon=":material/arrow_forward:")
with retrain.container(border=True, height="stretch"):
    info = view.last_retrain
    st.metric("Last retrain", info.version_id if info else "never")
    st.caption(f"{duration(time.time() - info.created_at)} ago from {info.parent_version}" if info
               else "no version retrained yet")
    st.page_link("pages/retrain.py", label="Retrain", icon=":material/arrow_forward:")

health = _shared.cached(overview_view.health_section, view.window.seconds)
st.subheader(f"Health: {health.overall}")
st.caption(f"The five health checks over the same window (API traffic, production version), "
           f"checked {when(health.checked_at)}. Also `opscore health` and `GET /health/report`.")
_shared.health_tiles(health, "Health details: every issue and what to do")

empty = (f"No {view.source.label} traffic logged in this window: send traffic with opscore simulate, "
         "or score a CSV on Live predictions")
left, right = st.columns(2)
left.plotly_chart(plots.throughput(view.series, view.markers, empty_message=empty, title=view.source.throughput_title,
                                   y_title="requests per second" if view.source.unit == "request" else "rows per second"),
                  key="overview_throughput")
right.plotly_chart(plots.latency_percentiles(view.series, view.markers, empty_message=empty, percentiles=("p95_ms",),
                                             title=view.source.latency_title), key="overview_latency")

if view.firing_alerts:
    st.subheader(f"Firing alerts ({len(view.firing_alerts)})")
    for alert in view.firing_alerts:
        acked = f" · acknowledged by {alert['acknowledged_by']}" if alert["acknowledged_by"] else ""
        st.error(f"**{alert['rule']}** ({alert['severity']}): {alert['summary']} · since {when(alert['fired_at'])}"
                 f"{acked}", icon=":material/notifications_active:")
    st.page_link("pages/alerts.py", label="Alerts", icon=":material/arrow_forward:")

st.subheader("Recent changes")
if view.recent_moves:
    st.dataframe(version_history.ledger_frame(view.recent_moves), hide_index=True)
    st.page_link("pages/versions.py", label="Full ledger on Versions", icon=":material/history:")
else:
    st.caption("No alias has moved yet.")
