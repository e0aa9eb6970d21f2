"""Training end to end: what a version keeps, and what the model learns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opscore.exceptions import BadInputError
from opscore.models import artifacts, registry
from opscore.models.training import STAGES, train_version
from opscore.store import open_store


def test_a_version_keeps_everything_monitoring_and_retraining_need(workspace, demo_frame, operator):
    seen = []
    outcome = train_version(workspace, "v1", demo_frame, "default", actor=operator,
                            progress=lambda stage, fraction: seen.append((stage, fraction)))
    assert [s for s, _ in seen] == list(STAGES)
    assert [f for _, f in seen] == sorted(f for _, f in seen)
    version = outcome.version
    assert version.metrics["roc_auc"] > 0.7 and 0 < version.metrics["log_loss"] < 1
    assert version.training_rows == len(demo_frame) and version.task == "classification"
    root = workspace.model_store_path
    profile = json.loads((root / "v1" / "reference_profile.json").read_text())
    assert set(profile["columns"]) == set(demo_frame.columns) - {"default"}
    assert len(json.loads((root / "v1" / "input_example.json").read_text())) == 5
    kept = artifacts.read_dataset(root, version.fingerprint)
    assert len(kept) == len(demo_frame) and "default" in kept.columns


def test_regression_learns_a_known_relation(workspace, operator):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=400), "group": rng.choice(["a", "b"], 400)})
    frame["y"] = 2 * frame["x"] + (frame["group"] == "b") * 3 + rng.normal(0, 0.1, 400)
    outcome = train_version(workspace, "r", frame, "y", actor=operator)
    assert outcome.version.task == "regression" and outcome.version.metrics["r2"] > 0.95


def test_then_none_leaves_aliases_alone(workspace, demo_frame, operator):
    train_version(workspace, "a", demo_frame, "default", actor=operator)
    outcome = train_version(workspace, "b", demo_frame, "default", actor=operator, then="none")
    assert outcome.version.aliases == () and not outcome.promoted
    assert registry.alias_target(open_store(workspace)) == "a"
    with pytest.raises(BadInputError, match="then must be"):
        train_version(workspace, "c", demo_frame, "default", actor=operator, then="sometimes")
