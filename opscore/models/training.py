"""Training a version end to end: check the data, fit the ensemble, write the artifact, register.

The id is claimed in the store before any work (:mod:`opscore.models.claims`), so a second training of the
same id is refused by name and never touches the first one's folder. The order makes crashes
harmless: nothing is registered until the version folder is complete and renamed into place, and a
folder no registry row claims (a crash between rename and insert) is deleted by the next run that
claims that id. Registering a model trained elsewhere (``registration.py``) goes through the same
steps: :func:`claim_version_id`, :func:`write_version_files`, ``registry.insert_version`` and :func:`give_alias`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from opscore.access.actors import SYSTEM, Actor
from opscore.config import Settings
from opscore.data.datasets import check_training_frame, fingerprint
from opscore.data.features import frame_to_records, infer_schema
from opscore.data.profile import reference_profile
from opscore.exceptions import BadInputError, ConflictError
from opscore.models import artifacts, claims, registry
from opscore.models.ensemble import build_pipeline, ensemble_params, holdout_metrics
from opscore.models.monitor_reference import build_monitor_reference
from opscore.models.registry import VersionInfo
from opscore.store import Store, open_store

Progress = Callable[[str, float], None]
STAGES = ("checking data", "fitting ensemble", "evaluating holdout", "writing artifact", "registering", "done")


@dataclass(frozen=True)
class TrainingOutcome:
    version: VersionInfo
    notes: list[str]
    promoted: bool


@dataclass(frozen=True)
class Estimator:
    """A model to fit in place of opscore's ensemble (retraining a registered version refits a clone of it).

    ``params`` is what the version records; ``artifact_name`` how its artifact is stored.
    """

    model: Any
    params: dict[str, Any]
    artifact_name: str = artifacts.ARTIFACT


def no_progress(_stage: str, _fraction: float) -> None:
    """The progress callback of a caller that shows none (every long step takes one)."""
    return None


@contextmanager
def claim_version_id(settings: Settings, version_id: str, actor: Actor,
                     doing: str) -> Iterator[tuple[Store, claims.VersionClaim]]:
    """Refuse a malformed, taken or busy id (and an actor who may not), claim it for the block, and
    clear what dead writers left under it; ``registry.insert_version`` turns the claim into the version."""
    actor.require_operator(doing)
    artifacts.check_version_id(version_id)
    store = open_store(settings)
    root = settings.model_store_path
    root.mkdir(parents=True, exist_ok=True)
    with claims.held(store, version_id) as claim:
        artifacts.remove_stale_staging(root)
        # Holding the claim, this is the only writer of the id: a folder already there is a leftover.
        artifacts.delete_orphan_folder(root, version_id)
        yield store, claim


def positive_scores(model: Any, features: pd.DataFrame, task: str) -> np.ndarray | None:
    """The scores the reference profile keeps: last-class probability, the regression value, or None
    for a classifier that gives no probabilities."""
    if task != "classification":
        return np.asarray(model.predict(features), dtype=float)
    if not hasattr(model, "predict_proba"):
        return None
    return np.asarray(model.predict_proba(features))[:, -1]


def input_example(features: pd.DataFrame) -> list[dict[str, Any]]:
    """A few rows the pre-flight check scores before any alias move."""
    return frame_to_records(features.head(5))


def write_version_files(settings: Settings, info: VersionInfo, model: Any, *, profile: dict[str, Any],
                        monitor_reference: dict[str, Any], example: list[dict[str, Any]], frame: pd.DataFrame,
                        metadata: dict[str, Any] | None = None,
                        artifact_name: str = artifacts.ARTIFACT, blob: bytes | None = None) -> VersionInfo:
    """Write the version folder and keep its data; returns ``info`` with the artifact's checksum.

    Insert the registry row only after this: a crash in between leaves a folder no row claims,
    which :func:`claim_version_id` clears.
    """
    root = settings.model_store_path
    sha = artifacts.write_version(
        root,
        info.version_id,
        model,
        {
            "feature_schema.json": info.feature_schema.to_dict(),
            "reference_profile.json": profile,
            "monitor_reference.json": monitor_reference,
            "input_example.json": example,
            "fingerprint.txt": info.fingerprint,
            "metadata.json": {"metrics": info.metrics, "task": info.task, "target": info.target, "pid": os.getpid(),
                              **(metadata or {})},
        },
        artifact_name=artifact_name,
        blob=blob,
    )
    artifacts.write_dataset(root, info.fingerprint, frame)
    return dataclasses.replace(info, artifact_sha256=sha)


def give_alias(settings: Settings, store: Store, version_id: str, actor: Actor, then: str, reason: str,
               first_reason: str = "first version in an empty registry",
               clock: Callable[[], float] = time.time) -> bool:
    """Production for the first version of an empty registry, else what ``then`` says; True if promoted."""
    if registry.alias_target(store, "production") is None:
        try:
            registry.move_alias(settings, version_id, SYSTEM, first_reason, action="initial", require_empty=True,
                                clock=clock)
            return True
        except ConflictError:
            pass  # another process promoted something first; fall through to ``then``
    if then == "promote":
        registry.promote(settings, version_id, actor, reason, clock=clock)
        return True
    if then == "candidate":
        registry.set_candidate(settings, version_id, actor, reason, clock=clock)
    return False


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
    progress: Progress = no_progress,
    estimator: Estimator | None = None,
    clock: Callable[[], float] = time.time,
) -> TrainingOutcome:
    """Train, store and register ``version_id``, then give it an alias.

    ``then`` is ``"promote"`` (production, after the pre-flight check), ``"candidate"`` or ``"none"``.
    The first version of an empty registry takes production whatever ``then`` says.
    ``estimator`` (unfitted) is fitted instead of the ensemble. ``clock`` gives the version's creation
    time and its alias move's (a demo replaying a past day passes its own).
    """
    if then not in {"promote", "candidate", "none"}:
        raise BadInputError(f"then must be promote, candidate or none, not {then!r}")
    with claim_version_id(settings, version_id, actor, "training a version") as (store, claim):
        info, data_notes = _fit_and_store(settings, version_id, frame, target, task, created_by, parent_version,
                                          notes, progress, estimator, clock)
        progress(STAGES[4], 0.9)
        registry.insert_version(store, info, claim)
    promoted = give_alias(settings, store, version_id, actor, then, notes or f"trained by {actor}", clock=clock)
    progress(STAGES[5], 1.0)
    return TrainingOutcome(registry.get_version(store, version_id), data_notes, promoted)


def _fit_and_store(
    settings: Settings,
    version_id: str,
    frame: pd.DataFrame,
    target: str,
    task: str | None,
    created_by: str,
    parent_version: str | None,
    notes: str,
    progress: Progress,
    estimator: Estimator | None,
    clock: Callable[[], float],
) -> tuple[VersionInfo, list[str]]:
    """Fit, evaluate and write the version folder (under the caller's claim); the version and data notes."""

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
    if estimator is None:
        pipeline = build_pipeline(schema, settings.seed, settings.forest_trees, settings.boosting_rounds)
        params = ensemble_params(task, settings.seed, settings.forest_trees, settings.boosting_rounds)
        artifact_name, what = artifacts.ARTIFACT, "the ensemble"
    else:
        pipeline, params, artifact_name = estimator.model, estimator.params, estimator.artifact_name
        what = type(pipeline).__name__
    try:
        pipeline.fit(x_train, y_train)
    except ValueError as exc:
        raise BadInputError(f"{what} could not be fitted on this data: {exc}") from exc

    progress(STAGES[2], 0.7)
    metrics = holdout_metrics(pipeline, x_test, y_test, task)
    profile = reference_profile(x_train, schema, positive_scores(pipeline, x_test, task))
    train_seconds = time.perf_counter() - started
    info = VersionInfo(
        version_id=version_id,
        created_at=clock(),
        task=task,
        target=target,
        params=params,
        metrics=metrics,
        fingerprint=fingerprint(frame),
        feature_schema=schema,
        artifact_sha256="",
        parent_version=parent_version,
        created_by=created_by,
        notes=notes,
        training_rows=int(len(features)),
        train_seconds=train_seconds,
    )

    progress(STAGES[3], 0.8)
    monitor_reference = build_monitor_reference(schema, x_train, x_test, y_test, pipeline, settings.seed)
    info = write_version_files(settings, info, pipeline, profile=profile, monitor_reference=monitor_reference,
                               example=input_example(x_test), frame=frame, artifact_name=artifact_name)

    return info, data_notes
