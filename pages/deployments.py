"""Deployments: the active rollout's stages, steps and analyses, the shadow report, the history; start and steer."""

from __future__ import annotations

import streamlit as st

from opscore.exceptions import OpscoreError
from opscore.rollout import deployments
from opscore.views.deployments import analysis_figure, deployments_view, progress_line
from pages import _shared

_shared.run_inside_dashboard()
st.title("Deployments")
st.caption("A candidate passes validation and testing, then goes out as a shadow, a canary in weight steps or "
           "blue-green; failed checks roll it back, every step passed promotes it.")
_shared.show_flash()
settings = _shared.settings()
view = deployments_view(settings)
operator = _shared.is_operator()


def _act(action: str, deployment_id: str) -> None:
    try:
        found = deployments.act(settings, deployment_id, action, actor=_shared.actor())
        _shared.flash("success", f"deployment {found.id}: {found.status}")
    except OpscoreError as exc:
        _shared.flash("error", str(exc))
    _shared.forget_cached_reads()


active = view.active
if active is None:
    st.info(f"No deployment is active. Production is {view.production or 'not set'}.", icon=":material/info:")
    with st.container(border=True):
        st.markdown("**Start a deployment**")
        version = st.selectbox("Version", view.deployable, key="deploy_version")
        strategy = st.radio("Strategy", deployments.STRATEGIES, key="deploy_strategy", horizontal=True)
        if st.button("Start", key="deploy_start", disabled=not operator or not version):
            try:
                found = deployments.start(settings, version, strategy, actor=_shared.actor())
                _shared.flash("success" if found.status == "running" else "error",
                              f"deployment {found.id}: {found.status}" + (f" ({found.reason})" if found.reason else ""))
            except OpscoreError as exc:
                _shared.flash("error", str(exc))
            _shared.forget_cached_reads()
            st.rerun()
        _shared.operator_note("Starting a deployment")
else:
    st.subheader(f"Deployment {active.id}")
    st.markdown(progress_line(active))
    columns = st.columns(4)
    for column, action in zip(columns, ("pause", "resume", "promote", "abort"), strict=True):
        disabled = not operator or (action == "pause" and active.status == "paused") or (
            action == "resume" and active.status == "running")
        column.button(action.capitalize(), key=f"deploy_{action}", disabled=disabled, on_click=_act,
                      args=(action, active.id))
    _shared.operator_note("Steering a deployment")
    for stage, checks in view.stage_checks.items():
        st.markdown(f"**{stage.capitalize()}**")
        st.dataframe(checks, hide_index=True, key=f"deploy_checks_{stage}")
    if active.strategy != "shadow":
        st.plotly_chart(analysis_figure(active), key="deploy_analyses")
    if view.report is not None:
        report = view.report
        st.markdown("**Shadow report**")
        a, b, c = st.columns(3)
        a.metric("Compared rows", f"{report['compared']:,}")
        b.metric("Agreement", "-" if report["agreement_rate"] is None else f"{report['agreement_rate']:.1%}")
        c.metric("Labelled rows", f"{report['accuracy']['labelled']:,}")
        if report["disagreements"]:
            st.dataframe([{k: v for k, v in d.items() if k != "features"} for d in report["disagreements"]],
                         key="deploy_disagreements")

st.markdown("**History**")
st.dataframe(view.history, hide_index=True, key="deploy_history")
