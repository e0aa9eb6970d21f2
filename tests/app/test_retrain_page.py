"""Retrain page: progress while training, the candidate beside production, promote or discard."""

from __future__ import annotations

from app_under_test import OPERATOR, run_page

from opscore.demo.credit_data import credit_applications
from opscore.models import registry
from opscore.store import open_store

RETRAIN = "pages/retrain.py"


def test_viewer_sees_the_options_but_cannot_retrain(demo_workspace):
    at = run_page(RETRAIN)
    assert at.button(key="retrain").disabled
    assert any("Retraining needs an operator" in c.value for c in at.caption)
    assert at.selectbox(key="retrain_base").value == "v2"  # production first
    assert at.text_input(key="retrain_version_id").value == "v4"
    assert "(100 labelled predictions)" in at.checkbox(key="retrain_traffic").label


def test_retrain_shows_progress_then_the_candidate_beside_production_then_promotes(demo_workspace):
    at = run_page(RETRAIN, OPERATOR)
    at.checkbox(key="retrain_traffic").check()
    at.button(key="retrain").click().run()
    assert not at.exception and not at.error
    status = at.status[0]
    assert status.state == "complete" and "v4 trained" in status.label
    assert at.session_state["retrain_result"].candidate.version_id == "v4"
    store = open_store(demo_workspace)
    v4 = registry.get_version(store, "v4")
    assert v4.aliases == ("candidate",) and v4.parent_version == "v2" and v4.training_rows == 900
    comparison = at.dataframe[0].value
    assert list(comparison.columns) == ["metric", "v2", "v4", "change", "better"]
    assert any("100 labelled production traffic" in c.value for c in at.caption)
    assert at.text_input(key="retrain_version_id").value == "v5"  # the next retrain gets a fresh id
    at.button(key="promote").click().run()
    at.text_input(key="move_reason").input("retrained on labelled traffic").run()
    at.button(key="confirm").click().run()
    assert not at.exception
    assert registry.alias_target(store, "production") == "v4"
    assert any("v4 is production now" in c.value for c in at.caption)


def test_retrain_with_an_uploaded_file_and_discard(demo_workspace):
    at = run_page(RETRAIN, OPERATOR)
    extra = credit_applications(n_rows=200, seed=41).to_csv(index=False).encode()
    at.file_uploader(key="retrain_csv").upload("recent.csv", extra, "text/csv").run()
    at.text_input(key="retrain_version_id").input("v2-recent").run()
    at.button(key="retrain").click().run()
    assert at.status[0].state == "complete"
    assert registry.get_version(open_store(demo_workspace), "v2-recent").training_rows == 1_000
    at.button(key="discard").click().run()
    at.text_input(key="move_reason").input("no better than production").run()
    at.button(key="confirm").click().run()
    assert registry.alias_target(open_store(demo_workspace), "candidate") is None


def test_a_bad_upload_fails_the_retrain_with_a_readable_error(demo_workspace):
    at = run_page(RETRAIN, OPERATOR)
    at.file_uploader(key="retrain_csv").upload("recent.csv", b"age,income\n30,1000\n", "text/csv").run()
    at.button(key="retrain").click().run()
    assert not at.exception
    assert at.status[0].state == "error"
    assert "lacks column(s)" in at.error[0].value and "'default'" in at.error[0].value
    assert [v.version_id for v in registry.list_versions(open_store(demo_workspace))] == ["v3", "v2", "v1"]
