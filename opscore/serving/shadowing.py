"""Shadow copies of requests, scored off the caller's path and logged, never returned.

A request copied to the shadow version is answered by production first; only then is a copy put on a
bounded queue. One worker thread (at normal priority: a low-priority thread preempted while holding the
interpreter lock stalls every request thread behind it) takes
whatever has queued for a version and scores it in one model call, so a shadow at 100 % of traffic costs
one extra call per batch rather than per request. When the queue is full the copy is dropped and
counted (``dropped``): the shadow may miss rows, the caller never waits for it. Shadow answers are
logged with the request id ``"<id>:shadow"``, source and role ``shadow`` and without features (the
production row of the same request holds them), so the shadow report joins them to production's
answers row by row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from opscore.data.features import validate_records
from opscore.serving.predictor import LoadedVersion, request_records, single_threaded
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

    def __init__(self, writer: TelemetryWriter | None, capacity: int = 10_000) -> None:
        self._writer = writer
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
        rows = validate_records(version.schema, instances)
        if rows.errors:  # production accepted these rows; a shadow whose schema refuses them logs nothing
            self.failed += len(instances)
            return
        with single_threaded():
            scores = version.predict_frame(rows.frame)
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
