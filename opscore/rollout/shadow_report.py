"""How a shadow version answered the same requests as production: the report no serving tool shows.

Production's rows and the shadow's (request id ``"<id>:shadow"``) are joined row by row. Agreement is
the same class for a classifier, within ``tolerance`` for a regressor. The report keeps disagreement
examples with both answers and the features, the distribution of the score difference (shadow minus
production: the logged probability for a classifier, the prediction for a regressor), each version's
latency (production's per request end to end, the shadow's per model call it shared) and, where
labels arrived for production's rows, the accuracy of both on those rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from opscore.config import Settings
from opscore.exceptions import NotFoundError
from opscore.models import registry
from opscore.store import deployments, open_store, predictions

SUFFIX = ":shadow"
_EXAMPLES = 20
_HISTOGRAM_BINS = 20


@dataclass
class ShadowReport:
    deployment_id: str
    production_version: str | None
    shadow_version: str
    task: str
    compared: int
    production_rows: int
    shadow_rows: int
    agreement_rate: float | None
    tolerance: float | None
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    score_difference: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _latency(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "mean": None}
    array = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)), "mean": float(array.mean())}


def shadow_report(settings: Settings, deployment_id: str, tolerance: float = 0.05) -> ShadowReport:
    """The report for one deployment's shadow traffic so far (``tolerance``: regression agreement)."""
    store = open_store(settings)
    with store.read() as conn:
        deployment = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).first()
        if deployment is None:
            raise NotFoundError(f"no deployment {deployment_id!r}")
        rows = conn.execute(select(
            predictions.c.request_id, predictions.c.version_id, predictions.c.role, predictions.c.prediction,
            predictions.c.probability, predictions.c.label, predictions.c.latency_ms, predictions.c.request_rows,
            predictions.c.features, predictions.c.status,
        ).where(predictions.c.deployment_id == deployment_id)).all()
    info = registry.get_version(store, deployment.version_id)
    regression = info.task != "classification"
    shadow = {r.request_id[: -len(SUFFIX)]: r for r in rows if r.role == "shadow"}
    production = {r.request_id: r for r in rows if r.role != "shadow" and r.status == "ok"}
    pairs = [(production[key], row) for key, row in shadow.items() if key in production]
    agree = 0
    differences: list[float] = []
    examples: list[dict[str, Any]] = []
    labelled = right_production = right_shadow = 0
    for prod, shad in pairs:
        a, b = _decode(prod.prediction), _decode(shad.prediction)
        if regression:
            same = a is not None and b is not None and abs(float(a) - float(b)) <= tolerance
            difference = float(b) - float(a) if a is not None and b is not None else None
        else:
            same = a == b
            difference = (shad.probability - prod.probability
                          if shad.probability is not None and prod.probability is not None else None)
        agree += same
        if difference is not None:
            differences.append(difference)
        if not same and len(examples) < _EXAMPLES:
            examples.append({"request_id": prod.request_id, "production": a, "shadow": b,
                             "production_probability": prod.probability, "shadow_probability": shad.probability,
                             "features": _decode(prod.features)})
        if prod.label is not None:
            label = _decode(prod.label)
            labelled += 1
            right_production += _right(a, label, regression, tolerance)
            right_shadow += _right(b, label, regression, tolerance)
    distribution: dict[str, Any] = {"count": len(differences)}
    if differences:
        array = np.asarray(differences)
        counts, edges = np.histogram(array, bins=_HISTOGRAM_BINS)
        distribution.update(mean=float(array.mean()), p05=float(np.percentile(array, 5)),
                            p50=float(np.percentile(array, 50)), p95=float(np.percentile(array, 95)),
                            max_abs=float(np.abs(array).max()), counts=counts.tolist(), edges=edges.tolist())
    return ShadowReport(
        deployment_id=deployment_id,
        production_version=deployment.baseline_version,
        shadow_version=deployment.version_id,
        task=info.task,
        compared=len(pairs),
        production_rows=len(production),
        shadow_rows=len(shadow),
        agreement_rate=agree / len(pairs) if pairs else None,
        tolerance=tolerance if regression else None,
        disagreements=examples,
        score_difference=distribution,
        latency_ms={
            "production": _latency([p.latency_ms for p, _ in pairs if p.request_rows]),
            "shadow": _latency([s.latency_ms for _, s in pairs if s.request_rows]),
        },
        accuracy={"labelled": labelled,
                  "production": right_production / labelled if labelled else None,
                  "shadow": right_shadow / labelled if labelled else None},
    )


def _right(answer: Any, label: Any, regression: bool, tolerance: float) -> bool:
    if answer is None:
        return False
    if regression:
        return abs(float(answer) - float(label)) <= tolerance
    return answer == label or str(answer) == str(label)
