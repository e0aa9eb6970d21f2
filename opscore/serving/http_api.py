"""The HTTP shell: predictions with telemetry, feedback, health, metrics and the registry's moves.

A prediction reads top to bottom in :func:`_predict`: read the body (capped), parse, validate against
the version captured on arrival, predict (micro-batched), log, answer. Whatever the caller gets
wrong is a 4xx naming the problem and is never logged as a prediction. The production version is
followed by polling its alias, so a promotion elsewhere reaches this replica within
``alias_poll_seconds``; a request keeps the version it started with, so no swap fails a request.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, Field
from sqlalchemy import text

from opscore.access import private_files, tokens
from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.data.features import FeatureSchema, Problem, validate_records
from opscore.exceptions import BadInputError, NotFoundError, OpscoreError, TooLargeError, Unauthenticated
from opscore.models import registry, retraining
from opscore.monitoring import health as health_checks
from opscore.monitoring.live_drift import live_drift, parse_window
from opscore.operations import alerts
from opscore.operations import tasks as task_queue
from opscore.operations.alert_evaluator import AlertEvaluator
from opscore.operations.procedures import available_procedures, get_procedure
from opscore.operations.worker import TaskWorker, tick_hooks
from opscore.rollout import deployments
from opscore.rollout.deployments import DeploymentTicker
from opscore.rollout.routing import CANDIDATE, PRODUCTION, RoutingFollower
from opscore.rollout.shadow_report import shadow_report
from opscore.serving.batching import Arrival, MicroBatcher
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import LoadedVersion, ProductionModel, Scores, request_records, single_threaded
from opscore.serving.shadowing import Shadower
from opscore.serving.telemetry_writer import (
    INVALID_ROWS,
    MALFORMED_BODY,
    TOO_LARGE,
    TelemetryWriter,
    rejected_cells_of,
)
from opscore.store import Store, open_store

log = logging.getLogger(__name__)

# A caller's key for sticky routing (a user id, say): the same key always meets the same version.
ROUTING_KEY_HEADER = "x-routing-key"
# Requests with more rows than this are validated off the event loop so they cannot stall others.
_VALIDATE_INLINE_ROWS = 64
_MAX_LISTED_PROBLEMS = 200
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25,
                    0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


# /predict and /feedback read their bodies themselves (size cap, exact messages); these describe them in /docs.
_ROW = {"type": "object", "additionalProperties": True, "description": "column: value; null for a missing value"}
_PREDICT_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [
        {"type": "object", "required": ["instances"], "properties": {"instances": {"type": "array", "items": _ROW}}},
        {"type": "object", "required": ["features"], "properties": {"features": _ROW}},
    ]},
    "example": {"features": {"age": 41, "annual_income": 52000, "employment_type": "salaried"}},
}}}}
_LABEL = {"type": "object", "required": ["request_id", "label"],
          "properties": {"request_id": {"type": "string"}, "label": {}}}
_FEEDBACK_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [_LABEL, {"type": "array", "items": _LABEL}]},
}}}}


_EXPECTED_VERSION = ("the version you mean to replace; the move is refused (409) if production is something "
                     "else by then, so a move made meanwhile by someone else is never overridden")


class PromoteBody(BaseModel):
    reason: str = Field(min_length=1, description="why production moves; kept in the ledger")
    expected_version: str | None = Field(None, description=_EXPECTED_VERSION)


class RollbackBody(BaseModel):
    reason: str = Field(min_length=1, description="why production moves back; kept in the ledger")
    to: str | None = Field(None, description="version to return to (default: the one that served before)")
    expected_version: str | None = Field(None, description=_EXPECTED_VERSION)


class RetrainBody(BaseModel):
    base_version: str | None = Field(None, alias="from",
                                     description="whose training data to start from (default: production)")
    version_id: str | None = Field(None, description="id of the new candidate (default: the next free one)")
    include_labelled_traffic: bool = Field(False, description="add the newest labelled production traffic")


class TaskBody(BaseModel):
    procedure: str = Field(description="a registered procedure (GET /maintenance/procedures lists them)")
    params: dict[str, Any] = Field(default_factory=dict, description="the procedure's parameters")
    title: str | None = Field(None, description="default: the procedure's title")
    type: str | None = Field(None, description="preventive, corrective, adaptive or perfective (default: the procedure's)")
    priority: str = Field("medium", description="critical, high, medium or low")
    due_at: float | None = Field(None, description="when it may run (Unix time, seconds; default now)")
    depends_on: list[str] = Field(default_factory=list, description="ids of tasks that must succeed first")
    max_attempts: int | None = Field(None, description="default: task_max_attempts")


class SilenceBody(BaseModel):
    matchers: dict[str, str] = Field(description="labels (or rule, severity) an alert must match to be muted")
    author: str = Field(description="who sets the silence")
    comment: str = Field(description="why")
    ends_at: float = Field(description="when it ends (Unix time, seconds)")


class DeploymentBody(BaseModel):
    version: str = Field(description="the registered version to deploy")
    strategy: str = Field(description="shadow, canary or blue-green")
    options: dict[str, Any] = Field(default_factory=dict, description=(
        "overrides of the deploy_* settings: weights (percent steps), interval_seconds, failed_checks, p95_ratio, "
        "p95_slack_ms, error_margin, accuracy_drop, min_requests, shadow_seconds, shadow_share"))


class _Metrics:
    """The service's Prometheus series, in a registry of its own so several apps can share a process."""

    def __init__(self, serving: _Serving) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("opscore_prediction_latency_seconds", "Time to answer a /predict request",
                                 ["model_version"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter("opscore_predictions", "Rows predicted", ["model_version"], registry=self.registry)
        self.errors = Counter("opscore_prediction_errors", "Rows refused (invalid) or failed (model error)",
                              ["model_version", "kind"], registry=self.registry)
        self.refused = Counter("opscore_requests_refused", "Requests refused before any prediction (4xx), by reason",
                               ["model_version", "reason"], registry=self.registry)
        self.schema_warnings = Counter("opscore_schema_warnings", "Requests carrying columns the model ignores",
                                       ["model_version"], registry=self.registry)
        self.batch_size = Histogram("opscore_batch_size", "Rows per model call", buckets=_BATCH_BUCKETS,
                                    registry=self.registry)
        self.batch_wait = Histogram("opscore_batch_wait_seconds", "Time a request waited for its model call",
                                    buckets=_WAIT_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(serving))

    def observe_batch(self, rows: int, waits: list[float]) -> None:
        self.batch_size.observe(rows)
        for wait in waits:
            self.batch_wait.observe(wait)


class _StateCollector:
    """Figures read at scrape time: telemetry writer counts and the version in production."""

    def __init__(self, serving: _Serving) -> None:
        self._serving = serving

    def collect(self) -> Any:
        writer = self._serving.writer
        stats = writer.stats if writer is not None else None
        dropped = CounterMetricFamily("opscore_telemetry_dropped", "Prediction records lost because the buffer was full")
        dropped.add_metric([], stats.dropped if stats else 0)
        yield dropped
        backlog = GaugeMetricFamily("opscore_telemetry_backlog", "Prediction records accepted, not yet stored")
        backlog.add_metric([], stats.backlog if stats else 0)
        yield backlog
        shadower = self._serving.shadower
        shadow = CounterMetricFamily("opscore_shadow_dropped", "Shadow copies dropped because their queue was full")
        shadow.add_metric([], shadower.dropped if shadower is not None else 0)
        yield shadow
        production = GaugeMetricFamily("opscore_production_version", "1 for the version this replica serves",
                                       labels=["model_version"])
        loaded = self._serving.loaded_version()
        if loaded is not None:
            production.add_metric([loaded.version_id], 1)
        yield production


@dataclass
class _Answer:
    body: dict[str, Any]
    status: int = 200


class _Serving:
    """Everything a running app holds: store, production model, batcher, telemetry writer, metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = _Metrics(self)
        self.store: Store | None = None
        self.production: ProductionModel | None = None
        self.writer: TelemetryWriter | None = None
        self.batcher: MicroBatcher | None = None
        self.tokens: tokens.TokenBook | None = None
        self.alert_evaluator: AlertEvaluator | None = None
        self.task_worker: TaskWorker | None = None
        self.routing: RoutingFollower | None = None
        self.shadower: Shadower | None = None
        self.deployment_ticker: DeploymentTicker | None = None
        # A candidate gets a batcher (and a thread) of its own, so a slow canary never holds up production.
        self.candidate_batchers: dict[str, MicroBatcher] = {}
        self._batchers_lock = threading.Lock()
        self._heap_lock = threading.Lock()
        # Request ids: a random per-start prefix and a counter (unique across replicas, cheap per row).
        self._id_prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count()

    def request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):016x}"

    def start(self) -> None:
        generated = tokens.ensure_admin_token(self.settings)
        if generated.value is not None:
            print(f"opscore: generated an admin token for mutating routes (kept in {generated.path}, mode 0600):\n"
                  f"  {generated.value}", file=sys.stderr, flush=True)
        private_files.warn_exposed_files(self.settings)
        self.tokens = tokens.TokenBook(self.settings)
        self.store = open_store(self.settings)
        self.production = ProductionModel(self.settings, on_change=self.refreeze_heap)
        if self.settings.telemetry:
            self.writer = TelemetryWriter(self.settings, self.store).start()
        self.routing = RoutingFollower(self.settings, load=self.production.get)
        self.shadower = Shadower(self.writer, settings=self.settings)
        if self.settings.batching:
            self.batcher = MicroBatcher(self.settings.batch_max_size, self.settings.batch_max_wait_ms / 1000,
                                        observe=self.metrics.observe_batch)
        if self.settings.alert_evaluation_seconds > 0:
            self.alert_evaluator = AlertEvaluator(self.settings, telemetry_dropped=self.telemetry_dropped).start()
        if self.settings.deploy_tick_seconds > 0:
            self.deployment_ticker = DeploymentTicker(self.settings).start()
        if self.settings.serve_worker:
            self.task_worker = TaskWorker(self.settings, tick_hooks=tick_hooks(self.settings)).start()
        self.refreeze_heap()

    def batcher_for(self, version: LoadedVersion, role: str | None) -> MicroBatcher | None:
        """Production's batcher, or the candidate's own one (made on its first request)."""
        if role != CANDIDATE or self.batcher is None:
            return self.batcher
        with self._batchers_lock:
            batcher = self.candidate_batchers.get(version.version_id)
            if batcher is None:
                batcher = self.candidate_batchers[version.version_id] = MicroBatcher(
                    self.settings.batch_max_size, self.settings.batch_max_wait_ms / 1000,
                    observe=self.metrics.observe_batch)
            return batcher

    def telemetry_dropped(self) -> int:
        return self.writer.stats.dropped if self.writer is not None else 0

    def refreeze_heap(self) -> None:
        """Exempt the long-lived heap (libraries, the loaded models) from garbage collection.

        A full collection walks every object; with pandas, scikit-learn and a model loaded that
        measured 110-160 ms per pass, stalling every request in flight (p95 at concurrency 64 went
        from 87 ms to over 200 ms). Frozen objects are never collected, though: freezing again after
        each swap without thawing made whatever was garbage at that moment (a model let go of, the
        copy a pre-flight check loaded) permanent. So the heap is thawed and collected first; that
        one full collection per swap or eviction (a stall of the same 110-160 ms) is the price.
        """
        with self._heap_lock:
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def stop(self) -> None:
        """Graceful shutdown: finish queued model calls, then write every logged prediction."""
        if self.alert_evaluator is not None:
            self.alert_evaluator.stop()
        if self.task_worker is not None:
            self.task_worker.stop()
        if self.deployment_ticker is not None:
            self.deployment_ticker.stop()
        if self.batcher is not None:
            self.batcher.close()
        for batcher in self.candidate_batchers.values():
            batcher.close()
        if self.routing is not None:
            self.routing.close()
        if self.shadower is not None:
            self.shadower.close()
        if self.writer is not None and not self.writer.close(timeout=30):
            log.error("telemetry: %d prediction record(s) could not be written before shutdown",
                      self.writer.stats.backlog)
        if self.production is not None:
            self.production.close()

    def loaded_version(self) -> LoadedVersion | None:
        try:
            return self.production.current() if self.production is not None else None
        except OpscoreError:
            return None


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI application for ``settings``; state starts and stops with the app's lifespan."""
    serving = _Serving(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        serving.start()
        try:
            yield
        finally:
            serving.stop()

    app = FastAPI(title="opscore", summary="Serve, log and steer scikit-learn models in production.",
                  lifespan=lifespan)
    app.state.serving = serving

    @app.exception_handler(OpscoreError)
    async def _opscore_error(_request: Request, exc: OpscoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request body"}, status_code=422)

    def require_admin(request: Request) -> Actor:
        return serving.tokens.authorize(_bearer_token(request), tokens.ADMIN)

    def require_feedback(request: Request) -> Actor:
        return serving.tokens.authorize(_bearer_token(request), tokens.FEEDBACK)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_request: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.post("/predict", summary="Predict with the production version; every answered row is logged",
              openapi_extra=_PREDICT_BODY)
    async def predict(request: Request) -> Response:
        answer = await _predict(serving, request)
        return Response(json.dumps(answer.body), status_code=answer.status, media_type="application/json")

    @app.post("/feedback", summary="Ground-truth labels joined to logged predictions by request id",
              openapi_extra=_FEEDBACK_BODY)
    async def feedback(request: Request, _actor: Actor = Depends(require_feedback)) -> dict[str, Any]:
        payload = _parse_json(await _read_body(request, settings.max_request_bytes))
        items = payload if isinstance(payload, list) else [payload]
        if serving.writer is not None:
            # Labels often follow their prediction closely; make sure it is stored before joining.
            await run_in_threadpool(serving.writer.flush, 5.0)
        result = await run_in_threadpool(record_feedback, serving.store, items)
        return {"joined": result.joined, "unknown": result.unknown}

    @app.get("/health", summary="Liveness and readiness: model loaded, store reachable, telemetry backlog")
    async def health() -> JSONResponse:
        body = await run_in_threadpool(_health, serving)
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/health/report", summary="The five health checks over a window (default 24h), as `opscore health --json`")
    async def health_report(window: str = "24h") -> dict[str, Any]:
        report = await run_in_threadpool(health_checks.health_report, settings, None, parse_window(window))
        return report.to_dict()

    @app.get("/metrics", summary="Prometheus text format")
    async def metrics() -> Response:
        return Response(generate_latest(serving.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/versions", summary="Every version with its aliases and holdout metrics, newest first")
    async def versions() -> list[dict[str, Any]]:
        found = await run_in_threadpool(registry.list_versions, serving.store)
        return [v.to_dict() for v in found]

    @app.get("/drift", summary="Drift of live traffic over a window against the version's reference profile")
    async def drift(window: str = "24h", version: str | None = None) -> dict[str, Any]:
        end = time.time()
        report = await run_in_threadpool(live_drift, settings, end - parse_window(window), end, version)
        return report.to_dict()

    @app.post("/versions/{version_id}/promote", summary="Move production to a version (pre-flight checked, ledgered)")
    async def promote(version_id: str, body: PromoteBody, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        entry = await run_in_threadpool(registry.promote, settings, version_id, actor, body.reason,
                                        expected_from=body.expected_version)
        return await _moved(serving, entry)

    @app.post("/rollback", summary="Move production back (default: to the version that served before)")
    async def rollback(body: RollbackBody, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        entry = await run_in_threadpool(registry.rollback, settings, actor, body.reason, to=body.to,
                                        expected_from=body.expected_version)
        return await _moved(serving, entry)

    @app.post("/retrain", summary="Train a candidate from a version's training data, as the Retrain page does")
    async def retrain(body: RetrainBody, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        outcome = await run_in_threadpool(retraining.retrain, settings, body.base_version, None,
                                          body.include_labelled_traffic, actor=actor, version_id=body.version_id)
        return outcome.to_dict()

    @app.get("/alerts", summary="Alerts, newest first (state: pending, firing, nodata or resolved)")
    async def list_alerts(state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return await run_in_threadpool(alerts.list_alerts, settings, state=state, limit=min(max(limit, 1), 1000))

    @app.get("/alerts/{alert_id}", summary="One alert with its history (every event) and delivery attempts")
    async def get_alert(alert_id: int) -> dict[str, Any]:
        return await run_in_threadpool(alerts.get_alert, settings, alert_id)

    @app.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert: it stops escalating and repeating")
    async def acknowledge(alert_id: int, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        return await run_in_threadpool(lambda: alerts.acknowledge(settings, alert_id, actor=actor))

    @app.post("/silences", summary="Mute alerts matching every matcher until ends_at (author and comment required)")
    async def silence(body: SilenceBody, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        return await run_in_threadpool(lambda: alerts.create_silence(
            settings, matchers=body.matchers, author=body.author, comment=body.comment, ends_at=body.ends_at,
            actor=actor))

    @app.get("/maintenance/tasks", summary="The maintenance queue: open tasks by priority and due time, then ended ones")
    async def list_maintenance_tasks(status: str | None = None, type: str | None = None,  # noqa: A002
                                     priority: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        found = await run_in_threadpool(lambda: task_queue.list_tasks(
            settings, status=status, type=type, priority=priority, limit=min(max(limit, 1), 1000)))
        return [t.to_dict() for t in found]

    @app.get("/maintenance/tasks/{task_id}", summary="One task with its attempts and result")
    async def get_maintenance_task(task_id: str) -> dict[str, Any]:
        return (await run_in_threadpool(task_queue.get_task, settings, task_id)).to_dict()

    @app.get("/maintenance/procedures", summary="The procedures a task can run, by maintenance set")
    async def list_procedures() -> list[dict[str, Any]]:
        return [{"name": p.name, "title": p.title, "maintenance_set": p.maintenance_set, "type": p.task_type,
                 "estimated_seconds": p.estimated_seconds}
                for p in (get_procedure(n) for n in available_procedures())]

    @app.post("/maintenance/tasks", status_code=201, summary="Queue a task running a registered procedure")
    async def create_maintenance_task(body: TaskBody, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        task = await run_in_threadpool(lambda: task_queue.create_task(
            settings, procedure=body.procedure, params=body.params, title=body.title, type=body.type,
            priority=body.priority, due_at=body.due_at, depends_on=body.depends_on, actor=actor,
            max_attempts=body.max_attempts))
        return task.to_dict()

    @app.post("/maintenance/tasks/{task_id}/{action}",
              summary="run (due now: the next free worker takes it), cancel (a running task stops at its next "
                      "checkpoint) or retry (a failed, cancelled or upstream_failed task)")
    async def steer_maintenance_task(task_id: str, action: str, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        steer = {"run": task_queue.run_task_now, "cancel": task_queue.cancel_task,
                 "retry": task_queue.retry_task}.get(action)
        if steer is None:
            raise NotFoundError(f"unknown task action {action!r}; use run, cancel or retry")
        return (await run_in_threadpool(lambda: steer(settings, task_id, actor=actor))).to_dict()

    @app.get("/deployments", summary="Deployments, newest first: strategy, status, stage, step and outcome")
    async def list_deployments(limit: int = 100) -> list[dict[str, Any]]:
        found = await run_in_threadpool(deployments.list_deployments, settings, min(max(limit, 1), 1000))
        return [d.to_dict() for d in found]

    @app.get("/deployments/{deployment_id}",
             summary="One deployment: its stages with their figures, every analysis, switches and the shadow report")
    async def get_deployment(deployment_id: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            found = deployments.get_deployment(settings, deployment_id)
            body = found.to_dict()
            if found.strategy == "shadow":
                body["shadow_report"] = shadow_report(settings, deployment_id).to_dict()
            return body
        return await run_in_threadpool(read)

    @app.post("/deployments", status_code=201,
              summary="Start a deployment: validation and testing, then shadow, canary or blue-green")
    async def start_deployment(body: DeploymentBody, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        found = await run_in_threadpool(lambda: deployments.start(settings, body.version, body.strategy, actor=actor,
                                                                  options=body.options))
        await run_in_threadpool(_follow_now, serving)
        return found.to_dict()

    @app.post("/deployments/{deployment_id}/{action}",
              summary="pause, resume, promote (now) or abort a deployment; abort sends all traffic back")
    async def steer_deployment(deployment_id: str, action: str, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
        found = await run_in_threadpool(lambda: deployments.act(settings, deployment_id, action, actor=actor))
        await run_in_threadpool(_follow_now, serving)
        return found.to_dict()

    return app


def _follow_now(serving: _Serving) -> None:
    """Apply a routing or alias change made here at once (other replicas follow within their poll)."""
    try:
        serving.routing.refresh()
        serving.production.refresh()
    except Exception as exc:  # noqa: BLE001 - the change committed; the pollers keep trying
        log.warning("this replica could not apply the change yet: %s", exc)


def _bearer_token(request: Request) -> str | None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else None


async def _moved(serving: _Serving, entry: registry.LedgerEntry) -> dict[str, Any]:
    """Answer a committed move with its ledger entry, then serve it here at once if this replica can.

    The move is done whatever happens next: if this replica cannot load the version right now, the
    answer says so in ``note`` and its alias poller keeps trying, as every other replica's does.
    """
    body = entry.to_dict()
    try:
        await run_in_threadpool(serving.production.refresh)
    except Exception as exc:  # noqa: BLE001 - the move committed; a local load failure must not read as a failed move
        log.warning("ledger #%s committed, but this replica could not load %s yet: %s", entry.id, entry.to_version, exc)
        body["note"] = (f"production is {entry.to_version} (ledger #{entry.id}); this replica could not load it yet "
                        f"({exc}) and keeps serving its current version until its alias poller catches up")
    return body


# -- the prediction path -------------------------------------------------------------------------
async def _predict(serving: _Serving, request: Request) -> _Answer:
    arrived = time.perf_counter()
    if serving.batcher is None:
        return await _predict_now(serving, request, arrived, None)
    with serving.batcher.arriving() as arrival:
        return await _predict_now(serving, request, arrived, arrival)


async def _predict_now(serving: _Serving, request: Request, arrived: float, arrival: Arrival | None) -> _Answer:
    settings, metrics = serving.settings, serving.metrics
    try:
        version = serving.production.current()
    except OpscoreError as exc:
        return _Answer({"detail": str(exc)}, 503)
    try:
        instances, ignored = _instances(_parse_json(await _read_body(request, settings.max_request_bytes)),
                                        settings.max_instances_per_request)
    except OpscoreError as exc:
        metrics.errors.labels(version.version_id, "invalid").inc()
        _refuse(serving, version.version_id, TOO_LARGE if isinstance(exc, TooLargeError) else MALFORMED_BODY)
        return _Answer({"detail": str(exc)}, exc.http_status)

    # Route before batching, so a micro-batch only ever holds one version's requests.
    request_ids = [serving.request_id() for _ in instances]
    route = serving.routing.current()
    key = request.headers.get(ROUTING_KEY_HEADER) or request_ids[0]
    role = route.split.role_for(key) if route.split.deployment_id else None
    if role == CANDIDATE and route.candidate is not None:
        version = route.candidate
    elif role is not None:
        role = PRODUCTION
    deployment_id = route.split.deployment_id
    label = version.version_id
    batcher = serving.batcher_for(version, role)
    if arrival is not None and batcher is not serving.batcher:
        serving.batcher.leave(arrival)
        arrival = None

    try:
        checked = await _validate_and_score(batcher, version, instances, arrival)
    except Exception as exc:  # noqa: BLE001 - a model failure is answered and logged, never a traceback
        message = f"the model failed: {type(exc).__name__}: {exc}"
        log.warning("version %s: %s", label, message)
        metrics.errors.labels(label, "model").inc(len(instances))
        _log(serving, version, instances, None, arrived, message, request_ids, deployment_id, role)
        return _Answer({"detail": message, "version": label}, 500)
    if checked.errors:
        metrics.errors.labels(label, "invalid").inc(len({p.row for p in checked.errors}))
        _refuse(serving, label, INVALID_ROWS, rejected_cells_of(checked.errors))
        return _Answer(_invalid_rows_body(checked.errors), 422)

    warnings = [f"ignored field(s) {', '.join(ignored)}"] if ignored else []
    extra = _extra_columns(version.schema, instances)
    if extra:
        warnings.append(f"extra column(s) ignored by the model: {', '.join(extra)}")
        metrics.schema_warnings.labels(label).inc()
    warnings += [str(p) for p in checked.warnings[:_MAX_LISTED_PROBLEMS]]
    scores = checked.scores
    _log(serving, version, instances, scores, arrived, None, request_ids, deployment_id, role)
    metrics.latency.labels(label).observe(time.perf_counter() - arrived)
    metrics.predictions.labels(label).inc(len(instances))
    if route.shadow is not None and route.split.shadows(key):  # after answering, never instead of it
        serving.shadower.submit(route.shadow, deployment_id, instances, request_ids)
    return _Answer({"predictions": scores.predictions, "probabilities": scores.probabilities,
                    "version": label, "request_ids": request_ids, "warnings": warnings})


@dataclass
class _Checked:
    """A request's rows after validation: its problems, or its scores (and advisory warnings)."""

    errors: list[Problem]
    warnings: list[Problem]
    scores: Scores | None


async def _validate_and_score(batcher: MicroBatcher | None, version: LoadedVersion, instances: list[Any],
                              arrival: Arrival | None) -> _Checked:
    """Validate against ``version`` and score: micro-batched, or alone in a worker thread."""
    if batcher is not None:
        outcome = await batcher.predict(version, instances, arrival)
        if outcome.errors:
            return _Checked(outcome.errors, outcome.warnings, None)
        scores = outcome.scores
        if outcome.start != 0 or outcome.stop != len(scores.predictions):
            probabilities = scores.probabilities
            scores = Scores(scores.predictions[outcome.start:outcome.stop],
                            probabilities[outcome.start:outcome.stop] if probabilities is not None else None,
                            scores.classes)
        return _Checked([], outcome.warnings, scores)
    if len(instances) > _VALIDATE_INLINE_ROWS:
        rows = await run_in_threadpool(validate_records, version.schema, instances)
    else:
        rows = validate_records(version.schema, instances)
    warnings = [p for p in rows.warnings if p.row is not None]
    if rows.errors:
        return _Checked(rows.errors, warnings, None)
    return _Checked([], warnings, await run_in_threadpool(_predict_alone, version, rows.frame))


def _predict_alone(version: LoadedVersion, frame: Any) -> Scores:
    with single_threaded():
        return version.predict_frame(frame)


def _extra_columns(schema: FeatureSchema, instances: list[Any]) -> list[str]:
    known = set(schema.names)
    seen: set[str] = set()
    for instance in instances:
        if isinstance(instance, dict):
            seen.update(instance)
    return sorted(str(name) for name in seen - known)


def _refuse(serving: _Serving, version_id: str, reason: str, cells: dict[tuple[str, str], int] | None = None) -> None:
    """Count a request refused before any prediction: in /metrics and, through the writer, in the store
    (with its invalid rows by column and reason, when it had any)."""
    serving.metrics.refused.labels(version_id, reason).inc()
    if serving.writer is not None:
        serving.writer.count_refusal(version_id, reason, cells=cells)


def _log(serving: _Serving, version: LoadedVersion, instances: list[dict[str, Any]], scores: Scores | None,
         arrived: float, error: str | None, request_ids: list[str], deployment_id: str | None = None,
         role: str | None = None) -> None:
    """Log one record per row with the request's own latency, the first row opening the request (so the
    request counts once, with its rows), with the deployment and role that answered it."""
    if serving.writer is None:
        return
    at = time.time()
    latency_ms = (time.perf_counter() - arrived) * 1000
    names = version.schema.names
    features = [{name: instance.get(name) for name in names} for instance in instances]
    serving.writer.submit_many(request_records(version.version_id, features, scores, source="api",
                                               latency_ms=latency_ms, request_ids=request_ids, at=at, error=error,
                                               deployment_id=deployment_id, role=role))


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"the body is {int(declared):,} bytes; the limit is {limit:,} (max_request_bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"the body exceeds {limit:,} bytes (max_request_bytes); send fewer instances per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise BadInputError(f"{name} is not valid JSON; send null for a missing value")


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadInputError('the body is empty; send JSON like {"instances": [{"column": value, ...}]}')
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise BadInputError("the body is not UTF-8 text; send JSON") from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise BadInputError("the body is nested too deeply to be a prediction request") from exc


def _instances(payload: Any, limit: int) -> tuple[list[Any], list[str]]:
    """The rows of a /predict body and any top-level fields it ignores."""
    if not isinstance(payload, dict):
        raise BadInputError('expected a JSON object: {"instances": [{...}, ...]} or {"features": {...}}, '
                            f"got a JSON {_json_kind(payload)}")
    if "instances" in payload and "features" in payload:
        raise BadInputError('send either "instances" (a list of rows) or "features" (one row), not both')
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise BadInputError(f'"instances" must be a list of objects, got a JSON {_json_kind(instances)}')
    elif "features" in payload:
        if not isinstance(payload["features"], dict):
            raise BadInputError(f'"features" must be an object of column: value, got a JSON {_json_kind(payload["features"])}')
        instances = [payload["features"]]
    else:
        raise BadInputError('the body has neither "instances" (a list of rows) nor "features" (one row)')
    if not instances:
        raise BadInputError('"instances" is empty; send at least one row')
    if len(instances) > limit:
        raise TooLargeError(f"{len(instances):,} instances in one request; the limit is {limit:,} "
                            "(max_instances_per_request)")
    ignored = sorted(str(k) for k in payload if k not in {"instances", "features"})
    return instances, ignored


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _invalid_rows_body(problems: list[Any]) -> dict[str, Any]:
    listed = problems[:_MAX_LISTED_PROBLEMS]
    more = len(problems) - len(listed)
    detail = f"{len(problems)} problem(s) in the instances; nothing was predicted: " + "; ".join(map(str, listed[:20]))
    if len(problems) > 20:
        detail += f"; … and {len(problems) - 20} more"
    return {"detail": detail,
            "errors": [{"row": p.row, "column": p.column, "message": p.message} for p in listed],
            "more_errors": more}


def _health(serving: _Serving) -> dict[str, Any]:
    production = serving.production
    loaded = serving.loaded_version()
    store_error = None
    try:
        with serving.store.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not reachable; the message says why
        store_error = str(exc).splitlines()[0]
    writer = serving.writer
    stats = writer.stats if writer is not None else None
    ready = loaded is not None
    status = ("ok" if store_error is None else "degraded") if ready else "unavailable"
    return {
        "status": status,
        "live": True,
        "ready": ready,
        "model": {
            "loaded": ready,
            "version": loaded.version_id if loaded else None,
            "swaps": production.swaps if production else 0,
            "last_error": production.last_error if production else None,
            "schema": _schema_brief(loaded.schema) if loaded else None,
        },
        "store": {"reachable": store_error is None, "error": store_error},
        "telemetry": {
            "enabled": writer is not None,
            **({"submitted": stats.submitted, "written": stats.written, "dropped": stats.dropped,
                "backlog": stats.backlog, "failures": stats.failures, "last_error": stats.last_error}
               if stats else {}),
        },
        "routing": _routing_brief(serving),
        "batching": {"enabled": serving.batcher is not None, "max_size": serving.settings.batch_max_size,
                     "max_wait_ms": serving.settings.batch_max_wait_ms},
    }


def _routing_brief(serving: _Serving) -> dict[str, Any]:
    route = serving.routing.current() if serving.routing is not None else None
    shadower = serving.shadower
    return {
        "generation": route.generation if route else 0,
        "applied_at": route.applied_at if route else None,
        "split": route.split.to_dict() if route else None,
        "last_error": serving.routing.last_error if serving.routing else None,
        "shadow": {"submitted": shadower.submitted, "dropped": shadower.dropped, "backlog": shadower.backlog,
                   "scored": shadower.scored} if shadower else None,
    }


def _schema_brief(schema: FeatureSchema) -> dict[str, str]:
    return {f.name: f.kind for f in schema.features}


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGINT/SIGTERM; then in-flight requests finish, telemetry is flushed, and it returns."""
    import uvicorn

    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=30)
    # uvicorn re-raises the stop signal after its graceful shutdown, through the handler that was in
    # place before it started; a stop that was asked for is a normal exit, not a death by signal.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda _signum, _frame: None)
    uvicorn.Server(config).run()
