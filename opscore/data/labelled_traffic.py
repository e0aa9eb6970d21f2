"""Labelled production traffic as a training table: what came in, what the model said, what was true.

It sits with the data (not with serving) because retraining and the accuracy monitors read it; the
prediction log it reads is a foundation table that serving writes.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import select

from opscore.store import Store, predictions


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def labelled_predictions(store: Store, start: float | None = None, end: float | None = None,
                         version_id: str | None = None) -> pd.DataFrame:
    """Labelled traffic as a table for retraining: request_id, at, version_id, each feature, prediction, label."""
    query = (select(predictions.c.request_id, predictions.c.at, predictions.c.version_id, predictions.c.features,
                    predictions.c.prediction, predictions.c.label)
             .where(predictions.c.label.is_not(None), predictions.c.status == "ok").order_by(predictions.c.at))
    if start is not None:
        query = query.where(predictions.c.at >= start)
    if end is not None:
        query = query.where(predictions.c.at < end)
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    with store.read() as conn:
        rows = conn.execute(query).all()
    features = pd.DataFrame.from_records([json.loads(r.features) for r in rows])
    meta = pd.DataFrame({
        "request_id": [r.request_id for r in rows],
        "at": [r.at for r in rows],
        "version_id": [r.version_id for r in rows],
    })
    outcome = pd.DataFrame({
        "prediction": [_loads(r.prediction) for r in rows],
        "label": [_loads(r.label) for r in rows],
    })
    features = features.drop(columns=[c for c in features.columns if c in {*meta.columns, *outcome.columns}])
    return pd.concat([meta, features, outcome], axis=1)
