"""Version history with live figures, comparisons, and alias moves prepared then confirmed."""

from __future__ import annotations

import time

import pytest

from opscore.access.actors import Actor
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import BadInputError, ConflictError, NotFoundError, PermissionDenied
from opscore.models import alias_moves, registry
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views import versions as version_history

ALICE = Actor("alice", "operator", "dashboard")
VIEWER = Actor("viewer", "viewer", "dashboard")


def test_version_board_joins_registry_ledger_and_live_figures(served):
    board = version_history.version_board(served)
    assert [r.info.version_id for r in board.rows] == ["v2", "v1"]
    assert (board.production, board.candidate, board.rollback_target) == ("v1", "v2", None)
    summary = telemetry_queries.version_latency_summary(open_store(served)).set_index("version_id")
    v1 = board.row("v1")
    assert v1.requests == 120 and v1.errors == 0
    assert v1.p95_ms == pytest.approx(summary.loc["v1", "p95_ms"])
    assert v1.by == "system:opscore"  # the first version took production through the system actor
    assert board.row("v2").by == "cli:tester"
    assert v1.production_seconds > 0 and board.row("v2").production_seconds == 0
    history = board.history_frame()
    assert history["version"].tolist() == ["v2 · candidate", "v1 · production"]
    assert history.loc[history.version == "v1 · production", "requests"].item() == 120
    assert {"ROC-AUC", "accuracy", "live p95 (ms)", "error rate (%)"} <= set(history.columns)
    assert board.ledger_frame()["action"].tolist() == ["candidate", "initial"]


def test_rollback_target_is_the_previous_production_version(served):
    registry.promote(served, "v2", ALICE, "better ROC-AUC")
    board = version_history.version_board(served)
    assert (board.production, board.candidate, board.rollback_target) == ("v2", None, "v1")
    assert board.production_since == pytest.approx(board.ledger[0].at)


def test_confirmed_rollback_moves_production_and_records_who_and_why(served):
    registry.promote(served, "v2", ALICE, "better ROC-AUC")
    move = alias_moves.prepare_move(served, "rollback", "v1")
    assert move.ok and move.from_version == "v2"
    assert [name for name, _, _ in move.checks] == ["checksum", "loads", "predicts example", "schema compatible"]
    assert move.summary == "Roll back production: v2 → v1"
    entry = alias_moves.carry_out(served, move, ALICE, "p95 doubled")
    assert registry.alias_target(open_store(served)) == "v1"
    assert (entry.action, entry.from_version, entry.to_version, entry.actor, entry.reason) == (
        "rollback", "v2", "v1", "dashboard:alice", "p95 doubled")


def test_moves_are_refused_to_viewers_without_reason_or_when_production_moved_meanwhile(served):
    move = alias_moves.prepare_move(served, "promote", "v2")
    with pytest.raises(PermissionDenied):
        alias_moves.carry_out(served, move, VIEWER, "looks better")
    with pytest.raises(BadInputError, match="reason"):
        alias_moves.carry_out(served, move, ALICE, "  ")
    assert registry.alias_target(open_store(served)) == "v1"
    registry.promote(served, "v2", ALICE, "someone else was quicker")
    stale = alias_moves.PendingMove("rollback", "v1", "v1")
    with pytest.raises(ConflictError, match="meanwhile"):
        alias_moves.carry_out(served, stale, ALICE, "roll back")
    assert registry.alias_target(open_store(served)) == "v2"


def test_discarding_the_candidate_keeps_the_version(served):
    move = alias_moves.prepare_move(served, "discard", "v2")
    entry = alias_moves.carry_out(served, move, ALICE, "worse on recent data")
    store = open_store(served)
    assert registry.alias_target(store, "candidate") is None
    assert entry.action == "discard" and registry.get_version(store, "v2").version_id == "v2"
    with pytest.raises(NotFoundError, match="not the candidate"):
        alias_moves.prepare_move(served, "discard", "v2")
    with pytest.raises(BadInputError, match="unknown action"):
        alias_moves.prepare_move(served, "delete", "v2")


def test_compare_versions_side_by_side(served):
    comparison = version_history.compare_versions(served, "v1", "v2")
    v1, v2 = comparison.left, comparison.right
    metrics = comparison.metrics.set_index("metric")
    assert metrics.loc["ROC-AUC", "v1"] == v1.metrics["roc_auc"]
    assert metrics.loc["ROC-AUC", "change"] == pytest.approx(v2.metrics["roc_auc"] - v1.metrics["roc_auc"])
    better_loss = "v2" if v2.metrics["log_loss"] < v1.metrics["log_loss"] else "v1"
    assert metrics.loc["log loss", "better"] == better_loss  # lower log loss wins
    assert comparison.schema_differences == []
    live = comparison.live.set_index("live (API traffic)")
    assert live.loc["requests", "v1"] == "120" and live.loc["requests", "v2"] == "80"
    assert live.loc["error rate", "v1"] == "0.00%" and live.loc["p95 latency", "v2"].endswith(" ms")
    with pytest.raises(BadInputError, match="two different"):
        version_history.compare_versions(served, "v1", "v1")


def test_schema_differences_between_versions(trained, operator):
    from opscore.models.training import train_version

    wider = credit_applications(n_rows=600, seed=3).assign(region="north")
    train_version(trained, "v3", wider, "default", actor=operator, then="none")
    comparison = version_history.compare_versions(trained, "v1", "v3")
    assert comparison.schema_differences == ["new required column 'region'"]


def test_the_ledger_is_read_a_page_at_a_time_and_the_figures_stay_whole(trained):
    # 61 production moves and 1 candidate move: more than one page.
    for i in range(30):
        registry.promote(trained, "v2", ALICE, f"try v2 ({i})", skip_preflight=True)
        registry.rollback(trained, ALICE, f"back to v1 ({i})", skip_preflight=True)
    store = open_store(trained)
    everything = registry.ledger_entries(store)
    board = version_history.version_board(trained)
    assert len(board.ledger) == version_history.LEDGER_PAGE < len(everything)
    assert board.ledger == everything[:version_history.LEDGER_PAGE]
    older = version_history.version_board(trained, board.older_ledger)
    assert older.ledger == everything[version_history.LEDGER_PAGE:] and older.older_ledger is None
    assert board.ledger_frame()["#"].tolist() == [e.id for e in board.ledger]

    # What the whole ledger says, the board still says: who first moved each version, time in production.
    now = time.time()
    periods = registry.production_periods(store)
    for row in board.rows:
        served = sum((end or now) - start for version, start, end in periods if version == row.info.version_id)
        assert row.production_seconds == pytest.approx(served, abs=5)
    assert board.row("v1").by == "system:opscore" and board.row("v2").by == "cli:tester"
    assert board.production == "v1" and board.production_since == periods[-1][1]
