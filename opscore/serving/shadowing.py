"""Shadow copies of requests, scored off the caller's path and logged, never returned.

A request copied to the shadow version is answered by production first; only then is a copy put on a
bounded queue. One worker thread (at normal priority: a low-priority thread preempted while holding the
interpreter lock stalls every request thread behind it) gathers what queues for a version over
``GATHER_SECONDS`` and has it scored in one call by a child process (:class:`_Scorer`), so neither the
number of calls nor their length weighs on the serving process. When the queue is full the copy is
dropped and counted (``dropped``): the shadow may miss rows, the caller never waits for it. Shadow
answers are logged with the request id ``"<id>:shadow"``, source and role ``shadow`` and without
features (the production row of the same request holds them), so the shadow report joins them to
production's answers row by row.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from opscore.config import Settings
from opscore.data.features import validate_records
from opscore.serving.predictor import LoadedVersion, Scores, load_version, request_records, single_threaded
from opscore.serving.telemetry_writer import TelemetryWriter

log = logging.getLogger(__name__)

SHADOW_SOURCE = "shadow"
SHADOW_SUFFIX = ":shadow"
# Rows scored in one shadow call at most, and how long the first copy waits for others to join it: a
# shadow's answers are never awaited, so it trades their delay for fewer model calls (each call holds
# the interpreter for a while, and callers' requests wait for it; one call per copy made callers'
# p95 1.6x slower at concurrency 16).
_MAX_ROWS = 512
GATHER_SECONDS = 0.25


@dataclass
class _Copy:
    version: LoadedVersion
    deployment_id: str | None
    instances: list[dict[str, Any]]
    request_ids: list[str]
    queued_at: float = 0.0


class Shadower:
    """A bounded queue of shadow copies and the one thread that scores and logs them."""

    def __init__(self, writer: TelemetryWriter | None, capacity: int = 10_000, settings: Settings | None = None) -> None:
        self._writer = writer
        # With settings, model calls run in a child process of their own (see _Scorer); without, here.
        self._scorer = _Scorer(settings) if settings is not None else None
        self._capacity = max(1, capacity)
        self._queue: deque[_Copy] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._queued_rows = 0
        self.submitted = 0
        self.dropped = 0
        self.scored = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="opscore-shadow", daemon=True)
        self._thread.start()

    def submit(self, version: LoadedVersion, deployment_id: str | None, instances: list[dict[str, Any]],
               request_ids: list[str]) -> bool:
        """Queue a copy of an answered request; False (counted in ``dropped``) when the queue is full."""
        with self._cond:
            if self._closed or len(self._queue) >= self._capacity:
                self.dropped += 1
                return False
            self._queue.append(_Copy(version, deployment_id, instances, request_ids, time.monotonic()))
            self._queued_rows += len(instances)
            self.submitted += 1
            if self._queued_rows >= _MAX_ROWS:
                self._cond.notify()
        return True

    @property
    def backlog(self) -> int:
        with self._cond:
            return len(self._queue)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued copy is scored (tests and shutdown); False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue and not self._busy:
                    return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Score what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._scorer is not None:
            self._scorer.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait(GATHER_SECONDS)
                if not self._queue:
                    return
                gather_until = self._queue[0].queued_at + GATHER_SECONDS
                while self._queued_rows < _MAX_ROWS and not self._closed:
                    remaining = gather_until - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._take()
                self._queued_rows -= sum(len(c.instances) for c in batch)
                self._busy = True
            try:
                self._score(batch)
            except Exception:  # noqa: BLE001 - the shadow thread must outlive any surprise
                log.exception("shadow scoring failed")
                self.failed += sum(len(c.instances) for c in batch)
            finally:
                with self._cond:
                    self._busy = False

    def _take(self) -> list[_Copy]:
        """The first queued copy and every other one for the same version and deployment that fits."""
        first = self._queue.popleft()
        batch, rows, kept = [first], len(first.instances), deque()
        while self._queue:
            copy = self._queue.popleft()
            same = copy.version is first.version and copy.deployment_id == first.deployment_id
            if same and rows + len(copy.instances) <= _MAX_ROWS:
                batch.append(copy)
                rows += len(copy.instances)
            else:
                kept.append(copy)
        self._queue = kept
        return batch

    def _score(self, batch: list[_Copy]) -> None:
        version = batch[0].version
        started = time.perf_counter()
        instances = [row for copy in batch for row in copy.instances]
        scores = self._scorer.score(version, instances) if self._scorer is not None else _score_here(version, instances)
        if scores is None:  # production accepted these rows; a shadow whose schema refuses them logs nothing
            self.failed += len(instances)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        self.scored += len(instances)
        if self._writer is None:
            return
        at, start = time.time(), 0
        for copy in batch:
            stop = start + len(copy.instances)
            part = type(scores)(scores.predictions[start:stop],
                                scores.probabilities[start:stop] if scores.probabilities is not None else None,
                                scores.classes)
            # The features are the production row's (same request id but the suffix): logged once, there.
            features = [{} for _ in copy.instances]
            self._writer.submit_many(request_records(
                version.version_id, features, part, source=SHADOW_SOURCE, latency_ms=latency_ms,
                request_ids=[f"{rid}{SHADOW_SUFFIX}" for rid in copy.request_ids], at=at,
                deployment_id=copy.deployment_id, role=SHADOW_SOURCE))
            start = stop


def _score_here(version: LoadedVersion, instances: list[dict[str, Any]]) -> Scores | None:
    rows = validate_records(version.schema, instances)
    if rows.errors:
        return None
    with single_threaded():
        return version.predict_frame(rows.frame)


class _Scorer:
    """A child process that scores shadow rows, so their model calls never hold this process's interpreter lock.

    In the serving process a shadow call of a hundred rows held the lock long enough to stretch callers'
    p95 by 40-60 % at concurrency 16; the child loads each version itself (checksum-verified, from the
    model store) and answers with its scores. Started on the first shadow copy; restarted if it dies.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._process: Any = None
        self._conn: Any = None

    def score(self, version: LoadedVersion, instances: list[dict[str, Any]]) -> Scores | None:
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._conn.send((version.version_id, instances))
            answer = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._process = None
            raise
        if isinstance(answer, str):
            raise RuntimeError(answer)
        return answer

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_scorer_main, args=(self._settings, child), name="opscore-shadow-scorer",
                                        daemon=True)
        self._process.start()
        child.close()

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            with suppress(OSError, BrokenPipeError):
                self._conn.send(None)
            self._process.join(5)
            if self._process.is_alive():
                self._process.terminate()


def _scorer_main(settings: Settings, conn: Any) -> None:
    """The child's loop: (version id, rows) in, their Scores (None: refused rows, str: the error) out."""
    loaded: dict[str, LoadedVersion] = {}
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        version_id, instances = message
        try:
            if version_id not in loaded:
                loaded.clear()
                loaded[version_id] = load_version(settings, version_id)
            conn.send(_score_here(loaded[version_id], instances))
        except Exception as exc:  # noqa: BLE001 - the parent counts the rows failed and goes on
            conn.send(f"{type(exc).__name__}: {exc}")
