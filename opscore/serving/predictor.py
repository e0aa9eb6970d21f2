"""Versions ready to predict, the production model that follows the alias, and file scoring.

Serving asks :class:`ProductionModel` for the version to use once per request and keeps that
reference, so a promotion or rollback never changes a request halfway. The new version is loaded
(checksum-verified) before the swap, and a few loaded versions stay cached so that rolling back to
one that served recently is a pointer swap. :func:`score_frame` is the one path for scoring a table
(``opscore predict``, the dashboard's CSV upload): validate, score in chunks, log, keep every row.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from opscore.config import Settings
from opscore.data.features import FeatureSchema, Problem, frame_to_records, validate_frame
from opscore.exceptions import NotFoundError, OpscoreError
from opscore.models import registry
from opscore.models.registry import VersionInfo
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter
from opscore.store import open_store

log = logging.getLogger(__name__)

NO_PRODUCTION = "no production version: train one with `opscore train --version-id v1`"
# Loaded versions kept in memory: production, its predecessor (instant rollback) and a couple of
# A/B or shadow variants.
MODEL_CACHE_SIZE = 4
MAX_WARNINGS = 100


@dataclass(frozen=True)
class Scores:
    """A model's answer for some rows, as JSON-safe Python values."""

    predictions: list[Any]
    probabilities: list[list[float]] | None  # per class, in ``classes`` order; None for regression
    classes: list[Any] | None

    def positive_probability(self) -> list[float] | None:
        """The probability worth logging per row: the last class's for a binary model, else the top one."""
        if self.probabilities is None:
            return None
        if self.classes is not None and len(self.classes) == 2:
            return [row[-1] for row in self.probabilities]
        return [max(row) for row in self.probabilities]


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version with its verified model in memory."""

    info: VersionInfo
    model: Any

    @property
    def version_id(self) -> str:
        return self.info.version_id

    @property
    def schema(self) -> FeatureSchema:
        return self.info.feature_schema

    @property
    def classes(self) -> list[Any] | None:
        if self.info.task != "classification":
            return None
        return np.asarray(self.model.classes_).tolist()

    def predict_frame(self, frame: pd.DataFrame) -> Scores:
        """Score validated rows with one model call (the predicted class is the most probable one)."""
        if self.info.task != "classification":
            return Scores(np.asarray(self.model.predict(frame), dtype=float).tolist(), None, None)
        if not hasattr(self.model, "predict_proba"):  # a registered classifier may give classes only
            return Scores(np.asarray(self.model.predict(frame)).tolist(), None, self.classes)
        probabilities = np.asarray(self.model.predict_proba(frame), dtype=float)
        classes = np.asarray(self.model.classes_)
        predictions = classes[probabilities.argmax(axis=1)]
        return Scores(predictions.tolist(), probabilities.tolist(), classes.tolist())


def load_version(settings: Settings, version_id: str) -> LoadedVersion:
    """Load a registered version; refused unless the artifact's sha256 matches the registry."""
    info = registry.get_version(open_store(settings), version_id)
    return LoadedVersion(info, registry.load_version_model(settings, info))


class ProductionModel:
    """The production version, kept current by polling the alias (``settings.alias_poll_seconds``).

    ``current()`` is what a request uses; callers keep the reference they got, so in-flight
    requests finish on the version they started with while the next ones get the new one.
    """

    def __init__(self, settings: Settings, poll: bool = True, on_change: Callable[[], None] | None = None) -> None:
        self._settings = settings
        # Called (after start-up) once a swap or a cache eviction has let go of a model.
        self._on_change: Callable[[], None] | None = None
        self._store = open_store(settings)
        self._cache: OrderedDict[str, LoadedVersion] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._current: LoadedVersion | None = None
        self._generation: int | None = None
        self._failed: tuple[str, int] | None = None
        self._stop = threading.Event()
        self.swaps = 0
        self.last_error: str | None = None
        self._load_error: OpscoreError | None = None
        try:
            self.refresh()
        except OpscoreError as exc:
            # Serve nothing rather than refuse to start: /health reports it, the poller retries on the next move.
            self._load_error = exc
        self._on_change = on_change
        self._thread: threading.Thread | None = None
        if poll:
            self._thread = threading.Thread(target=self._poll, name="opscore-alias-poll", daemon=True)
            self._thread.start()

    def current(self) -> LoadedVersion:
        loaded = self._current
        if loaded is None:
            if self._load_error is not None:
                raise type(self._load_error)(str(self._load_error))
            raise NotFoundError(NO_PRODUCTION)
        return loaded

    @property
    def generation(self) -> int | None:
        """The production alias generation of the loaded version (None before one is loaded)."""
        return self._generation

    def get(self, version_id: str) -> LoadedVersion:
        """Any registered version, loaded once and cached (A/B and shadow variants use this)."""
        loaded, evicted = self._get(version_id)
        if evicted and self._on_change is not None:
            self._on_change()
        return loaded

    def _get(self, version_id: str) -> tuple[LoadedVersion, int]:
        """The version and how many cached versions were let go of to make room for it."""
        with self._cache_lock:
            loaded = self._cache.get(version_id)
            if loaded is not None:
                self._cache.move_to_end(version_id)
                return loaded, 0
        with self._load_lock:
            with self._cache_lock:
                loaded = self._cache.get(version_id)
            if loaded is None:
                loaded = load_version(self._settings, version_id)
            with self._cache_lock:
                self._cache[version_id] = loaded
                self._cache.move_to_end(version_id)
                current = self._current.version_id if self._current else None
                evicted = 0
                for old in list(self._cache):
                    if len(self._cache) <= MODEL_CACHE_SIZE:
                        break
                    if old not in {current, version_id}:
                        del self._cache[old]
                        evicted += 1
            return loaded, evicted

    def refresh(self) -> bool:
        """Swap to the version the production alias names now, if it moved; True when the version changed.

        A version that fails to load (say, a checksum mismatch) leaves the current one serving and
        is not retried until the alias moves again; the reason is kept in ``last_error``.
        """
        # The poll thread and a route that just moved the alias may refresh at once; serialising them,
        # and never going back to an older generation, keeps a stale read from undoing a newer swap.
        with self._refresh_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        version_id, generation = registry.alias_state(self._store).get("production", (None, 0))
        if self._generation is not None and generation <= self._generation:
            return False
        if version_id is None or self._failed == (version_id, generation):
            return False
        try:
            loaded, evicted = self._get(version_id)
        except Exception as exc:
            self._failed = (version_id, generation)
            self.last_error = f"could not load production version {version_id!r}: {exc}"
            log.error("%s; still serving %s", self.last_error,
                      self._current.version_id if self._current else "nothing")
            raise
        previous = self._current
        self._current, self._generation, self._load_error = loaded, generation, None
        changed = previous is None or previous.version_id != version_id
        if previous is not None and changed:
            self.swaps += 1
        if (changed or evicted) and self._on_change is not None:
            self._on_change()  # once, whether the swap, an eviction or both let go of a model
        return changed

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self._settings.alias_poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a store blip or bad artifact must not stop polling
                self.last_error = str(exc)


def request_records(version_id: str, features: list[dict[str, Any]], scores: Scores | None, *, source: str,
                    latency_ms: float, request_ids: list[str], at: float, error: str | None = None,
                    one_request: bool = True, deployment_id: str | None = None,
                    role: str | None = None) -> list[PredictionRecord]:
    """Telemetry records for rows answered together: one per row, in the order given.

    With ``one_request`` the rows are one request of N rows (the first row opens it and carries its
    latency, so the request counts once); otherwise each row is a request of its own, timed by
    ``latency_ms`` as its share of the call (batch scoring, the dashboard). ``deployment_id`` and
    ``role`` say which deployment routed the request and as what the answering version served.
    """
    probability = scores.positive_probability() if scores is not None else None
    n = len(features)
    return [
        PredictionRecord(request_ids[i], at, version_id, source, latency_ms, "ok" if error is None else "error",
                         features[i], scores.predictions[i] if scores is not None else None,
                         probability[i] if probability is not None else None, error,
                         (n if i == 0 else 0) if one_request else 1, deployment_id, role)
        for i in range(n)
    ]


def prediction_records(loaded: LoadedVersion, rows: pd.DataFrame, scores: Scores | None, *, source: str,
                       latency_ms: float, request_ids: list[str] | None = None, at: float | None = None,
                       error: str | None = None) -> list[PredictionRecord]:
    """Records for a table scored row by row (each row a request of its own, ``latency_ms`` per row)."""
    features = frame_to_records(rows)
    ids = request_ids or [f"{source}-{uuid.uuid4().hex}" for _ in range(len(features))]
    return request_records(loaded.version_id, features, scores, source=source, latency_ms=latency_ms,
                           request_ids=ids, at=time.time() if at is None else at, error=error, one_request=False)


@dataclass
class ScoredFrame:
    """A scored table: every input row, with its prediction or the reason it has none."""

    frame: pd.DataFrame
    version_id: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    scored: int = 0
    failed: int = 0

    def summary(self) -> str:
        return f"scored {self.scored} row(s), {self.failed} failed, version {self.version_id}"


def production_version(settings: Settings) -> LoadedVersion:
    """Load whatever production names right now (one-shot callers; serving uses ProductionModel)."""
    version_id = registry.alias_target(open_store(settings), "production")
    if version_id is None:
        raise NotFoundError(NO_PRODUCTION)
    return load_version(settings, version_id)


def score_frame(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    source: str = "batch",
    telemetry: TelemetryWriter | None,
    chunk_size: int = 512,
    progress: Callable[[int, int], None] | None = None,
    loaded: LoadedVersion | None = None,
) -> ScoredFrame:
    """Score a table in chunks with ``loaded`` (default: production), logging each scored row.

    Returns the input columns plus ``prediction``, ``probability_<class>``, ``version`` and ``error``;
    a row that fails validation keeps its place with the reason in ``error`` and is not logged.
    Missing required columns raise BadInputError before anything is scored or logged.
    ``progress(done, total)`` is called after each chunk.
    """
    loaded = loaded or production_version(settings)
    schema = loaded.schema
    validate_frame(schema, frame.iloc[:0])  # refuses missing columns, naming them
    total = len(frame)
    classes = loaded.classes
    predictions: list[Any] = [None] * total
    probabilities = np.full((total, len(classes)), np.nan) if classes else None
    error_text = [""] * total
    result = ScoredFrame(frame, loaded.version_id)
    seen_warnings: set[str] = set()
    for first in range(0, total, max(1, chunk_size)):
        chunk = frame.iloc[first:first + chunk_size]
        rows = validate_frame(schema, chunk, first_row=first)
        for problem in rows.errors:
            error_text[problem.row] = "; ".join(filter(None, [error_text[problem.row], _cell_message(problem)]))
        result.errors.extend(rows.errors)
        for problem in rows.warnings:
            text = str(problem)
            if text not in seen_warnings and len(result.warnings) < MAX_WARNINGS:
                seen_warnings.add(text)
                result.warnings.append(problem)
        if rows.valid_rows:
            _score_chunk(loaded, rows.frame, rows.valid_rows, source, telemetry, predictions, probabilities,
                         error_text, result)
        if progress is not None:
            progress(min(first + chunk_size, total), total)
    out = frame.copy()
    out["prediction"] = pd.Series(predictions, index=out.index, dtype=object)
    for j, label in enumerate(classes or []):
        out[f"probability_{label}"] = probabilities[:, j]
    out["version"] = loaded.version_id
    out["error"] = error_text
    result.frame = out
    result.failed = total - result.scored
    return result


def _score_chunk(loaded: LoadedVersion, rows: pd.DataFrame, positions: list[int], source: str,
                 telemetry: TelemetryWriter | None, predictions: list[Any], probabilities: np.ndarray | None,
                 error_text: list[str], result: ScoredFrame) -> None:
    started = time.perf_counter()
    try:
        scores = loaded.predict_frame(rows)
    except Exception as exc:  # noqa: BLE001 - a model failure marks these rows failed; the rest of the file goes on
        latency_ms = (time.perf_counter() - started) * 1000 / len(positions)
        message = f"the model failed on this chunk: {type(exc).__name__}: {exc}"
        for position in positions:
            error_text[position] = message
        result.errors.append(Problem(positions[0], None, f"{message} (rows {positions[0]}-{positions[-1]})"))
        if telemetry is not None:
            telemetry.submit_many(prediction_records(loaded, rows, None, source=source, latency_ms=latency_ms,
                                                     error=message))
        return
    latency_ms = (time.perf_counter() - started) * 1000 / len(positions)
    for i, position in enumerate(positions):
        predictions[position] = scores.predictions[i]
        if probabilities is not None and scores.probabilities is not None:
            probabilities[position] = scores.probabilities[i]
    result.scored += len(positions)
    if telemetry is not None:
        telemetry.submit_many(prediction_records(loaded, rows, scores, source=source, latency_ms=latency_ms))


def _cell_message(problem: Problem) -> str:
    """A problem as it reads inside its own row's ``error`` cell (the row is implied)."""
    return f"{problem.column}: {problem.message}" if problem.column else problem.message


# -- native threads ------------------------------------------------------------------------------
@cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded() -> Any:
    """Limit native thread pools (OpenMP, BLAS) to one thread for the calling thread's model calls.

    Concurrent model calls already use the cores; an OpenMP team inside each one oversubscribes a
    shared CPU (measured on 2 busy cores: a one-row ensemble call took 64 ms with two OpenMP
    threads and 13 ms with one).
    """
    return _threadpools().limit(limits=1)
