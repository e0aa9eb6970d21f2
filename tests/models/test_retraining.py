"""Retraining: a candidate from a version's own training data plus uploaded rows or labelled traffic."""

from __future__ import annotations

import pytest

from opscore.access.actors import Actor
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import BadInputError, PermissionDenied, TooLargeError
from opscore.models import registry, retraining
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import score_frame
from opscore.serving.telemetry_queries import recent_predictions
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store

ALICE = Actor("alice", "operator", "dashboard")


def test_retrain_registers_a_candidate_from_the_base_versions_data(trained):
    stages = []
    outcome = retraining.retrain(trained, "v1", actor=ALICE, progress=lambda s, f: stages.append((s, f)))
    new = outcome.candidate
    assert new.version_id == "v3" and new.parent_version == "v1" and new.created_by == "retrain"
    assert new.aliases == ("candidate",)
    assert new.training_rows == registry.get_version(open_store(trained), "v1").training_rows
    assert outcome.sources == {"rows of v1's training data": 1_500}
    assert outcome.production.version_id == "v1"
    comparison = outcome.comparison().set_index("metric")
    assert list(comparison.columns) == ["v1", "v3", "change", "better"]
    assert comparison.loc["ROC-AUC", "v3"] == new.metrics["roc_auc"]
    fractions = [f for _, f in stages]
    assert stages[0][0] == "loading training data" and fractions == sorted(fractions) and fractions[-1] == 1.0
    entry = registry.ledger_entries(open_store(trained), alias="candidate")[0]
    assert (entry.to_version, entry.actor) == ("v3", "dashboard:alice")
    assert entry.reason == "retrained from 1,500 rows of v1's training data"


def test_uploaded_rows_are_added_and_unused_columns_reported(trained):
    extra = credit_applications(n_rows=300, seed=11).assign(note="ignore me")
    outcome = retraining.retrain(trained, "v1", extra.to_csv(index=False).encode(), actor=ALICE, version_id="v1-fresh")
    assert outcome.candidate.version_id == "v1-fresh"
    assert outcome.candidate.training_rows == 1_800
    assert outcome.sources["uploaded rows"] == 300
    assert any("note" in n for n in outcome.notes)


def test_added_data_must_carry_the_features_and_the_target(trained):
    extra = credit_applications(n_rows=100, seed=11).drop(columns=["default", "credit_score"])
    with pytest.raises(BadInputError, match="'credit_score', 'default'"):
        retraining.retrain(trained, "v1", extra, actor=ALICE)
    with pytest.raises(BadInputError, match="empty"):
        retraining.retrain(trained, "v1", b"", actor=ALICE)
    assert [v.version_id for v in registry.list_versions(open_store(trained))] == ["v2", "v1"]


def test_an_oversized_upload_is_refused_before_parsing(trained):
    from opscore.config import replace

    small = replace(trained, dashboard_upload_mb=0.001)
    with pytest.raises(TooLargeError, match="limit"):
        retraining.retrain(small, "v1", b"a,b\n" + b"1,2\n" * 1_000, actor=ALICE)


def test_labelled_traffic_is_added_when_asked(trained):
    store = open_store(trained)
    with pytest.raises(BadInputError, match="no labelled production traffic"):
        retraining.retrain(trained, "v1", include_labelled_traffic=True, actor=ALICE)
    writer = TelemetryWriter(trained).start()
    score_frame(trained, credit_applications(n_rows=200, seed=12).drop(columns="default"), source="api",
                telemetry=writer)
    writer.close()
    ids = recent_predictions(store, limit=150)["request_id"].tolist()
    record_feedback(store, [{"request_id": r, "label": i % 2} for i, r in enumerate(ids)])
    assert retraining.labelled_traffic_count(store) == 150
    outcome = retraining.retrain(trained, "v1", include_labelled_traffic=True, actor=ALICE)
    assert outcome.sources["labelled production traffic"] == 150
    assert outcome.candidate.training_rows == 1_650


def test_only_the_newest_labelled_rows_are_read(trained, monkeypatch):
    """Retraining keeps the newest MAX_TRAFFIC_ROWS labelled rows: the database picks them, so the
    rows read stay bounded however much labelled traffic has piled up."""
    store = open_store(trained)
    writer = TelemetryWriter(trained).start()
    score_frame(trained, credit_applications(n_rows=200, seed=12).drop(columns="default"), source="api",
                telemetry=writer)
    writer.close()
    logged = recent_predictions(store, limit=200)  # newest first
    record_feedback(store, [{"request_id": r, "label": i % 2} for i, r in enumerate(logged["request_id"])])
    monkeypatch.setattr(retraining, "MAX_TRAFFIC_ROWS", 40)
    read: list[int] = []
    real = retraining.labelled_predictions

    def counting(*args, **kwargs):
        table = real(*args, **kwargs)
        read.append(len(table))
        return table

    monkeypatch.setattr(retraining, "labelled_predictions", counting)
    outcome = retraining.retrain(trained, "v1", include_labelled_traffic=True, actor=ALICE)
    assert read == [40], f"read {read} labelled rows to keep 40"
    assert outcome.sources["labelled production traffic"] == 40
    newest = set(logged["request_id"].head(40))
    assert set(real(store, newest=40)["request_id"]) == newest


def test_only_operators_retrain(trained):
    with pytest.raises(PermissionDenied):
        retraining.retrain(trained, "v1", actor=Actor("viewer", "viewer", "dashboard"))


def test_suggested_ids_follow_the_newest_versions_scheme(trained, operator):
    from opscore.models.training import train_version

    store = open_store(trained)
    assert retraining.suggest_version_id(store) == "v3"
    train_version(trained, "churn-7", credit_applications(n_rows=300, seed=4), "default", actor=operator, then="none")
    assert retraining.suggest_version_id(store) == "churn-8"
    train_version(trained, "baseline", credit_applications(n_rows=300, seed=4), "default", actor=operator, then="none")
    assert retraining.suggest_version_id(store) == "baseline-2"


def test_options_put_production_first(trained):
    registry.promote(trained, "v2", ALICE, "newer")
    options = retraining.retrain_options(trained)
    assert [v.version_id for v in options.versions] == ["v2", "v1"]
    assert options.production == "v2" and options.labelled_traffic == 0 and options.suggested_id == "v3"
