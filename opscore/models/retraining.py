"""Retraining: a new candidate from a version's own training data plus newer labelled data.

The new version is trained on the base version's training data (read back from the model store by
its fingerprint), optionally extended by an uploaded table and by labelled production traffic. It
becomes the candidate, never production: an operator compares it with production and promotes it.
A version registered from outside is refitted as a clone of itself rather than as the ensemble.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.data.datasets import read_csv_bytes
from opscore.data.labelled_traffic import labelled_predictions
from opscore.exceptions import BadInputError
from opscore.models import artifacts, claims, registry
from opscore.models.registration import refit_estimator
from opscore.models.registry import VersionInfo
from opscore.models.training import Progress, no_progress, train_version
from opscore.models.version_metrics import metrics_side_by_side
from opscore.store import Store, open_store, predictions

# The newest labelled requests are the ones worth learning from; older ones are already well covered.
MAX_TRAFFIC_ROWS = 100_000



@dataclass(frozen=True)
class RetrainOutcome:
    """The new candidate, what it was trained on, and production to compare it with."""

    candidate: VersionInfo
    production: VersionInfo | None
    sources: dict[str, int]
    notes: list[str]
    seconds: float

    def comparison(self) -> pd.DataFrame:
        """Holdout metrics: metric, <production>, <candidate>, change, better (see version_metrics.metrics_side_by_side)."""
        return metrics_side_by_side(self.production, self.candidate)

    def to_dict(self) -> dict[str, Any]:
        """What ``POST /retrain`` answers: the candidate, production beside it, and what it was trained on."""
        return {
            "candidate": self.candidate.to_dict(),
            "production": self.production.version_id if self.production else None,
            "sources": dict(self.sources),
            "notes": list(self.notes),
            "seconds": self.seconds,
            "comparison": self.comparison().astype(object).where(lambda f: f.notna(), None).to_dict(orient="records"),
        }


def labelled_traffic_count(store: Store) -> int:
    """How many logged predictions carry a label (what ``include_labelled_traffic`` would add)."""
    query = select(func.count()).select_from(predictions).where(
        predictions.c.label.is_not(None), predictions.c.status == "ok"
    )
    with store.read() as conn:
        return int(conn.execute(query).scalar() or 0)


def suggest_version_id(store: Store) -> str:
    """The next free id in the newest version's naming scheme: v3 after v2, else ``<newest>-2``.

    Ids being trained right now count as taken, so a second operator is offered the next one.
    """
    found = registry.list_versions(store)
    claimed = claims.claimed_ids(store)
    if not found:
        return next(f"v{n}" for n in range(1, len(claimed) + 2) if f"v{n}" not in claimed)
    taken = {v.version_id for v in found} | claimed
    match = re.fullmatch(r"(.*?)(\d+)", found[0].version_id)
    prefix, number = (match.group(1), int(match.group(2))) if match else (f"{found[0].version_id}-", 1)
    while f"{prefix}{number + 1}" in taken:
        number += 1
    return f"{prefix}{number + 1}"


@dataclass(frozen=True)
class RetrainOptions:
    """What a retrain can start from: versions (production first), labelled traffic, a fresh id."""

    versions: list[VersionInfo]
    production: str | None
    labelled_traffic: int
    suggested_id: str

    def version(self, version_id: str) -> VersionInfo:
        return next(v for v in self.versions if v.version_id == version_id)


def retrain_options(settings: Settings) -> RetrainOptions:
    store = open_store(settings)
    found = registry.list_versions(store)
    production = registry.alias_target(store, "production")
    found.sort(key=lambda v: (v.version_id != production, -v.created_at))
    return RetrainOptions(found, production, labelled_traffic_count(store), suggest_version_id(store))


def _extra_rows(extra: pd.DataFrame | bytes, info: VersionInfo, max_bytes: int) -> tuple[pd.DataFrame, list[str]]:
    frame = read_csv_bytes(extra, "the uploaded file", max_bytes) if isinstance(extra, bytes) else extra
    wanted = [*info.feature_schema.names, info.target]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise BadInputError(
            f"the added data lacks column(s) {', '.join(map(repr, missing))}; {info.version_id} was trained on "
            f"{', '.join(info.feature_schema.names)} with target {info.target!r}"
        )
    notes = []
    ignored = [str(c) for c in frame.columns if c not in wanted]
    if ignored:
        notes.append(f"ignored column(s) the model does not use: {', '.join(ignored)}")
    return frame[wanted], notes


def _traffic_rows(store: Store, info: VersionInfo, target_dtype: object) -> pd.DataFrame:
    # The database keeps the newest rows: reading every labelled row to drop most would grow without bound.
    traffic = labelled_predictions(store, newest=MAX_TRAFFIC_ROWS)
    if traffic.empty:
        return pd.DataFrame(columns=[*info.feature_schema.names, info.target])
    for name in info.feature_schema.names:
        if name not in traffic.columns:
            traffic[name] = None
    labels = traffic["label"]
    try:
        # Labels arrive as JSON; 1 and "1" must not become two classes next to the training data's 1.
        labels = labels.astype(target_dtype)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"labelled traffic has labels unlike {info.target!r} in the training data: {exc}") from exc
    return traffic[info.feature_schema.names].assign(**{info.target: labels.to_numpy()})


def retrain(
    settings: Settings,
    base_version: str | None,
    extra_frame: pd.DataFrame | bytes | None = None,
    include_labelled_traffic: bool = False,
    *,
    actor: Actor,
    version_id: str | None = None,
    progress: Progress = no_progress,
    clock: Callable[[], float] = time.time,
) -> RetrainOutcome:
    """Train a candidate on ``base_version``'s data plus ``extra_frame`` (a frame or uploaded CSV bytes)
    and, if asked, labelled production traffic. Returns it with production's metrics beside it.
    ``base_version`` None starts from production's training data.

    ``clock`` times the new version and its candidate move (see :func:`train_version`)."""
    actor.require_operator("retraining")
    started = time.perf_counter()
    store = open_store(settings)
    base_version = base_version or registry.alias_target(store, "production")
    if base_version is None:
        raise BadInputError("nothing to retrain from: there is no production version yet; name one with --from")
    info = registry.get_version(store, base_version)
    version_id = (version_id or "").strip() or suggest_version_id(store)
    progress("loading training data", 0.0)
    base = artifacts.read_dataset(settings.model_store_path, info.fingerprint)
    parts = [base[[*info.feature_schema.names, info.target]]]
    sources = {f"rows of {base_version}'s training data": len(base)}
    notes: list[str] = []
    if extra_frame is not None:
        added, extra_notes = _extra_rows(extra_frame, info, int(settings.dashboard_upload_mb * 1_000_000))
        parts.append(added)
        sources["uploaded rows"] = len(added)
        notes += extra_notes
    if include_labelled_traffic:
        progress("reading labelled traffic", 0.03)
        traffic = _traffic_rows(store, info, base[info.target].dtype)
        if traffic.empty:
            raise BadInputError("no labelled production traffic yet: send labels to /feedback first, or untick it")
        parts.append(traffic)
        sources["labelled production traffic"] = len(traffic)
    combined = pd.concat(parts, ignore_index=True)
    described = " + ".join(f"{n:,} {what}" for what, n in sources.items())

    def training_progress(stage: str, fraction: float) -> None:
        progress(stage, 0.05 + 0.95 * fraction)

    outcome = train_version(
        settings, version_id, combined, info.target, task=info.task, actor=actor, created_by="retrain",
        parent_version=base_version, notes=f"retrained from {described}", then="candidate",
        progress=training_progress, estimator=refit_estimator(settings, info), clock=clock,
    )
    production_id = registry.alias_target(store, "production")
    production = registry.get_version(store, production_id) if production_id else None
    return RetrainOutcome(outcome.version, production, sources, notes + outcome.notes,
                          time.perf_counter() - started)
