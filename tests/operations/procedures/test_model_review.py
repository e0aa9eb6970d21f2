"""Model reviews against planted facts: drifted traffic, a changed concept, a version never served."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import select

from opscore.demo.credit_data import credit_applications
from opscore.models import registry
from opscore.models.training import train_version
from opscore.operations.procedures import get_procedure, no_checkpoint
from opscore.operations.procedures.model_review import paired_difference
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import score_frame
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store, predictions
from tests.conftest import OPERATOR


def _log(settings, rows, seed, shift=0.0):
    frame = credit_applications(n_rows=rows, seed=seed, shift=shift).drop(columns="default")
    writer = TelemetryWriter(settings).start()
    score_frame(settings, frame, source="api", telemetry=writer)
    assert writer.close()


def _label_everything(settings, label_of):
    with open_store(settings).read() as conn:
        rows = conn.execute(select(predictions.c.request_id, predictions.c.features, predictions.c.prediction)
                            .where(predictions.c.label.is_(None))).all()
    record_feedback(open_store(settings), [
        {"request_id": r.request_id, "label": label_of(json.loads(r.features), json.loads(r.prediction))}
        for r in rows])


def _run(name, settings, **params):
    return get_procedure(name).run(settings, params, no_checkpoint)


def test_drifted_traffic_this_week_is_found(trained):
    _log(trained, 400, seed=21, shift=1.0)
    result = _run("accuracy_and_drift", trained)
    assert result.figures["drift"]["dataset_drift"] is True
    assert "credit_score" in result.figures["drift"]["drifted_columns"]
    assert any("drifted from its training data" in f.summary for f in result.findings)


def test_traffic_like_the_training_data_shows_no_drift_and_reports_accuracy(trained):
    _log(trained, 400, seed=22)
    _label_everything(trained, lambda features, predicted: predicted)
    result = _run("accuracy_and_drift", trained)
    assert result.figures["drift"]["dataset_drift"] is False
    assert result.figures["accuracy"]["v1"]["labelled"] == 400 and result.figures["accuracy"]["v1"]["mean"] == 1.0
    assert not any("drifted" in f.summary for f in result.findings)


def test_paired_difference_matches_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 2, 300).astype(float), rng.integers(0, 2, 300).astype(float)
    ours = paired_difference(a, b)
    interval = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (ours["low"], ours["high"]) == pytest.approx((interval.low, interval.high))


def test_a_changed_concept_makes_the_retrained_candidate_win_and_opens_a_retrain_task(trained):
    _log(trained, 700, seed=23)
    _label_everything(trained, lambda features, predicted: int(features["age"] < 35))
    result = _run("comprehensive_evaluation", trained)
    assert result.figures["candidate"] > result.figures["production"] and result.figures["difference_low"] > 0
    finding = result.findings[0]
    assert finding.follow_up == "adaptive" and finding.follow_up_procedure == "retrain_candidate"
    assert sorted(v.version_id for v in registry.list_versions(open_store(trained))) == ["v1", "v2"], "nothing registered"
    retrained = _run(finding.follow_up_procedure, trained, **finding.follow_up_params)
    assert registry.alias_target(open_store(trained), "candidate") == retrained.figures["candidate"]
    assert retrained.figures["sources"]["labelled production traffic"] == 700


def test_labels_that_agree_with_production_keep_it(trained):
    _log(trained, 300, seed=24)
    _label_everything(trained, lambda features, predicted: predicted)
    result = _run("comprehensive_evaluation", trained)
    assert result.findings == [] and result.recommendations[0].startswith("keep v1")
    assert result.figures["production"] == 1.0


def test_only_versions_never_served_and_old_are_listed_for_archiving(trained):
    old = time.time() - 120 * 86_400
    train_version(trained, "v-old", credit_applications(n_rows=600, seed=9), "default", actor=OPERATOR,
                  then="none", clock=lambda: old)
    result = _run("archive_candidates", trained, older_than_days=90)
    assert [v["version_id"] for v in result.figures["archive"]] == ["v-old"]
    assert result.figures["archive"][0]["bytes"] > 0 and "v-old" in result.findings[0].summary
    assert (trained.model_store_path / "v-old").is_dir(), "listing never deletes"
