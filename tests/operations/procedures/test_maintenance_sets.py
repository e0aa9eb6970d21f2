"""Every procedure of every maintenance set runs on a served workspace and returns a result the queue can keep."""

from __future__ import annotations

import json

import pytest

from opscore.operations.procedures import MAINTENANCE_SETS, ProcedureResult, procedures_in


@pytest.mark.parametrize("maintenance_set", MAINTENANCE_SETS)
def test_each_set_runs_and_its_results_survive_json(served, maintenance_set):
    notes = []
    for procedure in procedures_in(maintenance_set):
        result = procedure.run(served, {}, lambda note="", progress=None: notes.append((note, progress)))
        kept = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert ProcedureResult.from_dict(kept).findings == result.findings, procedure.name
    assert notes and all(p is None or 0 <= p <= 1 for _, p in notes)


def test_the_sets_hold_what_the_maintenance_plan_names():
    names = {s: {p.name for p in procedures_in(s)} for s in MAINTENANCE_SETS}
    assert {"cleanup", "performance_trend"} <= names["daily"]
    assert {"accuracy_and_drift", "infrastructure_review", "security_audit", "verified_backup"} <= names["weekly"]
    assert {"comprehensive_evaluation", "cost_analysis", "capacity_planning", "archive_candidates"} <= names["monthly"]
    assert {"stack_review", "maturity_scorecard", "restore_drill"} <= names["quarterly"]
