"""A demo workspace built through the real pipeline: a day of traffic, two versions, drift, late labels.

Everything a dashboard shows comes from the code that runs in production: v1 is trained by
:func:`train_version`, traffic is validated and scored by the real predictor in request-sized
groups (the latencies are the measured ones), every prediction goes through the telemetry writer,
labels are joined by :func:`record_feedback`, v2 is retrained on v1's data plus the labelled traffic
by :func:`retrain` and promoted through the registry (ledgered, actor ``system:demo``).

Only the clock is compressed: a day of traffic is scored in about a minute, so each request carries
the moment in the last 24 hours it stands for, and the registry is handed the same simulated clock:
v1 is trained and takes production just before the day starts, v2 is registered as the candidate a
quarter of an hour before it takes over, 10 hours ago. Nothing is edited after the fact. Drift arrives in the afternoon of
the v2 era: a gradual shift of the applicant population, then an employment type never seen in
training. Last, a week of the maintenance schedules is fired and run by the real worker
(:mod:`opscore.demo.maintenance_history`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete

from opscore.access.actors import Actor
from opscore.access.private_files import secrets_dir, write_private
from opscore.config import Settings
from opscore.data.features import validate_records
from opscore.demo.credit_data import TARGET, credit_applications
from opscore.demo.maintenance_history import build_maintenance_history
from opscore.demo.simulate import Population, TrafficPlan
from opscore.exceptions import ConflictError
from opscore.models import artifacts, registry
from opscore.models.registry import VersionInfo
from opscore.models.retraining import retrain
from opscore.models.training import Progress, no_progress, train_version
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import LoadedVersion, load_version, request_records, single_threaded
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import Store, metadata, open_store, schema_info

DEMO_ACTOR = Actor("demo", "system", "system")
MARKER_FILE = "demo_workspace.json"
HOUR = 3_600.0
DAY_PREDICTIONS = 10_000
# The day's story, in hours before now.
V2_TAKES_OVER = 10.0
# v1 is trained this long before the day starts; v2 registered this long before it takes over.
V1_LEAD, V2_LEAD = 1_800.0, 900.0
DRIFT_BEGINS, DRIFT_PEAKS, DRIFT_STRENGTH = 5.0, 2.0, 0.8
NEW_CATEGORY_FROM, NEW_CATEGORY_SHARE = 3.0, 0.06
BURST_FROM, BURST_MINUTES, BURST_FACTOR = 16.0, 30, 3.0
# Labels arrive late (mean 40 minutes) and not for every request.
LABEL_MEAN_DELAY, LABEL_SHARE = 40 * 60.0, 0.85
# Rows per request: mostly single applications, sometimes a batch from a partner system.
REQUEST_SIZES = (1, 1, 1, 2, 2, 3, 4, 4, 8, 16)



@dataclass(frozen=True)
class DemoOutcome:
    """What the demo did (``built`` False: the workspace was left alone, ``message`` says why)."""

    built: bool
    message: str
    versions: tuple[str, ...] = ()
    predictions: int = 0
    labelled: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.built:
            return self.message
        return (f"demo workspace ready in {self.seconds:.0f} s: versions {', '.join(self.versions)} "
                f"(production {self.versions[-1]}), {self.predictions:,} predictions over the last 24 h, "
                f"{self.labelled:,} labelled; {self.message}")


@dataclass
class _Served:
    request_id: str
    at: float
    label: int


def build_demo(settings: Settings, actor: Actor, progress: Progress = no_progress, *, fresh: bool = False,
               now: float | None = None, scale: float = 1.0, maintenance_days: float = 7.0) -> DemoOutcome:
    """Fill an empty workspace (or, with ``fresh``, rebuild a demo one) with a day of real traffic.

    Only an operator may: it trains, promotes and logs, and ``fresh`` empties the workspace first.
    The ledger names ``system:demo``, the pipeline that made the moves. ``scale`` shrinks or grows
    the day's traffic (1.0: about 10,000 predictions); ``maintenance_days`` is how far back the
    schedules' history goes (0: none).
    """
    actor.require_operator("building the demo workspace")
    started = time.perf_counter()
    store = open_store(settings)
    existing = registry.list_versions(store)
    if existing and not fresh:
        names = ", ".join(v.version_id for v in existing)
        return DemoOutcome(False, f"the workspace already has {len(existing)} version(s) ({names}); nothing changed. "
                                  "`opscore demo --fresh` rebuilds a workspace the demo built.")
    if existing:
        _clear_demo_workspace(settings, store, existing)
    now = time.time() if now is None else now
    rng = np.random.default_rng(settings.seed)
    arrivals = _arrival_times(rng, now, max(10, round(DAY_PREDICTIONS * scale)))
    takeover = now - V2_TAKES_OVER * HOUR
    population = Population(TrafficPlan(seed=settings.seed + 1), pool_rows=max(200, len(arrivals)))

    progress("training v1 on the demo data", 0.01)
    train_version(settings, "v1", credit_applications(seed=settings.seed), TARGET, actor=DEMO_ACTOR,
                  created_by="demo", notes="demo: trained on the bundled credit applications", then="promote",
                  progress=_within(progress, "training v1", 0.01, 0.15), clock=_at(now - 24 * HOUR - V1_LEAD))
    writer = TelemetryWriter(settings, store).start()
    try:
        v1_era = arrivals[arrivals < takeover]
        served = _serve(load_version(settings, "v1"), v1_era, now, population, writer, rng,
                        _within(progress, "serving v1 (24 h to 10 h ago)", 0.15, 0.5))
        progress("joining labels that arrived", 0.5)
        writer.flush(60)
        labelled = _send_labels(store, served, rng, until=takeover)

        retrain(settings, "v1", include_labelled_traffic=True, actor=DEMO_ACTOR, version_id="v2",
                progress=_within(progress, "retraining v2 with labelled traffic", 0.52, 0.62),
                clock=_at(takeover - V2_LEAD))
        progress("promoting v2", 0.62)
        registry.promote(settings, "v2", DEMO_ACTOR, "demo: v2, retrained on labelled traffic, takes over",
                         clock=_at(takeover))

        v2_era = arrivals[arrivals >= takeover]
        served = _serve(load_version(settings, "v2"), v2_era, now, population, writer, rng,
                        _within(progress, "serving v2 (drift from 5 h ago)", 0.64, 0.97))
        progress("joining the latest labels", 0.97)
        writer.flush(60)
        labelled += _send_labels(store, served, rng, until=now)
    finally:
        writer.close(60)
    history = build_maintenance_history(settings, now, days=maintenance_days,
                                        progress=_within(progress, "a week of scheduled maintenance", 0.975, 0.995))
    _write_marker(settings, now)
    progress("done", 1.0)
    return DemoOutcome(True, f"drift began 5 h ago; {history.tasks_run} maintenance tasks ran over "
                             f"{history.firings} scheduled firings of the past week; open the dashboard "
                             "(opscore dashboard)", ("v1", "v2"),
                       len(arrivals), labelled, time.perf_counter() - started)


def _within(progress: Progress, stage: str, low: float, high: float) -> Callable[[Any, float], None]:
    """A progress callback for one step, mapped into [low, high] of the whole."""

    def report(_detail: Any, fraction: float) -> None:
        progress(stage, low + (high - low) * min(max(fraction, 0.0), 1.0))

    return report


def _arrival_times(rng: np.random.Generator, now: float, count: int) -> np.ndarray:
    """Request times over the last 24 h: busier in the day than at night, with one half-hour burst."""
    start_minute = math.floor((now - 24 * HOUR) / 60)
    minutes = start_minute + np.arange(24 * 60)
    hour_of_day = (minutes % (24 * 60)) / 60
    weights = 1.0 + 0.7 * np.sin(2 * np.pi * (hour_of_day - 9) / 24)
    burst_start = (now - BURST_FROM * HOUR) / 60
    weights[(minutes >= burst_start) & (minutes < burst_start + BURST_MINUTES)] *= BURST_FACTOR
    chosen = rng.choice(minutes, size=count, p=weights / weights.sum())
    times = np.sort(chosen * 60.0 + rng.random(count) * 60.0)
    return times[(times > now - 24 * HOUR) & (times < now)]


def _shift_at(at: float, now: float) -> float:
    hours_ago = (now - at) / HOUR
    if hours_ago >= DRIFT_BEGINS:
        return 0.0
    return DRIFT_STRENGTH * min(1.0, (DRIFT_BEGINS - hours_ago) / (DRIFT_BEGINS - DRIFT_PEAKS))


def _serve(loaded: LoadedVersion, times: np.ndarray, now: float, population: Population, writer: TelemetryWriter,
           rng: np.random.Generator, progress: Callable[[Any, float], None]) -> list[_Served]:
    """Score the requests at ``times`` with ``loaded`` as the service would, logging each row."""
    served: list[_Served] = []
    names = loaded.schema.names
    position = 0
    with single_threaded():
        while position < len(times):
            size = int(rng.choice(REQUEST_SIZES))
            at = float(times[position])
            share = NEW_CATEGORY_SHARE if (now - at) / HOUR < NEW_CATEGORY_FROM else 0.0
            drawn = [population.draw(_shift_at(at, now), share) for _ in range(min(size, len(times) - position))]
            records = [features for features, _ in drawn]
            began = time.perf_counter()
            rows = validate_records(loaded.schema, records)
            scores = loaded.predict_frame(rows.frame)
            latency_ms = (time.perf_counter() - began) * 1000
            ids = [uuid.uuid4().hex for _ in drawn]
            # Logged as the service logs a request (source "api", one request of N rows): the demo's
            # traffic stands for the service's, and the pages show the service's traffic by default.
            writer.submit_many(request_records(loaded.version_id, [{name: r.get(name) for name in names} for r in records],
                                               scores, source="api", latency_ms=latency_ms, request_ids=ids, at=at))
            served += [_Served(ids[i], at, label) for i, (_, label) in enumerate(drawn)]
            position += len(drawn)
            if len(served) % 200 < len(drawn):
                progress(None, position / len(times))
    progress(None, 1.0)
    return served


def _send_labels(store: Store, served: list[_Served], rng: np.random.Generator, until: float) -> int:
    """Join the labels that would have arrived by ``until`` (late, and not for every request)."""
    delays = rng.exponential(LABEL_MEAN_DELAY, len(served))
    arrives = rng.random(len(served)) < LABEL_SHARE
    items = [{"request_id": s.request_id, "label": s.label}
             for s, delay, comes in zip(served, delays, arrives, strict=True) if comes and s.at + delay < until]
    joined = 0
    for first in range(0, len(items), 5_000):
        joined += record_feedback(store, items[first:first + 5_000]).joined
    return joined


def _at(moment: float) -> Callable[[], float]:
    """A clock stopped at ``moment``: the simulated time of a registry step."""
    return lambda: moment


def _write_marker(settings: Settings, now: float) -> None:
    write_private(secrets_dir(settings) / MARKER_FILE, json.dumps({"built_at": now, "versions": ["v1", "v2"]}),
                  overwrite=True)


def _clear_demo_workspace(settings: Settings, store: Store, existing: list[VersionInfo]) -> None:
    """Empty a workspace the demo built (refused for any other): its versions, telemetry and ledger."""
    marker = secrets_dir(settings) / MARKER_FILE
    built = set(json.loads(marker.read_text())["versions"]) if marker.exists() else set()
    foreign = sorted({v.version_id for v in existing} - built)
    if foreign:
        raise ConflictError(f"--fresh only rebuilds a workspace the demo built; version(s) {', '.join(foreign)} "
                            "came from elsewhere. Point OPSCORE_WORKSPACE at an empty folder instead.")
    with store.write() as conn:
        registry.erase_everything(conn)
        for table in reversed(metadata.sorted_tables):
            if table not in registry.TABLES and table is not schema_info:
                conn.execute(delete(table))
    root = settings.model_store_path
    for info in existing:
        shutil.rmtree(root / artifacts.check_version_id(info.version_id), ignore_errors=True)
        (root / artifacts.DATASETS / f"{info.fingerprint}.parquet").unlink(missing_ok=True)
    marker.unlink()
