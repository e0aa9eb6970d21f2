"""Retrain: a new candidate from a version's training data plus newer labelled data, judged against production."""

from __future__ import annotations

import streamlit as st

from opscore.exceptions import OpscoreError
from opscore.models import retraining
from opscore.models.retraining import RetrainOptions, RetrainOutcome
from opscore.views import plots
from pages import _shared

_shared.run_inside_dashboard()
st.title("Retrain")
st.caption("Train a candidate on a version's training data plus newer labelled data, compare it with "
           "production, then promote or discard it.")
_shared.show_flash()
if st.session_state.pop("retrain_done", False):
    # A fresh id for the next run: the one just used is taken now.
    st.session_state.pop("retrain_version_id", None)

options: RetrainOptions = _shared.cached(retraining.retrain_options)
if not options.versions:
    st.info("No versions yet: retraining starts from an existing version's training data. Build the demo "
            "workspace from the Overview page, or train one: `opscore train --version-id v1`.", icon=":material/info:")
    st.stop()

form, context = st.columns([3, 2], gap="large")
with context:
    production_info = next((v for v in options.versions if v.version_id == options.production), None)
    waiting = next((v for v in options.versions if "candidate" in v.aliases), None)
    st.markdown("**How it works**")
    st.markdown(
        "1. The new version trains on the chosen version's training data, read back from the model store, "
        "plus the rows you add.\n"
        "2. It becomes the **candidate**; production keeps serving.\n"
        "3. Compare its holdout metrics with production's, then promote it (pre-flight checked, ledgered) "
        "or discard it."
    )
    if production_info is not None:
        st.caption(f"Production is {production_info.version_id}.")
    if waiting is not None:
        st.caption(f":material/info: {waiting.version_id} is the candidate now; a new version replaces it as "
                   f"candidate ({waiting.version_id} stays in the registry).")

with form.container(border=True):
    ids = [v.version_id for v in options.versions]
    base = st.selectbox("Start from the training data of", ids, key="retrain_base",
                        format_func=lambda v: f"{v} (production)" if v == options.production else v)
    info = options.version(base)
    st.caption(f"{info.training_rows:,} training rows · target `{info.target}` · {info.task} · "
               f"{len(info.feature_schema.names)} feature columns")
    extra = st.file_uploader(
        f"Add labelled rows (optional): a CSV with the feature columns and `{info.target}`", type=["csv"],
        key="retrain_csv", max_upload_size=int(_shared.settings().dashboard_upload_mb),
    )
    traffic = st.checkbox(
        f"Add labelled production traffic ({options.labelled_traffic:,} labelled predictions)",
        key="retrain_traffic", disabled=options.labelled_traffic == 0,
        help=f"The newest {retraining.MAX_TRAFFIC_ROWS:,} predictions that received a label through /feedback",
    )
    version_id = st.text_input("New version id", value=options.suggested_id, key="retrain_version_id")
    clicked = st.button("Retrain", key="retrain", type="primary", icon=":material/model_training:",
                        disabled=not _shared.is_operator())
    _shared.operator_note("Retraining")

if clicked:
    with st.status(f"Training {version_id} from {base}…", expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def progress(stage: str, fraction: float) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=stage)

        try:
            outcome = retraining.retrain(
                _shared.settings(), base, extra.getvalue() if extra is not None else None, traffic,
                actor=_shared.actor(), version_id=version_id, progress=progress,
            )
        except OpscoreError as exc:
            status.update(label="Retraining failed", state="error")
            _shared.show_error(exc)
        else:
            status.update(label="Trained", state="complete")
            st.session_state["retrain_result"] = outcome
            st.session_state["retrain_done"] = True
            _shared.forget_cached_reads()
            st.rerun()

result: RetrainOutcome | None = st.session_state.get("retrain_result")
if result is not None:
    candidate = result.candidate.version_id
    st.status(f"{candidate} trained in {result.seconds:.1f} s and registered as the candidate", state="complete")
    production = result.production.version_id if result.production else None
    st.subheader(f"Candidate {candidate}" + (f" beside production {production}" if production else ""))
    st.caption("Trained on " + " + ".join(f"{n:,} {what}" for what, n in result.sources.items()) + ".")
    for note in result.notes:
        st.caption(f":material/info: {note}")
    comparison = result.comparison()
    chart, table = st.columns([3, 2])
    if production:
        chart.plotly_chart(plots.metric_comparison(comparison, left=production, right=candidate),
                           key="retrain_chart")
    table.dataframe(comparison, hide_index=True, placeholder="—", column_config={
        c: st.column_config.NumberColumn(format="%.4f") for c in comparison.columns if c not in {"metric", "better"}})
    aliases = next((v.aliases for v in options.versions if v.version_id == candidate), ())
    if "candidate" in aliases:
        promote, discard, _ = st.columns([1, 1, 3])
        promote.button(f"Promote {candidate}", key="promote", type="primary", icon=":material/upgrade:",
                       disabled=not _shared.is_operator(), on_click=_shared.request_move,
                       args=("promote", candidate), width="stretch")
        discard.button("Discard", key="discard", icon=":material/delete:", disabled=not _shared.is_operator(),
                       on_click=_shared.request_move, args=("discard", candidate), width="stretch")
        _shared.operator_note("Promoting or discarding")
    else:
        st.caption(f"{candidate} is {'production now' if 'production' in aliases else 'no longer the candidate'}.")

_shared.confirm_pending_move()
