"""Ground truth joined to logged predictions by request id (``POST /feedback``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from opscore.exceptions import BadInputError
from opscore.store import Store, predictions


@dataclass(frozen=True)
class FeedbackResult:
    joined: int
    unknown: list[str]

def record_feedback(store: Store, items: list[dict[str, Any]]) -> FeedbackResult:
    """Join ground-truth labels to logged predictions by request id; unknown ids are returned, not raised."""
    cleaned: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadInputError(f"feedback item {i}: expected an object with request_id and label")
        request_id, label = item.get("request_id"), item.get("label")
        if not isinstance(request_id, str) or not request_id:
            raise BadInputError(f"feedback item {i}: request_id must be a non-empty string")
        if label is None:
            raise BadInputError(f"feedback item {i} ({request_id}): label is required")
        try:
            cleaned[request_id] = json.dumps(label, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"feedback item {i} ({request_id}): label is not a JSON value ({exc})") from exc
    if not cleaned:
        return FeedbackResult(0, [])
    ids = list(cleaned)
    now = time.time()
    with store.write() as conn:
        known: set[str] = set()
        for i in range(0, len(ids), 500):
            known.update(conn.execute(
                select(predictions.c.request_id).where(predictions.c.request_id.in_(ids[i:i + 500]))
            ).scalars())
        if known:
            conn.execute(
                update(predictions).where(predictions.c.request_id == bindparam("joined_id"))
                .values(label=bindparam("joined_label"), labelled_at=now),
                [{"joined_id": r, "joined_label": cleaned[r]} for r in ids if r in known],
            )
    return FeedbackResult(len(known), [r for r in ids if r not in known])
