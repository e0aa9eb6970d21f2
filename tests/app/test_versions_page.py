"""Versions page: one-click rollback and promotion behind a confirmation, refused to viewers."""

from __future__ import annotations

from app_under_test import OPERATOR, run_page

from opscore.models import registry
from opscore.models.alias_moves import PendingMove
from opscore.store import open_store

VERSIONS = "pages/versions.py"


def production(settings) -> str | None:
    return registry.alias_target(open_store(settings), "production")


def test_rollback_button_opens_a_confirmation_that_moves_the_alias_and_writes_the_ledger(demo_workspace):
    at = run_page(VERSIONS, OPERATOR)
    rollback = at.button(key="rollback")
    assert rollback.label == "Roll back to v1" and not rollback.disabled
    rollback.click().run()
    assert not at.exception
    assert "**Roll back production: v2 → v1**" in [m.value for m in at.markdown]
    assert any("**schema compatible**" in m.value for m in at.markdown)
    assert production(demo_workspace) == "v2"  # nothing moves before Confirm
    at.text_input(key="move_reason").input("p95 doubled after v2").run()
    at.button(key="confirm").click().run()
    assert not at.exception
    assert production(demo_workspace) == "v1"
    entry = registry.ledger_entries(open_store(demo_workspace))[0]
    assert (entry.action, entry.from_version, entry.to_version) == ("rollback", "v2", "v1")
    assert (entry.actor, entry.reason) == ("dashboard:alice", "p95 doubled after v2")
    assert "Production: v2 → v1" in at.success[0].value
    assert "pending_move" not in at.session_state
    assert at.dataframe[-1].value["reason"].iloc[0] == "p95 doubled after v2"  # the ledger on the page


def test_confirm_without_a_reason_is_refused_with_a_message(demo_workspace):
    at = run_page(VERSIONS, OPERATOR)
    at.button(key="rollback").click().run()
    at.button(key="confirm").click().run()
    assert not at.exception
    assert any("a reason is required" in e.value for e in at.error)
    assert production(demo_workspace) == "v2"


def test_cancel_leaves_production_alone(demo_workspace):
    at = run_page(VERSIONS, OPERATOR)
    at.button(key="rollback").click().run()
    at.button(key="cancel").click().run()
    assert not at.exception and "pending_move" not in at.session_state
    assert production(demo_workspace) == "v2"


def test_viewer_cannot_roll_back(demo_workspace):
    at = run_page(VERSIONS)
    assert at.button(key="rollback").disabled
    assert any("Rolling back needs an operator" in c.value for c in at.caption)
    # Even with the dialog forced open, Confirm stays disabled (and the core refuses a viewer anyway,
    # see tests/views/test_pages_views.py).
    at.session_state["pending_move"] = PendingMove("rollback", "v1", "v2", [("loads", True, "ok")])
    at.run()
    assert at.button(key="confirm").disabled
    assert any("Only an operator can confirm" in c.value for c in at.caption)
    assert production(demo_workspace) == "v2"
    assert [e.action for e in registry.ledger_entries(open_store(demo_workspace))] == ["candidate", "promote", "initial"]


def test_promote_the_candidate_the_same_way(demo_workspace):
    at = run_page(VERSIONS, OPERATOR)
    at.button(key="promote").click().run()
    assert "**Promote production: v2 → v3**" in [m.value for m in at.markdown]
    at.text_input(key="move_reason").input("better ROC-AUC on the holdout").run()
    at.button(key="confirm").click().run()
    assert not at.exception
    store = open_store(demo_workspace)
    assert production(demo_workspace) == "v3" and registry.alias_target(store, "candidate") is None
    # The page now offers rolling back to v2, and has no candidate.
    assert at.button(key="rollback").label == "Roll back to v2"
    assert not [b for b in at.button if b.key == "promote"]


def test_discard_the_candidate(demo_workspace):
    at = run_page(VERSIONS, OPERATOR)
    at.button(key="discard").click().run()
    at.text_input(key="move_reason").input("worse on recent traffic").run()
    at.button(key="confirm").click().run()
    assert registry.alias_target(open_store(demo_workspace), "candidate") is None
    assert "Candidate v3 discarded" in at.success[0].value


def test_history_comparison_and_ledger(demo_workspace):
    at = run_page(VERSIONS)
    history, metrics, live, ledger = (d.value for d in at.dataframe)
    assert history["version"].tolist() == ["v3 · candidate", "v2 · production", "v1"]
    assert history["requests"].tolist() == [0, 150, 150]
    assert {"ROC-AUC", "live p95 (ms)", "error rate (%)", "by"} <= set(history.columns)
    assert list(metrics.columns) == ["metric", "v2", "v3", "change", "better"]  # production vs candidate
    assert ledger["action"].tolist() == ["candidate", "promote", "initial"]
    assert "v3 accepts the same inputs as v2." in [s.value for s in at.success]
    at.selectbox(key="compare_right").set_value("v2").run()
    assert any("pick two different versions" in e.value for e in at.error)


def test_the_ledger_shows_the_newest_moves_with_older_ones_a_click_away(demo_workspace, monkeypatch):
    from opscore.views import versions as version_history

    monkeypatch.setattr(version_history, "LEDGER_PAGE", 2)
    at = run_page(VERSIONS)
    assert at.dataframe[-1].value["action"].tolist() == ["candidate", "promote"]
    at.button(key="ledger_older").click().run()
    assert not at.exception
    assert at.dataframe[-1].value["action"].tolist() == ["initial"]
    assert at.button(key="ledger_older").disabled
    at.button(key="ledger_newest").click().run()
    assert at.dataframe[-1].value["action"].tolist() == ["candidate", "promote"]
