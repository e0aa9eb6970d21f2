"""Planning procedures: monthly capacity planning and the quarterly maturity scorecard.

The plan and the scorecard live in ``operations/capacity.py`` and ``operations/maturity.py``; these turn
them into task results, with findings where the plan says the service will not keep up.
"""

from __future__ import annotations

from typing import Any

from opscore.config import Settings
from opscore.operations.capacity import plan_capacity
from opscore.operations.maturity import maturity_scorecard
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure


@procedure("capacity_planning", title="Capacity planning: pattern, growth, replicas for the p95 target",
           maintenance_set="monthly", estimated_seconds=20)
def capacity_planning(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    checkpoint("reading requests per hour and measuring the model", 0.0)
    plan = plan_capacity(settings, window_days=int(params.get("window_days", 28)),
                         horizon_days=int(params.get("horizon_days", 90)),
                         p95_target_ms=float(params.get("p95_target_ms", 200.0)), now=params.get("now"))
    replicas = int(params.get("replicas", 1))
    findings = []
    if plan.service is not None and plan.max_load_per_replica is None:
        findings.append(Finding(plan.notes[-1], "high", follow_up="adaptive"))
    elif plan.replicas_needed is not None and plan.replicas_needed > replicas:
        findings.append(Finding(
            f"{plan.replicas_needed} replicas are needed to keep p95 under {plan.p95_target_ms:.0f} ms at the "
            f"projected peak of {(plan.projected_peak_rps or plan.peak_rps):.1f} requests/s "
            f"({plan.replicas_needed_high or plan.replicas_needed} at the top of its band); {replicas} run now",
            "high" if plan.utilisation_at_peak and plan.utilisation_at_peak > replicas else "medium",
            follow_up="adaptive"))
    recommendations = list(plan.notes)
    if plan.service is not None:
        recommendations.append(
            f"one replica serves at most {plan.service.requests_per_second:.0f} requests/s of {plan.service.rows} "
            f"row(s) (production {plan.service.version_id}, {plan.service.seconds * 1000:.1f} ms per call measured "
            f"on this host)")
    return ProcedureResult(plan.figures(), findings, recommendations)


@procedure("maturity_scorecard", title="Maturity scorecard per area, with the next step", maintenance_set="quarterly",
           estimated_seconds=5)
def maturity(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    checkpoint("reading what the workspace does", 0.0)
    card = maturity_scorecard(settings, now=params.get("now"))
    return ProcedureResult(card.to_dict(), recommendations=[f"{a.area} ({a.level}): {a.next_step}" for a in card.areas
                                                            if a.level != "expert"])
