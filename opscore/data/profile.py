"""The reference profile: what training data looked like, computed once at training time.

Drift monitoring compares live data against this profile and never re-reads the training data.
Numeric columns keep quantile bin edges with counts (for PSI / Jensen-Shannon / Wasserstein on
binned data), mean, std and missing share; categorical columns keep their frequencies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from opscore.data.features import FeatureSchema

QUANTILE_BINS = 20


def numeric_profile(values: np.ndarray) -> dict[str, Any]:
    """Quantile bin edges and counts of the finite values, plus moments and missing share."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    n_missing = int(values.size - finite.size)
    if finite.size == 0:
        return {"kind": "numeric", "n": int(values.size), "missing_share": 1.0 if values.size else 0.0,
                "edges": [], "counts": [], "mean": None, "std": None}
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, QUANTILE_BINS + 1)))
    inner = edges[1:-1]
    # Bin i holds edges[i] < x <= edges[i+1]; open-ended outer bins catch live values beyond the range.
    counts = np.bincount(np.searchsorted(inner, finite, side="left"), minlength=inner.size + 1)
    return {
        "kind": "numeric",
        "n": int(values.size),
        "missing_share": n_missing / values.size,
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def categorical_profile(values: pd.Series) -> dict[str, Any]:
    """Category frequencies of the non-missing values, plus missing share."""
    n = int(values.size)
    present = values.dropna().astype(str)
    counts = present.value_counts()
    return {
        "kind": "categorical",
        "n": n,
        "missing_share": float(1 - present.size / n) if n else 0.0,
        "frequencies": {str(k): int(v) for k, v in counts.items()},
    }


def reference_profile(features: pd.DataFrame, schema: FeatureSchema, predictions: np.ndarray | None) -> dict[str, Any]:
    """Profile every feature (and the model's scores on the holdout, when given)."""
    columns: dict[str, Any] = {}
    for spec in schema.features:
        column = features[spec.name]
        if spec.kind == "numeric":
            columns[spec.name] = numeric_profile(column.to_numpy(dtype=float))
        else:
            columns[spec.name] = categorical_profile(column)
    profile: dict[str, Any] = {"rows": int(len(features)), "columns": columns}
    if predictions is not None:
        profile["prediction"] = numeric_profile(np.asarray(predictions, dtype=float))
    return profile
