"""Realistic traffic for a running opscore service: steady load, drift, bursts, bad requests, late labels.

Loan applications come from the demo generator (:func:`credit_applications`), whose ``shift`` moves
the population the way a downturn would; the drift schedule decides the shift at each moment
(``gradual`` ramps from ``drift_start`` to the end, ``sudden`` jumps there). ``drift_features``
limits the shift to some columns: the others keep the values the same applicant has without drift.
A share of drifted rows can carry an employment type the model never saw. Bursts send many requests
at once (what makes latency spike on a real server), a share of requests is malformed on purpose,
and the generator's ground truth goes back to ``/feedback`` after ``label_delay`` seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from opscore.data.features import frame_to_records
from opscore.demo.credit_data import TARGET, credit_applications
from opscore.exceptions import BadInputError, OpscoreError

NEW_CATEGORY = "gig_worker"
DRIFT_KINDS = ("none", "gradual", "sudden")
_SHIFT_LEVELS = 11  # shift is drawn from 0.0, 0.1, … 1.0: pools generated once, not per request
_POOL_ROWS = 4_000
# How long the end of a run waits for labels still due, at most; later ones are reported as pending.
_LABEL_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class TrafficPlan:
    """What to send: rate and duration, the drift schedule, bursts, malformed share, label delay."""

    rate: float = 20.0
    duration: float = 60.0
    drift: str = "none"
    drift_start: float = 0.5
    drift_strength: float = 0.8
    drift_features: tuple[str, ...] = ()
    new_category_share: float = 0.0
    malformed_share: float = 0.0
    burst_every: float = 0.0
    burst_size: int = 50
    label_delay: float = 5.0
    label_share: float = 0.8
    seed: int = 42
    concurrency: int = 64

    def check(self) -> None:
        """Refuse a plan that cannot run, naming the setting."""
        problems = []
        if not (self.rate > 0 and math.isfinite(self.rate)):
            problems.append(f"rate must be above 0 requests per second, not {self.rate}")
        if not (self.duration > 0 and math.isfinite(self.duration)):
            problems.append(f"duration must be above 0 seconds, not {self.duration}")
        if self.drift not in DRIFT_KINDS:
            problems.append(f"drift must be one of {', '.join(DRIFT_KINDS)}, not {self.drift!r}")
        for name in ("drift_start", "drift_strength", "new_category_share", "malformed_share", "label_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                problems.append(f"{name.replace('_', '-')} must be between 0 and 1, not {value}")
        if self.burst_every < 0 or self.burst_size < 1:
            problems.append("burst-every must be 0 or more seconds and burst-size at least 1")
        if self.label_delay < 0:
            problems.append(f"label-delay must be 0 or more seconds, not {self.label_delay}")
        if self.concurrency < 1:
            problems.append(f"concurrency must be at least 1, not {self.concurrency}")
        unknown = sorted(set(self.drift_features) - set(credit_applications(1).columns.drop(TARGET)))
        if unknown:
            problems.append(f"drift-features: no column(s) {', '.join(unknown)} in the demo data")
        if problems:
            raise BadInputError("; ".join(problems))

    def shift_at(self, elapsed: float) -> float:
        """The population shift (0-1) at ``elapsed`` seconds into the run."""
        if self.drift == "none":
            return 0.0
        begin = self.drift_start * self.duration
        if elapsed < begin:
            return 0.0
        if self.drift == "sudden":
            return self.drift_strength
        ramp = max(self.duration - begin, 1e-9)
        return self.drift_strength * min(1.0, (elapsed - begin) / ramp)


class Population:
    """Applicants and their true outcome at any shift, from pools generated once per shift level."""

    def __init__(self, plan: TrafficPlan, pool_rows: int = _POOL_ROWS) -> None:
        self.plan = plan
        self.pool_rows = pool_rows
        self._rng = np.random.default_rng(plan.seed)
        self._records: dict[int, list[dict[str, Any]]] = {}
        self._next = 0

    def _pool(self, level: int) -> list[dict[str, Any]]:
        if level not in self._records:
            # One seed for every level: row i is the same applicant, more or less stressed.
            frame = credit_applications(self.pool_rows, seed=self.plan.seed, shift=level / (_SHIFT_LEVELS - 1))
            self._records[level] = frame_to_records(frame)
        return self._records[level]

    def draw(self, shift: float, new_category_share: float | None = None) -> tuple[dict[str, Any], Any]:
        """One application (features) and its ground-truth label at ``shift``.

        ``new_category_share`` overrides the plan's share of drifted rows with an unseen employment type.
        """
        level = round(shift * (_SHIFT_LEVELS - 1))
        index = self._next % self.pool_rows
        self._next += 1
        drifted = self._pool(level)[index]
        features = {k: v for k, v in drifted.items() if k != TARGET}
        if self.plan.drift_features and level:
            calm = self._pool(0)[index]
            features = {k: (v if k in self.plan.drift_features else calm[k]) for k, v in features.items()}
        share = self.plan.new_category_share if new_category_share is None else new_category_share
        if level and self._rng.random() < share:
            features["employment_type"] = NEW_CATEGORY
        return features, int(drifted[TARGET])

    def malformed(self) -> bytes:
        """A request the service must refuse: each kind of mistake callers make, in turn."""
        features, _ = self.draw(0.0)
        kind = int(self._rng.integers(6))
        if kind == 0:
            return b'{"instances": [' + json.dumps(features).encode()[:-5]  # cut off mid-body
        if kind == 1:
            features.pop("credit_score")
        elif kind == 2:
            features["annual_income"] = "fifty thousand"
        elif kind == 3:
            features["debt_to_income"] = "NaN"
        elif kind == 4:
            features["age"] = {"years": 40}
        else:
            return json.dumps({"instances": "all of them"}).encode()
        return json.dumps({"instances": [features]}).encode()


@dataclass
class TrafficReport:
    """What happened: answers, refusals, failures, labels, versions seen and client-side latency."""

    sent: int = 0
    answered: int = 0
    refused: int = 0  # malformed requests refused with a 4xx, as they should be
    malformed_accepted: int = 0
    unexpected_refusals: int = 0  # well-formed requests refused
    failed: int = 0  # 5xx answers and connection errors
    labels_sent: int = 0
    labels_joined: int = 0
    labels_pending: int = 0
    versions: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str | None = None
    elapsed: float = 0.0

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def __str__(self) -> str:
        p95 = self.percentile(95)
        return f"answered {self.answered}, refused {self.refused}, failed {self.failed}" + (
            f", p95 {p95:.0f} ms" if p95 is not None else "")

    def summary(self) -> str:
        rate = self.sent / self.elapsed if self.elapsed else 0.0
        lines = [
            f"sent {self.sent} requests in {self.elapsed:.1f} s ({rate:.1f}/s)",
            f"  answered {self.answered}; malformed refused {self.refused}; failed {self.failed}",
        ]
        if self.malformed_accepted or self.unexpected_refusals:
            lines.append(f"  unexpected: {self.malformed_accepted} malformed accepted, "
                         f"{self.unexpected_refusals} well-formed refused")
        if self.latencies_ms:
            p50, p95, p99 = (self.percentile(q) for q in (50, 95, 99))
            lines.append(f"  latency (client side) p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
        if self.versions:
            lines.append("  versions: " + ", ".join(f"{v} {n}" for v, n in sorted(self.versions.items())))
        lines.append(f"  labels sent {self.labels_sent}, joined {self.labels_joined}, still pending {self.labels_pending}")
        if self.first_error:
            lines.append(f"  first failure: {self.first_error}")
        return "\n".join(lines)


Progress = Callable[[float, TrafficReport], None]


def simulate(url: str, plan: TrafficPlan, *, token: str | None = None, progress: Progress | None = None) -> TrafficReport:
    """Send ``plan``'s traffic to the service at ``url``; labels need a ``token`` with the feedback scope."""
    plan.check()
    return asyncio.run(_Run(url.rstrip("/"), plan, token, progress).run())


class _Run:
    def __init__(self, url: str, plan: TrafficPlan, token: str | None, progress: Progress | None) -> None:
        self.url, self.plan, self.token, self.progress = url, plan, token, progress
        self.population = Population(plan)
        self.report = TrafficReport()
        self.labels: list[tuple[float, str, Any]] = []  # heap of (due, request id, label)
        self.rng = np.random.default_rng(plan.seed + 1)
        self.labels_closing = False  # set once the last request is answered

    async def run(self) -> TrafficReport:
        plan = self.plan
        limits = httpx.Limits(max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=30, headers=headers) as client:
            try:
                await client.get("/health")
            except httpx.HTTPError as exc:
                raise OpscoreError(f"cannot reach the service at {self.url}: {exc}") from exc
            slots = asyncio.Semaphore(plan.concurrency)
            started = time.monotonic()
            labeller = asyncio.ensure_future(self._send_labels(client, started))
            in_flight: set[asyncio.Task] = set()
            next_burst = plan.burst_every or math.inf
            next_report = 1.0
            count = 0
            while (elapsed := time.monotonic() - started) < plan.duration:
                due = count / plan.rate
                if due > elapsed:
                    await asyncio.sleep(min(due - elapsed, 0.05))
                    continue
                size = 1
                if elapsed >= next_burst:
                    size, next_burst = plan.burst_size, next_burst + plan.burst_every
                for _ in range(size):
                    await slots.acquire()
                    task = asyncio.ensure_future(self._one(client, elapsed, started))
                    task.add_done_callback(lambda t: (slots.release(), in_flight.discard(t)))
                    in_flight.add(task)
                count += 1
                if self.progress is not None and elapsed >= next_report:
                    next_report += 1.0
                    self.progress(elapsed, self.report)
            if in_flight:
                await asyncio.gather(*in_flight)
            self.report.elapsed = time.monotonic() - started
            self.labels_closing = True
            await labeller
        if self.progress is not None:
            self.progress(plan.duration, self.report)
        return self.report

    async def _one(self, client: httpx.AsyncClient, elapsed: float, started: float) -> None:
        report = self.report
        report.sent += 1
        malformed = self.rng.random() < self.plan.malformed_share
        if malformed:
            body, label = self.population.malformed(), None
        else:
            features, label = self.population.draw(self.plan.shift_at(elapsed))
            body = json.dumps({"instances": [features]}).encode()
        sent = time.perf_counter()
        try:
            response = await client.post("/predict", content=body, headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            report.failed += 1
            report.first_error = report.first_error or f"{type(exc).__name__}: {exc}"
            return
        report.latencies_ms.append((time.perf_counter() - sent) * 1000)
        if response.status_code >= 500:
            report.failed += 1
            report.first_error = report.first_error or f"HTTP {response.status_code}: {response.text[:200]}"
        elif response.status_code >= 400:
            if malformed:
                report.refused += 1
            else:
                report.unexpected_refusals += 1
                report.first_error = report.first_error or f"HTTP {response.status_code}: {response.text[:200]}"
        elif malformed:
            report.malformed_accepted += 1
        else:
            answer = response.json()
            report.answered += 1
            report.versions[answer["version"]] += 1
            if self.token and self.rng.random() < self.plan.label_share:
                due = time.monotonic() - started + self.plan.label_delay
                heapq.heappush(self.labels, (due, answer["request_ids"][0], label))

    async def _send_labels(self, client: httpx.AsyncClient, started: float) -> None:
        """Every half second, send the labels that are due; at the end wait a little for the rest."""
        grace_until = math.inf
        while True:
            now = time.monotonic() - started
            if self.labels_closing and grace_until == math.inf:
                grace_until = now + min(self.plan.label_delay, _LABEL_GRACE_SECONDS)
            batch = []
            while self.labels and self.labels[0][0] <= now:
                _, request_id, label = heapq.heappop(self.labels)
                batch.append({"request_id": request_id, "label": label})
            if batch:
                await self._post_labels(client, batch)
            if self.labels_closing and (not self.labels or now >= grace_until):
                self.report.labels_pending = len(self.labels)
                return
            await asyncio.sleep(0.5)

    async def _post_labels(self, client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> None:
        self.report.labels_sent += len(batch)
        try:
            response = await client.post("/feedback", json=batch)
        except httpx.HTTPError as exc:
            self.report.first_error = self.report.first_error or f"feedback: {type(exc).__name__}: {exc}"
            return
        if response.status_code == 200:
            self.report.labels_joined += response.json()["joined"]
        else:
            self.report.first_error = self.report.first_error or f"feedback: HTTP {response.status_code}: {response.text[:200]}"
