"""Labelled production traffic as a training table: what came in, what the model said, what was true.

It sits with the data (not with serving) because retraining and the accuracy monitors read it; the
prediction log it reads is a foundation table that serving writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, select

from opscore.exceptions import BadInputError
from opscore.store import Store, predictions

# One count query per window: enough for a week of hours or a year of days, and bounded.
MAX_WINDOWS = 1_000


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _decoded(values: Sequence[str | None]) -> list[Any]:
    """JSON-decoded values, each distinct text parsed once (a column holds a handful of classes)."""
    seen: dict[str | None, Any] = {}
    out = []
    for value in values:
        if value not in seen:
            seen[value] = _loads(value)
        out.append(seen[value])
    return out


def class_key(value: Any) -> str | None:
    """One spelling per class, so a label sent as "1" or 1.0 matches a prediction logged as 1."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return str(int(number)) if number.is_integer() else value
    return str(value)


def class_keys(values: Sequence[Any]) -> list[str | None]:
    """:func:`class_key` of each value, each distinct value spelled once."""
    seen: dict[tuple[type, Any], str | None] = {}
    out = []
    for value in values:
        marked = (type(value), value)  # True and 1 hash alike but are spelled apart
        try:
            key = seen[marked]
        except KeyError:
            key = seen[marked] = class_key(value)
        except TypeError:  # unhashable (a list): spelled on its own
            key = class_key(value)
        out.append(key)
    return out


def labelled_predictions(store: Store, start: float | None = None, end: float | None = None,
                         version_id: str | None = None, *, newest: int | None = None) -> pd.DataFrame:
    """Labelled traffic as a table: request_id, at, version_id, each feature, prediction, probability, label,
    oldest first; ``newest`` keeps only that many of the newest rows, chosen by the database.

    ``probability`` is the one serving logs (positive class for a binary model, top class otherwise).
    """
    query = (select(predictions.c.request_id, predictions.c.at, predictions.c.version_id, predictions.c.features,
                    predictions.c.prediction, predictions.c.probability, predictions.c.label)
             .where(predictions.c.label.is_not(None), predictions.c.status == "ok"))
    if newest is not None:
        query = query.order_by(predictions.c.at.desc(), predictions.c.id.desc()).limit(max(0, int(newest)))
    else:
        query = query.order_by(predictions.c.at, predictions.c.id)
    if start is not None:
        query = query.where(predictions.c.at >= start)
    if end is not None:
        query = query.where(predictions.c.at < end)
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    with store.read() as conn:
        rows = conn.execute(query).all()
    if newest is not None:
        rows.reverse()
    features = pd.DataFrame.from_records([json.loads(r.features) for r in rows])
    meta = pd.DataFrame({
        "request_id": [r.request_id for r in rows],
        "at": [r.at for r in rows],
        "version_id": [r.version_id for r in rows],
    })
    outcome = pd.DataFrame({
        "prediction": [_loads(r.prediction) for r in rows],
        "probability": np.array([r.probability for r in rows], dtype=float),
        "label": [_loads(r.label) for r in rows],
    })
    features = features.drop(columns=[c for c in features.columns if c in {*meta.columns, *outcome.columns}])
    return pd.concat([meta, features, outcome], axis=1)


def prediction_counts(store: Store, edges: Sequence[float], version_id: str | None = None) -> list[int]:
    """Answered predictions (labelled or not) in each window [edges[i], edges[i+1]): the labelled share's denominator."""
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise BadInputError("window edges must be at least two strictly increasing times")
    if len(edges) > MAX_WINDOWS + 1:
        raise BadInputError(f"{len(edges) - 1} windows are too many; ask for at most {MAX_WINDOWS}")
    query = select(func.count()).select_from(predictions).where(
        predictions.c.status == "ok", predictions.c.at >= bindparam("start"), predictions.c.at < bindparam("end"))
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    with store.read() as conn:
        return [int(conn.execute(query, {"start": float(a), "end": float(b)}).scalar_one())
                for a, b in zip(edges, edges[1:], strict=False)]


def labelled_outcomes(store: Store, start: float | None = None, end: float | None = None,
                      version_id: str | None = None) -> pd.DataFrame:
    """Labelled answered predictions in [start, end), oldest first: at, prediction, probability, label.

    What the accuracy monitors need and no features: the rows come from the covering partial index of
    labelled rows, as plain tuples, so a window with a million predictions costs its labelled share.
    (Ordered by time alone: a tie-break on id would send SQLite to the index of all rows.)
    """
    query = (select(predictions.c.at, predictions.c.prediction, predictions.c.probability, predictions.c.label)
             .where(predictions.c.label.is_not(None), predictions.c.status == "ok")
             .order_by(predictions.c.at))
    if start is not None:
        query = query.where(predictions.c.at >= start)
    if end is not None:
        query = query.where(predictions.c.at < end)
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    with store.read() as conn:
        rows = conn.execute(query).cursor.fetchall()
    at, prediction, probability, label = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pd.DataFrame({
        "at": np.array(at, dtype=float),
        "prediction": _decoded(prediction),
        "probability": np.array([math.nan if p is None else p for p in probability], dtype=float),
        "label": _decoded(label),
    })


def logged_outcomes(store: Store, start: float | None = None, end: float | None = None,
                    version_id: str | None = None) -> pd.DataFrame:
    """Every answered prediction in [start, end), labelled or not: at, prediction, probability, label (None if none).

    Features are left out: estimating accuracy without labels needs only what the model said.
    """
    query = (select(predictions.c.at, predictions.c.prediction, predictions.c.probability, predictions.c.label)
             .where(predictions.c.status == "ok").order_by(predictions.c.at))
    if start is not None:
        query = query.where(predictions.c.at >= start)
    if end is not None:
        query = query.where(predictions.c.at < end)
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    with store.read() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame({
        "at": np.array([r.at for r in rows], dtype=float),
        "prediction": [_loads(r.prediction) for r in rows],
        "probability": np.array([r.probability for r in rows], dtype=float),
        "label": [_loads(r.label) for r in rows],
    })
