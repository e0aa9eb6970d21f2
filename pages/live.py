"""Live predictions: the feed as it arrives, scoring a CSV file, and scoring one typed record."""

from __future__ import annotations

import streamlit as st

from opscore.exceptions import NotFoundError, OpscoreError
from opscore.serving import scoring_report
from opscore.serving.scoring_report import ScoringReport
from opscore.views import live as live_view
from opscore.views import plots
from opscore.views.live import LiveFeed
from pages import _shared

_shared.run_inside_dashboard()
settings = _shared.settings()
st.title("Live predictions")
st.caption("The newest predictions as they are logged, and scoring by hand with the production version "
           "(an operator action; those rows are logged under the source `dashboard`, apart from API traffic).")
_shared.show_flash()


@st.fragment(run_every=settings.dashboard_refresh_seconds)
def live_feed() -> None:
    feed: LiveFeed = live_view.live_feed(settings, source=_shared.source_filter())
    stats, traffic = feed.stats, feed.source
    count = stats["count"]
    over = (f"figures over the last {count:,} logged rows" if count >= feed.window_size
            else f"figures over all {count:,} logged rows so far" if count else "nothing logged yet")
    st.caption(f"{traffic.label} traffic, {traffic.counts} · refreshes every "
               f"{settings.dashboard_refresh_seconds:g} s · {over}")
    tiles = st.columns(5)
    rate, row_rate = stats["rate_per_s"], stats["rows_per_s"]
    if traffic.unit == "request":
        tiles[0].metric("Requests / s", f"{rate:,.2f}" if rate is not None else "—", border=True,
                        help=f"{row_rate:,.2f} rows/s" if row_rate is not None else None)
    else:
        tiles[0].metric("Rows scored / s", f"{row_rate:,.2f}" if row_rate is not None else "—", border=True)
    seen = stats["requests"]
    tiles[1].metric("Mean latency", f"{stats['avg_latency_ms']:,.1f} ms" if seen else "—", border=True)
    tiles[2].metric("p95 latency", f"{stats['p95_ms']:,.1f} ms" if seen else "—", border=True,
                    help=f"over {seen:,} requests, one latency each" if traffic.unit == "request" else traffic.counts)
    tiles[3].metric("Error rate", f"{stats['error_rate'] * 100:.2f} %" if seen else "—", border=True)
    tiles[4].metric("Versions answering", ", ".join(stats["versions"]) or "—", border=True)
    st.plotly_chart(
        plots.throughput(feed.series, empty_message="Nothing logged in the last 30 minutes", height=240,
                         title=f"{traffic.throughput_title}, last {live_view.LIVE_MINUTES} minutes",
                         y_title="requests per second" if traffic.unit == "request" else "rows per second"),
        key="live_throughput",
    )
    if feed.recent.empty:
        st.caption("No predictions logged yet: send traffic to `opscore serve` (or `opscore simulate`), "
                   "or score a file here.")
    else:
        st.dataframe(feed.recent, hide_index=True, height=320, column_config={
            "latency (ms)": st.column_config.NumberColumn(format="%.2f"),
            "probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f"),
        })


def show_report(report: ScoringReport) -> None:
    if report.refused:
        st.error(report.refused, icon=":material/error:")
    elif report.scored is not None:
        scored = report.scored
        message = (f"Scored {scored.scored:,} of {report.rows:,} row(s) with {report.version_id}; each is logged "
                   "as dashboard scoring (pick it under Traffic in the sidebar to see them in the feed).")
        if scored.failed:
            st.warning(f"{message} {scored.failed:,} row(s) failed validation: see the problems below.",
                       icon=":material/warning:")
        else:
            st.success(message, icon=":material/check_circle:")
    st.markdown("**Columns**")
    st.dataframe(report.columns, hide_index=True)
    if not report.problems.empty:
        st.markdown(f"**Problems by row** ({len(report.problems):,})")
        st.dataframe(report.problems, hide_index=True, height=min(38 + 35 * len(report.problems), 300))
    if report.scored is not None:
        st.markdown("**Predictions**")
        st.dataframe(report.predictions.head(1_000), hide_index=True)
        st.download_button("Download predictions (CSV)", report.csv_bytes(), file_name="predictions.csv",
                           mime="text/csv", key="download", icon=":material/download:")


def upload_section() -> None:
    upload = st.file_uploader(
        f"A CSV with the production version's feature columns (up to {settings.dashboard_upload_mb:g} MB)",
        type=["csv"], key="csv", max_upload_size=int(settings.dashboard_upload_mb), disabled=not _shared.is_operator(),
    )
    _shared.operator_note("Scoring a file")
    if upload is None:
        st.session_state.pop("upload_result", None)
        return
    # Score each uploaded file once: reruns must not log its rows again.
    done = st.session_state.get("upload_result")
    if done is None or done[0] != upload.file_id:
        try:
            with st.spinner(f"Checking and scoring {upload.name}…"):
                result = scoring_report.score_upload(settings, _shared.actor(), upload.name, upload.getvalue(),
                                                     _shared.telemetry_writer())
        except OpscoreError as exc:
            result = str(exc)
        done = (upload.file_id, result)
        st.session_state["upload_result"] = done
    if isinstance(done[1], str):
        st.error(done[1], icon=":material/error:")
    else:
        show_report(done[1])


def record_section(form: scoring_report.RecordForm) -> None:
    with st.form("record_form"):
        st.caption(f"Inputs of production version {form.version_id}; defaults come from its training data.")
        values = {}
        cells = st.columns(3)
        for i, field in enumerate(form.fields):
            spec = field.spec
            with cells[i % 3]:
                if spec.kind == "numeric":
                    hint = (f"trained on {spec.minimum:g} to {spec.maximum:g}"
                            if spec.minimum is not None and spec.maximum is not None else None)
                    values[spec.name] = st.number_input(spec.name, value=float(field.default), help=hint,
                                                        format="%g", key=f"field_{spec.name}")
                else:
                    values[spec.name] = st.selectbox(spec.name, spec.categories or [""], key=f"field_{spec.name}",
                                                     index=(spec.categories or [""]).index(field.default))
        if st.form_submit_button("Predict", key="predict_record", type="primary", icon=":material/bolt:",
                                 disabled=not _shared.is_operator()):
            try:
                st.session_state["record_result"] = scoring_report.score_record(
                    settings, _shared.actor(), values, _shared.telemetry_writer())
            except OpscoreError as exc:
                st.session_state["record_result"] = str(exc)
    _shared.operator_note("Scoring a record")
    result = st.session_state.get("record_result")
    if isinstance(result, str):
        st.error(result, icon=":material/error:")
    elif result is not None:
        prediction, probabilities, error = result.first_row()
        if error:
            st.error(f"Not scored: {error}", icon=":material/error:")
        else:
            tiles = st.columns(1 + len(probabilities))
            tiles[0].metric("Prediction", str(prediction), help=f"version {result.version_id}", border=True)
            for tile, (label, value) in zip(tiles[1:], probabilities.items(), strict=True):
                tile.metric(f"P({label})", f"{value:.3f}", border=True)
            for problem in result.problems.itertuples():
                st.caption(f":material/warning: {problem.column}: {problem.problem}")


st.subheader("Latest predictions")
live_feed()

try:
    form = _shared.cached(scoring_report.record_form)
except NotFoundError:
    st.subheader("Score by hand")
    st.info("Scoring a file or a record needs a production version. Build the demo workspace from the Overview "
            "page, or train one: `opscore train --version-id v1`.", icon=":material/info:")
    st.stop()

st.subheader("Score a CSV file")
upload_section()
st.subheader("Score one record")
record_section(form)
