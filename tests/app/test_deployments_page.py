"""Deployments page: a viewer sees and cannot start; an operator starts a canary, sees its stages, pauses and aborts it."""

from __future__ import annotations

from app_under_test import OPERATOR, run_page

from opscore.models import registry
from opscore.rollout import deployments
from opscore.store import open_store

PAGE = "pages/deployments.py"


def _relaxed(settings):
    # The demo's versions differ on their holdouts by more than the default tolerance; the page is tested here.
    (settings.workspace / "opscore.toml").write_text("deploy_holdout_tolerance = 0.5\ndeploy_benchmark_ratio = 10.0\n")


def test_viewer_sees_no_deployment_and_cannot_start(demo_workspace):
    at = run_page(PAGE)
    assert not at.exception
    assert any("No deployment is active" in i.value for i in at.info)
    assert at.button(key="deploy_start").disabled
    assert any("Starting a deployment needs an operator" in c.value for c in at.caption)


def test_operator_starts_a_canary_pauses_it_and_aborts_it(demo_workspace):
    _relaxed(demo_workspace)
    production = registry.alias_target(open_store(demo_workspace), "production")
    at = run_page(PAGE, OPERATOR)
    target = next(v for v in at.selectbox(key="deploy_version").options if v != production)
    at.selectbox(key="deploy_version").set_value(target)
    at.radio(key="deploy_strategy").set_value("canary")
    at.button(key="deploy_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    active = deployments.active_deployment(demo_workspace)
    assert active is not None and active.version_id == target and active.weight == 5.0
    assert f"Deployment {active.id}" in [s.value for s in at.subheader]
    assert any("step 1 of 4 at 5 %" in m.value for m in at.markdown)
    checks = at.dataframe[0].value  # the validation stage, first
    assert set(checks["check"]) >= {"checksum", "loads", "predicts example"} and checks["passed"].all()
    assert at.get("plotly_chart")

    at.button(key="deploy_pause").click().run()
    assert deployments.get_deployment(demo_workspace, active.id).status == "paused"
    assert at.button(key="deploy_pause").disabled and not at.button(key="deploy_resume").disabled
    at.button(key="deploy_abort").click().run()
    assert deployments.get_deployment(demo_workspace, active.id).status == "aborted"
    history = at.dataframe[-1].value  # the history, last
    assert list(history["id"]) == [active.id] and list(history["status"]) == ["aborted"]
