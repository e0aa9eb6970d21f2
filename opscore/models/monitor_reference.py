"""What the monitors need from training, fitted once and kept in the version folder.

``monitor_reference.json`` holds the multivariate drift reference (PCA fitted on the training rows,
bounds from the holdout) and the probability calibration (fitted on the holdout) that estimating
accuracy without labels needs. Monitors read this file and never the training data. Versions
trained before it existed have no such file; they load as ``None`` and their monitors say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from opscore.data.features import FeatureSchema
from opscore.data.multivariate import fit_multivariate_reference
from opscore.exceptions import NotFoundError
from opscore.models.artifacts import check_version_id
from opscore.models.calibration import fit_calibration

FILE_NAME = "monitor_reference.json"


def build_monitor_reference(schema: FeatureSchema, x_train: pd.DataFrame, x_test: pd.DataFrame,
                            y_test: pd.Series, model: Any, seed: int = 0) -> dict[str, Any]:
    """Fit both references; ``model`` is the fitted pipeline (its ``predict_proba`` scores the holdout)."""
    calibration = None
    if schema.task == "classification" and hasattr(model, "predict_proba"):
        calibration = fit_calibration(model.predict_proba(x_test), y_test.to_numpy(), model.classes_)
    return {"multivariate": fit_multivariate_reference(x_train, schema, x_test, seed=seed), "calibration": calibration}


def read_monitor_reference(root: Path, version_id: str) -> dict[str, Any] | None:
    """The version's monitor reference, or None for a version trained before it was kept."""
    folder = root / check_version_id(version_id)
    if not folder.is_dir():
        raise NotFoundError(f"version {version_id!r} has no folder in the model store ({folder})")
    path = folder / FILE_NAME
    return json.loads(path.read_text()) if path.exists() else None
