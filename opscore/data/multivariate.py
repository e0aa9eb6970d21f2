"""The multivariate drift reference: how well a PCA of the training features rebuilds a row.

Univariate tests compare one column at a time and miss a change in how columns move together (same
marginals, broken correlation). Following NannyML, rows are encoded, projected onto the principal
components that keep 65 % of the training variance and projected back; the distance between a row
and its reconstruction grows when live data stops following the training data's structure.

Everything is fitted once at training time and stored as plain JSON (medians, scales, categories,
the PCA mean and components), so scoring is numpy only and never re-reads the training data.
Alert bounds come from rows the PCA was not fitted on (the holdout): in-sample errors are biased
low by about the same amount as the band is wide, which would make every live chunk look drifted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from opscore.data.features import FeatureSchema
from opscore.exceptions import BadInputError

VARIANCE_KEPT = 0.65
CHUNK_ROWS = 500
SIGMAS = 3.0
# One-hot columns per categorical feature, most frequent first; rarer categories encode as all zeros.
MAX_ONE_HOT = 20
MIN_CATEGORY_SHARE = 0.01
# PCA on more rows than this gains nothing measurable and costs training time.
MAX_FIT_ROWS = 50_000


def _encoding(frame: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """Per feature: its median and scale (numeric) or its one-hot categories (categorical)."""
    columns: list[dict[str, Any]] = []
    for spec in schema.features:
        column = frame[spec.name]
        if spec.kind == "numeric":
            values = _numbers(column)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                continue  # nothing to learn from an empty column; live values there say nothing either
            median = float(np.median(finite))
            filled = np.where(np.isfinite(values), values, median)
            scale = float(filled.std())
            columns.append({"name": spec.name, "kind": "numeric", "median": median, "mean": float(filled.mean()),
                            "scale": scale if scale > 0 else 1.0})
        else:
            shares = column.dropna().astype(str).value_counts() / max(len(column), 1)
            known = set(spec.categories or [])
            kept = [str(c) for c, share in shares.items() if c in known and share >= MIN_CATEGORY_SHARE][:MAX_ONE_HOT]
            for category in kept:
                share = float(shares[category])
                columns.append({"name": spec.name, "kind": "category", "category": category, "mean": share,
                                "scale": float(np.sqrt(share * (1 - share))) or 1.0})
    return columns


def _numbers(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(values), values, np.nan)


def _encode(encoding: list[dict[str, Any]], frame: pd.DataFrame) -> np.ndarray:
    """Rows as standardised numbers: medians fill gaps; unseen or missing categories are all zeros."""
    missing = sorted({c["name"] for c in encoding} - set(frame.columns))
    if missing:
        raise BadInputError(f"multivariate drift needs column(s) {', '.join(map(repr, missing))}, absent from the data")
    matrix = np.empty((len(frame), len(encoding)))
    cache: dict[str, np.ndarray] = {}
    for j, column in enumerate(encoding):
        name = column["name"]
        if column["kind"] == "numeric":
            values = _numbers(frame[name])
            values = np.where(np.isnan(values), column["median"], values)
        else:
            if name not in cache:
                text = frame[name]
                cache[name] = np.where(text.isna(), None, text.astype(str)).astype(object)
            values = (cache[name] == column["category"]).astype(float)
        matrix[:, j] = (values - column["mean"]) / column["scale"]
    return matrix


def _errors(reference: dict[str, Any], matrix: np.ndarray) -> np.ndarray:
    mean = np.asarray(reference["pca_mean"])
    components = np.asarray(reference["components"]).reshape(-1, matrix.shape[1])
    centred = matrix - mean
    rebuilt = centred @ components.T @ components
    return np.sqrt(((centred - rebuilt) ** 2).sum(axis=1))


def fit_multivariate_reference(frame: pd.DataFrame, schema: FeatureSchema, holdout: pd.DataFrame | None = None,
                               *, chunk_rows: int = CHUNK_ROWS, seed: int = 0) -> dict[str, Any]:
    """Fit the encoding and PCA on ``frame``; set the alert bounds from ``holdout`` (else from ``frame``).

    The bounds are the mean error ± 3σ, σ being the spread of a chunk's mean error around the
    reference's: from the standard deviation of the row errors (what the spread of chunk means
    estimates for independent rows), so it stays usable when the holdout holds only a few chunks
    and adapts to live windows of any size (:func:`alert_bounds`).
    """
    if len(frame) < 2:
        raise BadInputError("multivariate drift needs at least two training rows")
    if len(frame) > MAX_FIT_ROWS:
        frame = frame.sample(MAX_FIT_ROWS, random_state=seed)
    encoding = _encoding(frame, schema)
    if len(encoding) < 2:
        return {"method": "pca_reconstruction", "skipped": "a PCA needs at least two encoded features; "
                "with fewer the reconstruction is exact and says nothing about drift"}
    matrix = _encode(encoding, frame)
    if not np.any(matrix.std(axis=0) > 0):
        return {"method": "pca_reconstruction", "skipped": "every training feature is constant; there is no "
                "structure for a PCA to learn"}
    pca = PCA(n_components=VARIANCE_KEPT, svd_solver="full", random_state=seed).fit(matrix)
    reference: dict[str, Any] = {
        "method": "pca_reconstruction",
        "variance_kept": VARIANCE_KEPT,
        "explained_variance": float(pca.explained_variance_ratio_.sum()),
        "encoding": encoding,
        "pca_mean": pca.mean_.tolist(),
        "components": pca.components_.tolist(),
    }
    measured_on = holdout if holdout is not None and len(holdout) >= 2 else frame
    errors = _errors(reference, _encode(encoding, measured_on))
    reference.update({
        "bounds_from": "holdout" if measured_on is holdout else "training rows",
        "reference_rows": int(errors.size),
        "mean_error": float(errors.mean()),
        "row_error_std": float(errors.std(ddof=1)),
        "chunk_rows": int(chunk_rows),
        "sigmas": SIGMAS,
    })
    reference["lower_bound"], reference["upper_bound"] = alert_bounds(reference, chunk_rows)
    return reference


def reconstruction_errors(reference: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Per row, the distance between the encoded row and its PCA reconstruction."""
    if reference.get("skipped"):
        raise BadInputError(f"this version has no multivariate drift reference: {reference['skipped']}")
    return _errors(reference, _encode(reference["encoding"], frame))


def alert_bounds(reference: dict[str, Any], rows: int) -> tuple[float, float]:
    """The band a chunk of ``rows`` rows keeps its mean error in while nothing has changed.

    σ counts both means' sampling error (the chunk's and the reference's): with a small holdout the
    reference mean is itself uncertain, and ignoring that fires on data like the training data.
    """
    if rows < 1:
        raise BadInputError("a chunk needs at least one row")
    sigma = reference["row_error_std"] * np.sqrt(1 / rows + 1 / reference["reference_rows"])
    spread = reference["sigmas"] * sigma
    return max(0.0, float(reference["mean_error"] - spread)), float(reference["mean_error"] + spread)

