"""The pipeline's gates and an operator's steering, without a server: each decision is kept with its figures."""

from __future__ import annotations

import pytest

from opscore.access.actors import Actor
from opscore.config import replace
from opscore.exceptions import BadInputError, ConflictError, NotFoundError, PermissionDenied
from opscore.models import registry
from opscore.rollout import deployments
from opscore.rollout.routing import read_split
from opscore.store import open_store

VIEWER = Actor("someone", "viewer", "dashboard")


@pytest.fixture
def trained(trained):
    """The fixture's v2 is trained on another sample of 1,500 rows and scores a few points below v1 on its
    holdout; these tests steer deployments, so its testing gate allows that."""
    return replace(trained, deploy_holdout_tolerance=0.2, deploy_benchmark_ratio=10.0)


def test_a_canary_starts_after_both_gates_with_its_first_weight(trained, operator):
    found = deployments.start(trained, "v2", "canary", actor=operator, options={"weights": [10, 100]})
    assert (found.status, found.stage, found.weight) == ("running", "production", 10.0)
    assert found.stages["validation"]["passed"] and found.stages["testing"]["passed"]
    names = [c["name"] for c in found.stages["validation"]["checks"]]
    assert {"checksum", "loads", "predicts example", "schema compatible"} <= set(names)
    bench = next(c for c in found.stages["testing"]["checks"] if c["name"] == "latency benchmark")
    assert bench["candidate_ms"] > 0 and bench["production_ms"] > 0
    split, generation = read_split(open_store(trained))
    assert (split.deployment_id, split.candidate, split.weight, generation) == (found.id, "v2", 0.1, 1)


def test_a_failed_gate_ends_the_deployment_with_its_reason_and_routes_nothing(trained, operator):
    strict = replace(trained, deploy_benchmark_ratio=1e-6)
    found = deployments.start(strict, "v2", "canary", actor=operator)
    assert found.status == "failed" and found.stage == "testing"
    assert found.reason.startswith("testing failed") and "ms for 200 rows" in found.reason
    assert not next(c for c in found.stages["testing"]["checks"] if c["name"] == "latency benchmark")["passed"]
    assert read_split(open_store(trained))[1] == 0
    assert deployments.active_deployment(trained) is None


def test_pause_resume_and_abort(trained, operator):
    found = deployments.start(trained, "v2", "canary", actor=operator)
    with pytest.raises(ConflictError, match="promote or abort it first"):
        deployments.start(trained, "v2", "shadow", actor=operator)
    paused = deployments.act(trained, found.id, "pause", actor=operator)
    assert paused.status == "paused"
    assert deployments.tick(trained, now=found.created_at + 10_000) == []
    assert deployments.act(trained, found.id, "resume", actor=operator).status == "running"
    aborted = deployments.act(trained, found.id, "abort", actor=operator)
    assert aborted.status == "aborted" and aborted.weight == 0
    assert read_split(open_store(trained))[0].deployment_id is None
    entry = registry.ledger_entries(open_store(trained), alias="candidate", limit=1)[0]
    assert entry.action == "rollback" and found.id in entry.reason
    with pytest.raises(ConflictError, match="has ended"):
        deployments.act(trained, found.id, "resume", actor=operator)


def test_promote_now_moves_production_ledgered_with_the_deployment(trained, operator):
    found = deployments.start(trained, "v2", "shadow", actor=operator)
    promoted = deployments.act(trained, found.id, "promote", actor=operator)
    assert promoted.status == "promoted"
    entry = registry.ledger_entries(open_store(trained), alias="production", limit=1)[0]
    assert entry.to_version == "v2" and found.id in entry.reason


def test_blue_green_switches_at_once_and_back_on_abort(trained, operator):
    found = deployments.start(trained, "v2", "blue-green", actor=operator)
    store = open_store(trained)
    assert registry.alias_target(store, "production") == "v2"
    aborted = deployments.act(trained, found.id, "abort", actor=operator)
    assert registry.alias_target(store, "production") == "v1"
    assert [(s["from_version"], s["to_version"]) for s in aborted.switches] == [("v1", "v2"), ("v2", "v1")]
    actions = [e.action for e in registry.ledger_entries(store, alias="production", limit=2)]
    assert actions == ["rollback", "promote"]


@pytest.mark.parametrize(("options", "message"), [
    ({"weights": [50, 25, 100]}, "weights must rise"),
    ({"weights": [5, 50]}, "weights must rise"),
    ({"interval": 3}, "unknown deployment option"),
    ({"failed_checks": "many"}, "expected a number"),
])
def test_bad_options_are_refused_before_anything_runs(trained, operator, options, message):
    with pytest.raises(BadInputError, match=message):
        deployments.start(trained, "v2", "canary", actor=operator, options=options)
    assert deployments.list_deployments(trained) == []


def test_refusals(trained, operator):
    with pytest.raises(BadInputError, match="strategy"):
        deployments.start(trained, "v2", "linear", actor=operator)
    with pytest.raises(ConflictError, match="already production"):
        deployments.start(trained, "v1", "canary", actor=operator)
    with pytest.raises(NotFoundError):
        deployments.start(trained, "v9", "canary", actor=operator)
    with pytest.raises(PermissionDenied):
        deployments.start(trained, "v2", "canary", actor=VIEWER)
    with pytest.raises(NotFoundError, match="unknown deployment action"):
        deployments.act(trained, "d-x", "explode", actor=operator)


def test_judge_compares_against_production_over_the_same_interval():
    options = {"min_requests": 5, "p95_ratio": 1.5, "p95_slack_ms": 10.0, "error_margin": 0.01, "accuracy_drop": 0.05}
    production = {"requests": 100, "p95_ms": 40.0, "error_rate": 0.0, "accuracy": 0.9}
    assert deployments.judge({"requests": 50, "p95_ms": 59.0, "error_rate": 0.0, "accuracy": 0.88}, production,
                             options) == ("pass", [])
    verdict, problems = deployments.judge({"requests": 50, "p95_ms": 61.0, "error_rate": 0.05, "accuracy": 0.8},
                                          production, options)
    assert verdict == "fail" and len(problems) == 3
    assert deployments.judge({"requests": 2, "p95_ms": 500.0, "error_rate": 1.0, "accuracy": None}, production,
                             options)[0] == "wait"
