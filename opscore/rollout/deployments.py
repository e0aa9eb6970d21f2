"""The deployment pipeline: validation, testing, then shadow, canary or blue-green, with automatic rollback.

:func:`start` runs the two gates before any traffic moves: validation (the registry's pre-flight:
checksum, loads, predicts its example, schema compatible with production) and testing (holdout
metrics not worse than production's beyond ``deploy_holdout_tolerance``, and a benchmark of both on
the same rows). A gate that fails ends the deployment ``failed`` with its reason; nothing was routed.
Then the strategy sets the split every replica follows (:mod:`opscore.rollout.routing`):

- **shadow**: a copy of the traffic goes to the candidate; after ``deploy_shadow_seconds`` the stage
  records the shadow report and waits for an operator to promote or abort.
- **canary**: the candidate answers ``deploy_weights`` percent of requests, step by step; every
  ``deploy_interval_seconds`` :func:`tick` compares its p95, error rate and (where labels arrived)
  accuracy with production's over the same interval, as Flagger does. ``deploy_failed_checks`` failed
  checks roll it back; every step passed promotes it. Both moves are ledgered with the deployment id.
- **blue-green**: production switches to the candidate at once (ledgered, and kept in the switch
  history); while it bakes for as many intervals as a canary has steps, each interval is checked
  against the baseline's figures from the interval before the switch, and failures switch back.

Every state change is one write transaction; the figures behind each decision are kept with it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update
from threadpoolctl import threadpool_limits

from opscore.access.actors import SYSTEM, Actor
from opscore.config import Settings
from opscore.data.features import validate_records
from opscore.exceptions import BadInputError, ConflictError, NotFoundError
from opscore.models import artifacts, registry
from opscore.operations.alert_evaluator import hold_lease, release_lease
from opscore.rollout.routing import CANDIDATE, NO_SPLIT, PRODUCTION, Split, write_split
from opscore.rollout.shadow_report import shadow_report
from opscore.store import deployment_analyses, deployment_switches, deployments, open_store, predictions

log = logging.getLogger(__name__)

STRATEGIES = ("shadow", "canary", "blue-green")
ACTIVE = ("running", "paused")
ENDED = ("promoted", "rolled_back", "aborted", "failed")
ACTIONS = ("pause", "resume", "promote", "abort")
# Metrics where higher is better; the rest (log loss, MAE, RMSE) are errors.
_HIGHER_IS_BETTER = {"accuracy", "f1", "roc_auc", "r2"}
_BENCHMARK_ROWS, _BENCHMARK_REPEATS = 200, 5


@dataclass
class Deployment:
    """One deployment as stored, with what an operator needs to read it."""

    id: str
    version_id: str
    baseline_version: str | None
    strategy: str
    status: str
    stage: str
    step: int
    weights: list[float]
    options: dict[str, Any]
    failed_checks: int
    created_by: str
    created_at: float
    updated_at: float
    step_started_at: float | None
    ended_at: float | None
    stages: dict[str, Any]
    reason: str
    analyses: list[dict[str, Any]] = field(default_factory=list)
    switches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def weight(self) -> float:
        """The candidate's current share of requests, in percent (canary only)."""
        if self.strategy != "canary" or self.stage != "production" or self.status not in ACTIVE:
            return 0.0
        return float(self.weights[min(self.step, len(self.weights) - 1)])

    def seconds_to_promotion(self, now: float) -> float | None:
        """Interval × the steps still to pass, less the time already spent on this one (canary, blue-green)."""
        if self.status != "running" or self.stage != "production" or self.step_started_at is None:
            return None
        interval = float(self.options["interval_seconds"])
        left = len(self.weights) - self.step
        return max(0.0, left * interval - (now - self.step_started_at))

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        body = {k: v for k, v in self.__dict__.items()}
        body["weight"] = self.weight
        body["seconds_to_promotion"] = self.seconds_to_promotion(now)
        return body


def _options(settings: Settings, strategy: str, given: dict[str, Any] | None) -> dict[str, Any]:
    options = {
        "interval_seconds": settings.deploy_interval_seconds,
        "failed_checks": settings.deploy_failed_checks,
        "p95_ratio": settings.deploy_p95_ratio,
        "p95_slack_ms": settings.deploy_p95_slack_ms,
        "error_margin": settings.deploy_error_margin,
        "accuracy_drop": settings.deploy_accuracy_drop,
        "min_requests": settings.deploy_min_requests,
        "shadow_seconds": settings.deploy_shadow_seconds,
        "shadow_share": 1.0,
    }
    unknown = set(given or {}) - set(options) - {"weights"}
    if unknown:
        raise BadInputError(f"unknown deployment option(s) {', '.join(sorted(unknown))}; "
                            f"known: weights, {', '.join(sorted(options))}")
    for name, value in (given or {}).items():
        if name == "weights":
            continue
        try:
            options[name] = type(options[name])(value)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"deployment option {name}: expected a number, got {value!r}") from exc
        if options[name] < 0:
            raise BadInputError(f"deployment option {name} must not be negative, got {value!r}")
    if options["interval_seconds"] <= 0 or options["failed_checks"] < 1:
        raise BadInputError("interval_seconds must be positive and failed_checks at least 1")
    if not 0 < options["shadow_share"] <= 1:
        raise BadInputError(f"shadow_share must be in (0, 1], got {options['shadow_share']!r}")
    return options


def _weights(settings: Settings, given: Any) -> list[float]:
    raw = settings.deploy_weights if given is None else given
    try:
        weights = [float(w) for w in raw]
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"weights must be percentages like 5,25,50,100, got {raw!r}") from exc
    if not weights or any(not 0 < w <= 100 for w in weights) or weights != sorted(weights) or weights[-1] != 100:
        raise BadInputError(f"weights must rise from above 0 to 100 percent, e.g. 5,25,50,100; got {raw!r}")
    return weights


# -- reading -------------------------------------------------------------------------------------
def _row_to_deployment(row: Any) -> Deployment:
    return Deployment(row.id, row.version_id, row.baseline_version, row.strategy, row.status, row.stage, row.step,
                      json.loads(row.weights), json.loads(row.options), row.failed_checks, row.created_by,
                      row.created_at, row.updated_at, row.step_started_at, row.ended_at, json.loads(row.stages),
                      row.reason)


def get_deployment(settings: Settings, deployment_id: str) -> Deployment:
    """One deployment with its analyses and switches."""
    store = open_store(settings)
    with store.read() as conn:
        row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).first()
        if row is None:
            raise NotFoundError(f"no deployment {deployment_id!r}")
        found = _row_to_deployment(row)
        found.analyses = [
            {"at": a.at, "step": a.step, "weight": a.weight, "passed": bool(a.passed), **json.loads(a.figures)}
            for a in conn.execute(select(deployment_analyses).where(deployment_analyses.c.deployment_id == deployment_id)
                                  .order_by(deployment_analyses.c.id))]
        found.switches = [
            {"at": s.at, "from_version": s.from_version, "to_version": s.to_version, "actor": s.actor, "reason": s.reason}
            for s in conn.execute(select(deployment_switches).where(deployment_switches.c.deployment_id == deployment_id)
                                  .order_by(deployment_switches.c.id))]
    return found


def list_deployments(settings: Settings, limit: int = 100) -> list[Deployment]:
    """Deployments, newest first (without their analyses)."""
    with open_store(settings).read() as conn:
        rows = conn.execute(select(deployments).order_by(deployments.c.created_at.desc()).limit(limit)).all()
    return [_row_to_deployment(r) for r in rows]


def active_deployment(settings: Settings) -> Deployment | None:
    with open_store(settings).read() as conn:
        row = conn.execute(select(deployments).where(deployments.c.status.in_(ACTIVE))
                           .order_by(deployments.c.created_at.desc())).first()
    return get_deployment(settings, row.id) if row is not None else None


# -- the gates -----------------------------------------------------------------------------------
def _validation(settings: Settings, version_id: str) -> dict[str, Any]:
    report = registry.preflight(settings, version_id)
    return {"passed": report.ok,
            "checks": [{"name": n, "passed": ok, "detail": d} for n, ok, d in report.checks],
            "reason": "; ".join(report.failures())}


def _testing(settings: Settings, version_id: str, baseline: str) -> dict[str, Any]:
    store = open_store(settings)
    candidate, production = registry.get_version(store, version_id), registry.get_version(store, baseline)
    tolerance = settings.deploy_holdout_tolerance
    checks, problems = [], []
    for name in sorted(set(candidate.metrics) & set(production.metrics)):
        new, old = float(candidate.metrics[name]), float(production.metrics[name])
        # Scores may drop by ``tolerance``; errors may grow by that share of production's.
        ok = new >= old - tolerance if name in _HIGHER_IS_BETTER else new <= old * (1 + tolerance) + 1e-12
        checks.append({"name": f"holdout {name}", "passed": ok, "candidate": new, "production": old})
        if not ok:
            problems.append(f"holdout {name} {new:.4f} against production's {old:.4f} (tolerance {tolerance})")
    bench = _benchmark(settings, candidate, production)
    ok = bench["ratio"] <= settings.deploy_benchmark_ratio
    checks.append({"name": "latency benchmark", "passed": ok, **bench})
    if not ok:
        problems.append(f"the candidate took {bench['candidate_ms']:.1f} ms for {_BENCHMARK_ROWS} rows against "
                        f"production's {bench['production_ms']:.1f} ms ({bench['ratio']:.2f}x, the limit is "
                        f"{settings.deploy_benchmark_ratio}x)")
    return {"passed": not problems, "checks": checks, "reason": "; ".join(problems)}


def _benchmark(settings: Settings, candidate: registry.VersionInfo, production: registry.VersionInfo) -> dict[str, Any]:
    """Median time of both models on the same rows (the candidate's input example, repeated).

    Runs alternate between the two and native thread pools are held to one thread, as serving holds
    them, so a busy machine slows both alike instead of whichever ran second.
    """
    example = artifacts.read_document(settings.model_store_path, candidate.version_id, "input_example.json")
    records = (example * (_BENCHMARK_ROWS // max(1, len(example)) + 1))[:_BENCHMARK_ROWS]
    models = {}
    for role, info in (("candidate", candidate), ("production", production)):
        models[role] = (registry.load_version_model(settings, info), validate_records(info.feature_schema, records).frame)
    runs: dict[str, list[float]] = {"candidate": [], "production": []}
    with threadpool_limits(limits=1):
        for model, frame in models.values():
            model.predict(frame)  # warm
        for _ in range(_BENCHMARK_REPEATS):
            for role, (model, frame) in models.items():
                started = time.perf_counter()
                model.predict(frame)
                runs[role].append((time.perf_counter() - started) * 1000)
    timings = {role: float(np.median(values)) for role, values in runs.items()}
    return {"rows": _BENCHMARK_ROWS, "candidate_ms": timings["candidate"], "production_ms": timings["production"],
            "ratio": timings["candidate"] / max(timings["production"], 1e-6)}


# -- starting ------------------------------------------------------------------------------------
def start(settings: Settings, version_id: str, strategy: str, *, actor: Actor, options: dict[str, Any] | None = None,
          now: float | None = None) -> Deployment:
    """Run validation and testing for ``version_id``, then route traffic by ``strategy``.

    Refused while another deployment is active. A failed gate returns the deployment ``failed``.
    """
    actor.require_operator("starting a deployment")
    if strategy not in STRATEGIES:
        raise BadInputError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    options = options or {}
    weights = _weights(settings, options.get("weights"))
    opts = _options(settings, strategy, options)
    store = open_store(settings)
    registry.get_version(store, version_id)
    baseline = registry.alias_target(store, "production")
    if baseline is None:
        raise NotFoundError("nothing is in production yet; promote a first version before deploying another")
    if baseline == version_id:
        raise ConflictError(f"{version_id!r} is already production")
    current = active_deployment(settings)
    if current is not None:
        raise ConflictError(f"deployment {current.id} of {current.version_id} is {current.status}; "
                            "promote or abort it first")
    deployment_id = f"d-{uuid.uuid4().hex[:10]}"
    stages: dict[str, Any] = {}
    status, stage, reason = "running", "validation", ""
    stages["validation"] = _validation(settings, version_id)
    if not stages["validation"]["passed"]:
        status, reason = "failed", f"validation failed: {stages['validation']['reason']}"
    else:
        stage = "testing"
        stages["testing"] = _testing(settings, version_id, baseline)
        if not stages["testing"]["passed"]:
            status, reason = "failed", f"testing failed: {stages['testing']['reason']}"
    now = time.time() if now is None else now
    if status == "running":
        stage = "staging" if strategy == "shadow" else "production"
    with store.write() as conn:
        if conn.execute(select(deployments.c.id).where(deployments.c.status.in_(ACTIVE))).first() is not None:
            raise ConflictError("another deployment started meanwhile; nothing changed")
        conn.execute(insert(deployments).values(
            id=deployment_id, version_id=version_id, baseline_version=baseline, strategy=strategy, status=status,
            stage=stage, step=0, weights=json.dumps(weights), options=json.dumps(opts), failed_checks=0,
            created_by=str(actor), created_at=now, updated_at=now, step_started_at=now if status == "running" else None,
            ended_at=None if status == "running" else now, stages=json.dumps(stages), reason=reason))
        if status == "running" and strategy == "shadow":
            write_split(conn, Split(deployment_id, shadow=version_id, share=opts["shadow_share"]), now)
        elif status == "running" and strategy == "canary":
            write_split(conn, Split(deployment_id, candidate=version_id, weight=weights[0] / 100), now)
    if status == "running" and strategy == "canary" and registry.alias_target(store, "candidate") != version_id:
        registry.set_candidate(settings, version_id, actor, f"deployment {deployment_id}: canary of {version_id} "
                               f"against {baseline}", skip_preflight=True)
    if status == "running" and strategy == "blue-green":
        _switch(settings, deployment_id, version_id, actor,
                f"deployment {deployment_id}: blue-green switch from {baseline} to {version_id}", now,
                baseline_figures=_figures(store, baseline, now - opts["interval_seconds"], now, None))
    return get_deployment(settings, deployment_id)


def _switch(settings: Settings, deployment_id: str, to: str, actor: Actor, reason: str, now: float, *,
            back: bool = False, baseline_figures: dict[str, Any] | None = None) -> None:
    """Move production (ledgered) and keep the switch in the deployment's history."""
    store = open_store(settings)
    before = registry.alias_target(store, "production")
    if back:
        registry.rollback(settings, actor, reason, to=to, skip_preflight=True)
    else:
        registry.promote(settings, to, actor, reason)
    with store.write() as conn:
        conn.execute(insert(deployment_switches).values(deployment_id=deployment_id, at=now, from_version=before,
                                                        to_version=to, actor=str(actor), reason=reason))
        if baseline_figures is not None:
            row = conn.execute(select(deployments.c.stages).where(deployments.c.id == deployment_id)).one()
            stages = json.loads(row.stages)
            stages["production"] = {"baseline": baseline_figures}
            conn.execute(update(deployments).where(deployments.c.id == deployment_id).values(stages=json.dumps(stages)))


# -- steering ------------------------------------------------------------------------------------
def act(settings: Settings, deployment_id: str, action: str, *, actor: Actor, now: float | None = None) -> Deployment:
    """pause, resume, promote (now) or abort an active deployment."""
    if action not in ACTIONS:
        raise NotFoundError(f"unknown deployment action {action!r}; use {', '.join(ACTIONS)}")
    actor.require_operator(f"{action} of a deployment")
    now = time.time() if now is None else now
    found = get_deployment(settings, deployment_id)
    if found.status not in ACTIVE:
        raise ConflictError(f"deployment {deployment_id} has ended ({found.status}); nothing to {action}")
    if action == "pause":
        if found.status == "paused":
            raise ConflictError(f"deployment {deployment_id} is already paused")
        _update(settings, deployment_id, now, status="paused")
    elif action == "resume":
        if found.status == "running":
            raise ConflictError(f"deployment {deployment_id} is running, not paused")
        _update(settings, deployment_id, now, status="running", step_started_at=now)
    elif action == "promote":
        _promote(settings, found, actor, f"deployment {deployment_id}: promoted by {actor} before its analysis ended",
                 now)
    else:
        _roll_back(settings, found, actor, f"deployment {deployment_id}: aborted by {actor}", now, status="aborted")
    return get_deployment(settings, deployment_id)


def _update(settings: Settings, deployment_id: str, now: float, **values: Any) -> None:
    with open_store(settings).write() as conn:
        conn.execute(update(deployments).where(deployments.c.id == deployment_id).values(updated_at=now, **values))


def _end(settings: Settings, found: Deployment, status: str, reason: str, now: float) -> None:
    """Close the deployment and take its split out of serving, in one transaction."""
    with open_store(settings).write() as conn:
        conn.execute(update(deployments).where(deployments.c.id == found.id).values(
            status=status, stage="done", reason=reason, ended_at=now, updated_at=now))
        write_split(conn, NO_SPLIT, now)


def _promote(settings: Settings, found: Deployment, actor: Actor, reason: str, now: float) -> None:
    store = open_store(settings)
    if registry.alias_target(store, "production") != found.version_id:
        registry.promote(settings, found.version_id, actor, reason)
    _end(settings, found, "promoted", reason, now)


def _roll_back(settings: Settings, found: Deployment, actor: Actor, reason: str, now: float, *,
               status: str = "rolled_back") -> None:
    """Send every request back to the baseline, ledgered: switch production back (blue-green) or drop the candidate."""
    store = open_store(settings)
    _end(settings, found, status, reason, now)
    if found.strategy == "blue-green" and registry.alias_target(store, "production") == found.version_id:
        _switch(settings, found.id, found.baseline_version, actor, reason, now, back=True)
    elif registry.alias_target(store, "candidate") == found.version_id:
        registry.clear_candidate(settings, actor, reason, action="rollback")


# -- analysis ------------------------------------------------------------------------------------
def _figures(store: Any, version_id: str, start: float, end: float, deployment_id: str | None,
             role: str | None = None) -> dict[str, Any]:
    """Requests, p95, error rate and labelled accuracy of one version's API traffic in [start, end)."""
    query = select(predictions.c.latency_ms, predictions.c.status, predictions.c.request_rows,
                   predictions.c.prediction, predictions.c.label).where(
        predictions.c.version_id == version_id, predictions.c.source == "api",
        predictions.c.at >= start, predictions.c.at < end)
    if deployment_id is not None:
        query = query.where(predictions.c.deployment_id == deployment_id)
    if role is not None:
        query = query.where(predictions.c.role == role)
    with store.read() as conn:
        rows = conn.execute(query).all()
    latencies = [r.latency_ms for r in rows if r.request_rows]
    failed = sum(1 for r in rows if r.request_rows and r.status != "ok")
    labelled = [r for r in rows if r.label is not None and r.prediction is not None]
    right = sum(1 for r in labelled if _same_answer(r.prediction, r.label))
    return {
        "requests": len(latencies),
        "p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
        "error_rate": failed / len(latencies) if latencies else None,
        "labelled": len(labelled),
        "accuracy": right / len(labelled) if labelled else None,
    }


def _same_answer(prediction: str, label: str) -> bool:
    try:
        return json.loads(prediction) == json.loads(label)
    except (TypeError, ValueError):
        return str(prediction) == str(label)


def judge(candidate: dict[str, Any], production: dict[str, Any], options: dict[str, Any]) -> tuple[str, list[str]]:
    """A check's verdict ("pass", "fail" or "wait" for too little traffic) and what failed."""
    if candidate["requests"] < options["min_requests"] or not production["requests"]:
        return "wait", [f"{candidate['requests']} candidate request(s), {production['requests']} production; "
                        f"a check needs {options['min_requests']}"]
    problems = []
    limit = max(production["p95_ms"] * options["p95_ratio"], production["p95_ms"] + options["p95_slack_ms"])
    if candidate["p95_ms"] > limit:
        problems.append(f"p95 {candidate['p95_ms']:.1f} ms > {limit:.1f} ms (production {production['p95_ms']:.1f} ms)")
    error_limit = production["error_rate"] + options["error_margin"]
    if candidate["error_rate"] > error_limit:
        problems.append(f"error rate {candidate['error_rate']:.2%} > {error_limit:.2%}")
    if candidate["accuracy"] is not None and production["accuracy"] is not None:
        floor = production["accuracy"] - options["accuracy_drop"]
        if candidate["accuracy"] < floor:
            problems.append(f"accuracy {candidate['accuracy']:.3f} < {floor:.3f} (production {production['accuracy']:.3f})")
    return ("fail" if problems else "pass"), problems


def tick(settings: Settings, now: float | None = None) -> list[str]:
    """Advance every running deployment whose interval has passed; returns what happened, one line each."""
    now = time.time() if now is None else now
    found = active_deployment(settings)
    if found is None or found.status != "running":
        return []
    if found.strategy == "shadow":
        return _tick_shadow(settings, found, now)
    started = found.step_started_at or found.created_at
    last = max([started] + [a["at"] for a in found.analyses if a["step"] == found.step])
    if now - last < found.options["interval_seconds"]:
        return []
    store = open_store(settings)
    if found.strategy == "canary":
        candidate = _figures(store, found.version_id, last, now, found.id, CANDIDATE)
        production = _figures(store, found.baseline_version, last, now, found.id, PRODUCTION)
        if not production["requests"]:
            # At 100 % production answers nobody: judge against its figures from the last interval it served.
            earlier = [a["production"] for a in found.analyses if a["production"].get("requests")]
            if earlier:
                production = {**earlier[-1], "from_earlier_interval": True}
    else:  # blue-green: the new production against the baseline's interval before the switch
        candidate = _figures(store, found.version_id, last, now, None)
        baseline = found.stages.get("production", {}).get("baseline")
        # With no baseline traffic before the switch, only the new version's own traffic is judged.
        production = baseline if baseline and baseline["requests"] else candidate
    verdict, problems = judge(candidate, production, found.options)
    weight = found.weight if found.strategy == "canary" else 100.0
    with store.write() as conn:
        conn.execute(insert(deployment_analyses).values(
            deployment_id=found.id, at=now, step=found.step, weight=weight, passed=int(verdict == "pass"),
            figures=json.dumps({"verdict": verdict, "candidate": candidate, "production": production,
                                "problems": problems})))
    if verdict == "wait":
        return [f"{found.id}: waiting for traffic ({problems[0]})"]
    if verdict == "fail":
        failed = found.failed_checks + 1
        if failed >= found.options["failed_checks"]:
            reason = (f"deployment {found.id}: {found.strategy} of {found.version_id} rolled back after {failed} "
                      f"failed checks at {weight:g} %: {'; '.join(problems)}")
            _roll_back(settings, found, SYSTEM, reason, now)
            return [reason]
        _update(settings, found.id, now, failed_checks=failed)
        return [f"{found.id}: check failed ({failed}/{found.options['failed_checks']}): {'; '.join(problems)}"]
    step = found.step + 1
    if step >= len(found.weights):
        reason = (f"deployment {found.id}: {found.strategy} of {found.version_id} passed {step} checks "
                  f"({', '.join(f'{w:g} %' for w in found.weights)}); promoted")
        _promote(settings, found, SYSTEM, reason, now)
        return [reason]
    with store.write() as conn:
        conn.execute(update(deployments).where(deployments.c.id == found.id).values(
            step=step, step_started_at=now, updated_at=now))
        if found.strategy == "canary":
            write_split(conn, Split(found.id, candidate=found.version_id, weight=found.weights[step] / 100), now)
    return [f"{found.id}: step {step + 1}/{len(found.weights)}, weight {found.weights[step]:g} %"]


def _tick_shadow(settings: Settings, found: Deployment, now: float) -> list[str]:
    """Close the staging stage with its shadow report once it has run ``shadow_seconds``."""
    if "report" in found.stages.get("staging", {}) or now - found.created_at < found.options["shadow_seconds"]:
        return []
    report = shadow_report(settings, found.id)
    stages = dict(found.stages)
    stages["staging"] = {"passed": True, "report": report.to_dict(), "at": now}
    _update(settings, found.id, now, stages=json.dumps(stages))
    return [f"{found.id}: shadow staging done, agreement {report.agreement_rate}; waiting for promote or abort"]


class DeploymentTicker:
    """Runs :func:`tick` every ``deploy_tick_seconds`` in ``opscore serve``, on one replica at a time (a lease)."""

    LEASE = "deployment-ticker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opscore-deployments", daemon=True)
        self.last: list[str] = []

    def start(self) -> DeploymentTicker:
        self._thread.start()
        return self

    def run_once(self) -> list[str] | None:
        """Tick if this process holds (or takes) the lease; None when another replica does."""
        now = time.time()
        seconds = max(3 * self.settings.deploy_tick_seconds, 5.0)
        if not hold_lease(open_store(self.settings), self.LEASE, self.token, seconds, now):
            return None
        self.last = tick(self.settings, now)
        for line in self.last:
            log.info("%s", line)
        return self.last

    def _run(self) -> None:
        while not self._stop.wait(self.settings.deploy_tick_seconds):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - one failed tick must not stop the next
                log.exception("deployment tick failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        release_lease(open_store(self.settings), self.LEASE, self.token)
