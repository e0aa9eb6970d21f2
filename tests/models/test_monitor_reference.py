"""What training keeps for the monitors, and versions trained before it still loading."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opscore.data.multivariate import reconstruction_errors
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import NotFoundError
from opscore.models.calibration import calibrate
from opscore.models.monitor_reference import FILE_NAME, read_monitor_reference
from opscore.models.training import train_version


def test_a_trained_version_keeps_its_monitor_reference(workspace, demo_frame, operator):
    train_version(workspace, "v1", demo_frame, "default", actor=operator)
    root = workspace.model_store_path
    assert (root / "v1" / FILE_NAME).exists()
    reference = read_monitor_reference(root, "v1")
    multivariate, calibration = reference["multivariate"], reference["calibration"]
    assert multivariate["bounds_from"] == "holdout"
    assert multivariate["reference_rows"] == round(len(demo_frame) * workspace.holdout_fraction)
    fresh = credit_applications(n_rows=500, seed=99).drop(columns="default")
    assert multivariate["lower_bound"] <= reconstruction_errors(multivariate, fresh).mean() <= multivariate["upper_bound"]
    recession = credit_applications(n_rows=500, seed=99, shift=1.0).drop(columns="default")
    assert reconstruction_errors(multivariate, recession).mean() > multivariate["upper_bound"]
    assert calibration["method"] == "isotonic" and calibration["positive_class"] == 1
    assert calibration["rows"] == multivariate["reference_rows"]
    assert np.all(np.diff(calibrate(calibration, np.linspace(0, 1, 11))) >= 0)


def test_a_regression_version_has_no_calibration(workspace, operator):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    frame["y"] = frame["x"] * 2 + rng.normal(size=200)
    train_version(workspace, "r1", frame, "y", actor=operator)
    reference = read_monitor_reference(workspace.model_store_path, "r1")
    assert reference["calibration"] is None and "components" in reference["multivariate"]


def test_a_version_trained_before_the_file_existed_loads_as_none(workspace, demo_frame, operator):
    train_version(workspace, "old", demo_frame, "default", actor=operator)
    root = workspace.model_store_path
    (root / "old" / FILE_NAME).unlink()
    assert read_monitor_reference(root, "old") is None
    assert json.loads((root / "old" / "feature_schema.json").read_text())["target"] == "default"
    with pytest.raises(NotFoundError, match="no folder"):
        read_monitor_reference(root, "never-trained")
