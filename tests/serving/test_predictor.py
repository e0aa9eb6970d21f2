"""Loaded versions, the production model's hot swap, and file scoring through score_frame."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from opscore.demo.credit_data import TARGET, credit_applications
from opscore.exceptions import BadInputError, IntegrityError, NotFoundError
from opscore.models import registry
from opscore.models.registry import load_version_model
from opscore.serving.predictor import ProductionModel, load_version, score_frame
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store, predictions


def logged(settings) -> list[tuple[str, str, str, str]]:
    with open_store(settings).read() as conn:
        return [tuple(r) for r in conn.execute(
            select(predictions.c.request_id, predictions.c.version_id, predictions.c.source, predictions.c.prediction)
            .order_by(predictions.c.id))]


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def rows():
    return credit_applications(n_rows=60, seed=21).drop(columns=[TARGET])


def test_predict_frame_matches_the_model_and_is_json_safe(trained, rows):
    loaded = load_version(trained, "v1")
    model = load_version_model(trained, registry.get_version(open_store(trained), "v1"))
    scores = loaded.predict_frame(rows)
    assert scores.predictions == model.predict(rows).tolist()
    assert np.allclose(scores.probabilities, model.predict_proba(rows))
    assert scores.classes == loaded.classes == model.classes_.tolist()
    assert scores.positive_probability() == pytest.approx(model.predict_proba(rows)[:, -1].tolist())
    json.dumps({"predictions": scores.predictions, "probabilities": scores.probabilities})
    assert loaded.version_id == "v1" and loaded.schema.names == list(rows.columns)


def test_regression_scores_have_no_probabilities(workspace, operator):
    from opscore.models.training import train_version

    frame = credit_applications(n_rows=400, seed=5)
    train_version(workspace, "r1", frame, "credit_score", task="regression", actor=operator, then="promote")
    loaded = load_version(workspace, "r1")
    features = frame.drop(columns=["credit_score"]).head(7)
    scores = loaded.predict_frame(features)
    assert scores.probabilities is None and scores.classes is None and scores.positive_probability() is None
    assert scores.predictions == pytest.approx(loaded.model.predict(features).tolist())
    assert all(type(p) is float for p in scores.predictions)


def test_production_model_follows_promotion_and_rollback(trained, operator):
    production = ProductionModel(trained)
    try:
        first = production.current()
        assert first.version_id == "v1"
        promoter = threading.Thread(target=registry.promote, args=(trained, "v2", operator, "better holdout"))
        promoter.start()
        promoter.join()
        assert wait_for(lambda: production.current().version_id == "v2"), "the alias move was never picked up"
        assert first.version_id == "v1", "a request holding the old version keeps it"
        assert production.swaps == 1
        registry.rollback(trained, operator, "worse in production")
        assert wait_for(lambda: production.current().version_id == "v1")
        assert production.current() is first, "rolling back reuses the cached, already loaded version"
        assert production.swaps == 2
    finally:
        production.close()


def test_production_model_reports_each_model_it_lets_go_of(trained, operator, monkeypatch):
    """Serving thaws and collects its heap on this call, so each swap or eviction must make it, once."""
    from opscore.models.training import train_version
    from opscore.serving import predictor

    changes: list[str] = []
    production = ProductionModel(trained, poll=False, on_change=lambda: changes.append(production.current().version_id))
    assert changes == [], "start-up is not a change: serving freezes its heap after it anyway"
    registry.promote(trained, "v2", operator, "better holdout")
    assert production.refresh() and changes == ["v2"]
    assert not production.refresh() and changes == ["v2"]
    monkeypatch.setattr(predictor, "MODEL_CACHE_SIZE", 2)
    train_version(trained, "v3", credit_applications(n_rows=300, seed=3), "default", actor=operator, then="none")
    production.get("v3")  # v1, v2 and v3 do not fit: v1 goes
    assert changes == ["v2", "v2"]
    registry.rollback(trained, operator, "back", to="v1")
    assert production.refresh() and changes == ["v2", "v2", "v1"]  # reloaded, v3 let go of: one call


def test_production_model_without_production_version(workspace):
    production = ProductionModel(workspace, poll=False)
    with pytest.raises(NotFoundError, match="opscore train --version-id v1"):
        production.current()
    assert production.refresh() is False


def test_a_version_that_fails_its_checksum_is_not_swapped_in(trained, operator):
    production = ProductionModel(trained, poll=False)
    artifact = trained.model_store_path / "v2" / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    registry.move_alias(trained, "v2", operator, "forced", skip_preflight=True)
    with pytest.raises(IntegrityError, match="checksum"):
        production.refresh()
    assert production.current().version_id == "v1"
    assert "v2" in production.last_error
    assert production.refresh() is False, "a failed version is not reloaded until the alias moves again"


def test_score_frame_scores_logs_and_keeps_every_row(trained, rows):
    bad = rows.copy().astype({"age": object})
    bad.loc[7, "age"] = "forty"
    writer = TelemetryWriter(trained)
    result = score_frame(trained, bad, telemetry=writer, chunk_size=16)
    assert writer.flush(timeout=30)

    assert (result.scored, result.failed, result.version_id) == (59, 1, "v1")
    out = result.frame
    assert len(out) == 60 and list(out.columns[: len(rows.columns)]) == list(rows.columns)
    assert out.loc[7, "error"].startswith("age: expected a number") and out.loc[7, "prediction"] is None
    assert (out.drop(index=7)["error"] == "").all()
    assert [str(p) for p in result.errors] == ["row 7, column 'age': expected a number, got the text 'forty'"]

    model = load_version(trained, "v1").model
    good = rows.drop(index=7)
    assert out.drop(index=7)["prediction"].tolist() == model.predict(good).tolist()
    probability_columns = [f"probability_{c}" for c in model.classes_]
    assert np.allclose(out.drop(index=7)[probability_columns].to_numpy(), model.predict_proba(good))
    assert out.loc[7, probability_columns].isna().all()
    assert (out["version"] == "v1").all()

    entries = logged(trained)
    assert len(entries) == 59
    assert all(rid.startswith("batch-") and version == "v1" and source == "batch" for rid, version, source, _ in entries)
    assert [json.loads(p) for *_, p in entries] == model.predict(good).tolist()


def test_score_frame_refuses_missing_columns_and_logs_nothing(trained, rows):
    writer = TelemetryWriter(trained)
    with pytest.raises(BadInputError, match="'annual_income'"):
        score_frame(trained, rows.drop(columns=["annual_income"]), telemetry=writer)
    assert writer.stats.submitted == 0
    with open_store(trained).read() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar_one() == 0


def test_score_frame_reports_progress_and_uses_the_given_version(trained, rows):
    seen = []
    result = score_frame(trained, rows, telemetry=None, chunk_size=25, loaded=load_version(trained, "v2"),
                         progress=lambda done, total: seen.append((done, total)))
    assert seen == [(25, 60), (50, 60), (60, 60)]
    assert result.version_id == "v2" and result.scored == 60
    assert logged(trained) == []


def test_score_frame_without_production(workspace, rows):
    with pytest.raises(NotFoundError, match="no production version"):
        score_frame(workspace, rows, telemetry=None)


def test_a_stale_alias_read_never_undoes_a_newer_swap(trained, operator, monkeypatch):
    """The poll thread may read the alias just before a route moves it and finish after that route's
    own refresh; production must not go back to the older version when it does."""
    model = ProductionModel(trained, poll=False)
    assert model.current().version_id == "v1"
    stale_state = registry.alias_state(open_store(trained))
    registry.promote(trained, "v2", operator, "newer")
    assert model.refresh() and model.current().version_id == "v2"

    monkeypatch.setattr(registry, "alias_state", lambda store: stale_state)
    assert model.refresh() is False
    assert model.current().version_id == "v2" and model.swaps == 1
    model.close()
