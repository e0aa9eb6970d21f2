"""One evaluator at a time across replicas: the lease row decides, and lapses."""

from __future__ import annotations

from opscore.config import Settings, replace
from opscore.operations.alert_evaluator import LEASE_NAME, AlertEvaluator, hold_lease, release_lease
from opscore.store import open_store

T0 = 1_800_000_000.0


def test_only_the_lease_holder_evaluates_until_its_lease_lapses(any_workspace: Settings) -> None:
    settings = replace(any_workspace, alert_evaluation_seconds=30)
    clock = [T0]
    first = AlertEvaluator(settings, clock=lambda: clock[0])
    second = AlertEvaluator(settings, clock=lambda: clock[0])
    assert first.run_once() is not None
    assert second.run_once() is None  # first holds the lease for 3 intervals
    clock[0] += 60
    assert first.run_once() is not None and second.run_once() is None  # renewed
    clock[0] += 91
    evaluation = second.run_once()  # first stopped renewing: its lease lapsed
    assert evaluation is not None and evaluation.at == T0 + 151 and evaluation.rules > 0
    assert first.run_once() is None


def test_a_released_lease_is_free_at_once(any_workspace: Settings) -> None:
    store = open_store(any_workspace)
    assert hold_lease(store, LEASE_NAME, "a", 90, T0)
    assert not hold_lease(store, LEASE_NAME, "b", 90, T0 + 1)
    release_lease(store, LEASE_NAME, "a")
    assert hold_lease(store, LEASE_NAME, "b", 90, T0 + 2)
