"""Training a version end to end: check the data, fit the ensemble, write the artifact, register.

The id is claimed in the store before any work (:mod:`opscore.models.claims`), so a second training of the
same id is refused by name and never touches the first one's folder. The order makes crashes
harmless: nothing is registered until the version folder is complete and renamed into place, and a
folder no registry row claims (a crash between rename and insert) is deleted by the next run that
claims that id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from opscore.access.actors import SYSTEM, Actor
from opscore.config import Settings
from opscore.data.datasets import check_training_frame, fingerprint
from opscore.data.features import infer_schema
from opscore.data.profile import reference_profile
from opscore.exceptions import BadInputError, ConflictError
from opscore.models import artifacts, claims, registry
from opscore.models.ensemble import build_pipeline, ensemble_params, holdout_metrics
from opscore.models.registry import VersionInfo
from opscore.store import open_store

Progress = Callable[[str, float], None]
STAGES = ("checking data", "fitting ensemble", "evaluating holdout", "writing artifact", "registering", "done")


@dataclass(frozen=True)
class TrainingOutcome:
    version: VersionInfo
    notes: list[str]
    promoted: bool


def _quiet(_stage: str, _fraction: float) -> None:
    return None


def train_version(
    settings: Settings,
    version_id: str,
    frame: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    actor: Actor,
    created_by: str = "cli",
    parent_version: str | None = None,
    notes: str = "",
    then: str = "candidate",
    progress: Progress = _quiet,
    clock: Callable[[], float] = time.time,
) -> TrainingOutcome:
    """Train, store and register ``version_id``, then give it an alias.

    ``then`` is ``"promote"`` (production, after the pre-flight check), ``"candidate"`` or ``"none"``.
    The first version of an empty registry takes production whatever ``then`` says. ``clock`` gives
    the version's creation time and its alias move's (a demo replaying a past day passes its own).
    """
    if then not in {"promote", "candidate", "none"}:
        raise BadInputError(f"then must be promote, candidate or none, not {then!r}")
    actor.require_operator("training a version")
    artifacts.check_version_id(version_id)
    store = open_store(settings)
    root = settings.model_store_path
    root.mkdir(parents=True, exist_ok=True)
    with claims.held(store, version_id) as claim:
        artifacts.remove_stale_staging(root)
        # Holding the claim, this is the only training of the id: a folder already there is a leftover.
        artifacts.delete_orphan_folder(root, version_id)
        info, data_notes = _fit_store_register(settings, claim, frame, target, task, created_by, parent_version,
                                               notes, progress, clock)
    promoted = False
    if registry.alias_target(store, "production") is None:
        try:
            registry.move_alias(settings, version_id, SYSTEM, "first version in an empty registry",
                                action="initial", require_empty=True, clock=clock)
            promoted = True
        except ConflictError:
            pass  # another process promoted something first; fall through to ``then``
    if not promoted and then == "promote":
        registry.promote(settings, version_id, actor, notes or f"trained by {actor}", clock=clock)
        promoted = True
    elif not promoted and then == "candidate":
        registry.set_candidate(settings, version_id, actor, notes or f"trained by {actor}", clock=clock)
    progress(STAGES[5], 1.0)
    return TrainingOutcome(registry.get_version(store, version_id), data_notes, promoted)


def _fit_store_register(
    settings: Settings,
    claim: claims.VersionClaim,
    frame: pd.DataFrame,
    target: str,
    task: str | None,
    created_by: str,
    parent_version: str | None,
    notes: str,
    progress: Progress,
    clock: Callable[[], float],
) -> tuple[VersionInfo, list[str]]:
    """Fit, write the artifact and register it, under ``claim``; returns the version and data notes."""
    version_id, root = claim.version_id, settings.model_store_path
    progress(STAGES[0], 0.02)
    features, labels, task, data_notes = check_training_frame(frame, target, task)
    started = time.perf_counter()
    stratify = labels if task == "classification" and labels.value_counts().min() >= 2 else None
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=settings.holdout_fraction, random_state=settings.seed, stratify=stratify
        )
    except ValueError as exc:
        raise BadInputError(f"cannot split a holdout from {len(features)} rows: {exc}") from exc
    classes = sorted(pd.unique(labels).tolist(), key=str) if task == "classification" else None
    schema = infer_schema(features, target, task, classes)

    progress(STAGES[1], 0.1)
    pipeline = build_pipeline(schema, settings.seed, settings.forest_trees, settings.boosting_rounds)
    try:
        pipeline.fit(x_train, y_train)
    except ValueError as exc:
        raise BadInputError(f"the ensemble could not be fitted on this data: {exc}") from exc

    progress(STAGES[2], 0.7)
    metrics = holdout_metrics(pipeline, x_test, y_test, task)
    scores = pipeline.predict_proba(x_test)[:, -1] if task == "classification" else pipeline.predict(x_test)
    profile = reference_profile(x_train, schema, np.asarray(scores))
    train_seconds = time.perf_counter() - started
    data_fingerprint = fingerprint(frame)
    example = x_test.head(5).astype(object).where(x_test.head(5).notna(), None).to_dict(orient="records")

    progress(STAGES[3], 0.8)
    sha = artifacts.write_version(
        root,
        version_id,
        pipeline,
        {
            "feature_schema.json": schema.to_dict(),
            "reference_profile.json": profile,
            "input_example.json": example,
            "fingerprint.txt": data_fingerprint,
            "metadata.json": {"metrics": metrics, "task": task, "target": target, "pid": os.getpid()},
        },
    )
    artifacts.write_dataset(root, data_fingerprint, frame)

    progress(STAGES[4], 0.9)
    info = VersionInfo(
        version_id=version_id,
        created_at=clock(),
        task=task,
        target=target,
        params=ensemble_params(task, settings.seed, settings.forest_trees, settings.boosting_rounds),
        metrics=metrics,
        fingerprint=data_fingerprint,
        feature_schema=schema,
        artifact_sha256=sha,
        parent_version=parent_version,
        created_by=created_by,
        notes=notes,
        training_rows=int(len(features)),
        train_seconds=train_seconds,
    )
    registry.insert_version(open_store(settings), info, claim)
    return info, data_notes
