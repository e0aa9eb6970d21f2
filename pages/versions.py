"""Versions: who serves production, one-click rollback, the candidate, history, comparison, ledger."""

from __future__ import annotations

import streamlit as st

from opscore.exceptions import OpscoreError
from opscore.models import version_metrics
from opscore.views import plots
from opscore.views import versions as version_history
from opscore.views.formatting import duration, when
from opscore.views.versions import VersionBoard, VersionRow
from pages import _shared

_shared.run_inside_dashboard()
st.title("Versions")
st.caption("Which version serves, how each one behaved while it served, and every alias move with who and why.")
_shared.show_flash()

board: VersionBoard = _shared.cached(version_history.version_board, st.session_state.get("ledger_before"),
                                     None, _shared.source_filter())
if not board.rows:
    st.info("No versions yet. Build the demo workspace from the Overview page, or train one: "
            "`opscore train --version-id v1`.", icon=":material/info:")
    st.page_link("pages/overview.py", label="Go to Overview", icon=":material/dashboard:")
    st.stop()


def figures(row: VersionRow) -> str:
    metric = version_metrics.headline_metrics(row.info)[0]
    parts = [f"{version_metrics.metric_label(metric)} **{row.info.metrics[metric]:.3f}**"]
    if row.requests:
        parts += [f"live p95 **{row.p95_ms:.1f} ms**", f"errors **{row.error_rate * 100:.2f} %**",
                  f"**{row.requests:,}** requests"]
    else:
        parts.append("no logged requests")
    return " · ".join(parts)


production, previous, candidate = st.columns(3)
with production.container(border=True, height="stretch"):
    st.caption("PRODUCTION")
    row = board.row(board.production)
    if row is None:
        st.markdown("Nothing serves yet.")
    else:
        st.markdown(f"### {row.info.version_id}")
        since = f"since {when(board.production_since)}" if board.production_since else ""
        st.caption(f"{since} · trained {when(row.info.created_at)} by {row.by}")
        st.markdown(figures(row))

with previous.container(border=True, height="stretch"):
    st.caption("PREVIOUS PRODUCTION")
    row = board.row(board.rollback_target)
    if row is None:
        st.markdown("No earlier production version: rollback becomes possible after the next promotion.")
    else:
        st.markdown(f"### {row.info.version_id}")
        st.caption(f"served production for {duration(row.production_seconds)} · trained {when(row.info.created_at)}")
        st.markdown(figures(row))
        st.button(f"Roll back to {row.info.version_id}", key="rollback", icon=":material/undo:", type="primary",
                  disabled=not _shared.is_operator(), on_click=_shared.request_move,
                  args=("rollback", row.info.version_id))
        _shared.operator_note("Rolling back")

with candidate.container(border=True, height="stretch"):
    st.caption("CANDIDATE")
    row = board.row(board.candidate)
    if row is None:
        st.markdown("No candidate. Retrain to make one, then compare and promote it here.")
        st.page_link("pages/retrain.py", label="Retrain", icon=":material/model_training:")
    else:
        st.markdown(f"### {row.info.version_id}")
        st.caption(f"trained {when(row.info.created_at)} by {row.by}"
                   + (f" · from {row.info.parent_version}" if row.info.parent_version else ""))
        st.markdown(figures(row))
        promote, discard = st.columns(2)
        promote.button(f"Promote {row.info.version_id}", key="promote", icon=":material/upgrade:",
                       disabled=not _shared.is_operator(), on_click=_shared.request_move,
                       args=("promote", row.info.version_id), width="stretch")
        discard.button("Discard", key="discard", icon=":material/delete:", disabled=not _shared.is_operator(),
                       on_click=_shared.request_move, args=("discard", row.info.version_id), width="stretch")
        _shared.operator_note("Promoting or discarding")

st.subheader("History")
history = board.history_frame()
metric_columns = {version_metrics.metric_label(m) for r in board.rows for m in r.info.metrics} & set(history.columns)
st.dataframe(
    history,
    hide_index=True,
    placeholder="—",
    column_config={
        **{m: st.column_config.NumberColumn(m, format="%.3f", help="holdout metric at training time")
           for m in metric_columns},
        "requests": st.column_config.NumberColumn(format="localized", help=board.live_scope),
        "live p95 (ms)": st.column_config.NumberColumn(format="%.1f", help=board.live_scope),
        "error rate (%)": st.column_config.NumberColumn(format="%.2f"),
        "rows": st.column_config.NumberColumn(format="localized", help="training rows"),
    },
)

st.subheader("Compare two versions")
ids = [r.info.version_id for r in board.rows]
if len(ids) < 2:
    st.caption("Only one version exists; a comparison needs two.")
else:
    default_right = board.candidate if board.candidate in ids else ids[0]
    default_left = board.production if board.production in ids and board.production != default_right else (
        ids[1] if ids[0] == default_right else ids[0])
    left_col, right_col = st.columns(2)
    left = left_col.selectbox("Version", ids, index=ids.index(default_left), key="compare_left")
    right = right_col.selectbox("Compared with", ids, index=ids.index(default_right), key="compare_right")
    try:
        comparison = _shared.cached(version_history.compare_versions, left, right, _shared.source_filter())
    except OpscoreError as exc:
        _shared.show_error(exc)
    else:
        chart, details = st.columns([3, 2])
        chart.plotly_chart(plots.metric_comparison(comparison.metrics, left=left, right=right), key="compare_chart")
        with details:
            st.dataframe(comparison.metrics, hide_index=True, placeholder="—", column_config={
                c: st.column_config.NumberColumn(format="%.4f") for c in (left, right, "change")})
            st.dataframe(comparison.live, hide_index=True)
            if comparison.schema_differences:
                st.warning("Input schema differences (" + left + " → " + right + "):\n\n"
                           + "\n".join(f"- {d}" for d in comparison.schema_differences), icon=":material/warning:")
            else:
                st.success(f"{right} accepts the same inputs as {left}.", icon=":material/check:")

st.subheader("Ledger")
paged = st.session_state.get("ledger_before") is not None
st.caption(f"Every alias move, newest first: who moved what, when and why ({'older moves' if paged else 'the latest'}, "
           f"{version_history.LEDGER_PAGE} at a time).")
st.dataframe(board.ledger_frame(), hide_index=True)


def show_ledger_before(entry_id: int | None) -> None:
    st.session_state["ledger_before"] = entry_id


older, newest, _ = st.columns([1, 1, 3])
older.button("Older moves", key="ledger_older", icon=":material/history:", disabled=board.older_ledger is None,
             on_click=show_ledger_before, args=(board.older_ledger,))
newest.button("Newest moves", key="ledger_newest", icon=":material/vertical_align_top:", disabled=not paged,
              on_click=show_ledger_before, args=(None,))

_shared.confirm_pending_move()
