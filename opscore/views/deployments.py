"""What the Deployments page shows: the active deployment, its analyses against their thresholds, the history."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from opscore.config import Settings
from opscore.models import registry
from opscore.rollout import deployments
from opscore.rollout.deployments import Deployment
from opscore.rollout.shadow_report import shadow_report
from opscore.store import open_store
from opscore.views.plots import empty_figure

TITLE = "Analyses: the candidate's p95 against the limit it had to stay under"
VERDICT_COLOURS = {"pass": "#009E73", "fail": "#D55E00", "wait": "#999999"}


@dataclass
class DeploymentsView:
    """The page in one call: production, the versions one may deploy, the active deployment, the history."""

    production: str | None
    deployable: list[str]
    active: Deployment | None
    history: pd.DataFrame
    report: dict[str, Any] | None = None
    stage_checks: dict[str, pd.DataFrame] = field(default_factory=dict)


def deployments_view(settings: Settings) -> DeploymentsView:
    store = open_store(settings)
    production = registry.alias_target(store, "production")
    deployable = [v.version_id for v in registry.list_versions(store) if v.version_id != production]
    active = deployments.active_deployment(settings)
    rows = [{"id": d.id, "strategy": d.strategy, "version": d.version_id, "baseline": d.baseline_version,
             "status": d.status, "started": pd.Timestamp(d.created_at, unit="s", tz="UTC"),
             "ended": pd.Timestamp(d.ended_at, unit="s", tz="UTC") if d.ended_at else None, "outcome": d.reason}
            for d in deployments.list_deployments(settings, limit=50)]
    history = pd.DataFrame(rows, columns=["id", "strategy", "version", "baseline", "status", "started", "ended",
                                          "outcome"])
    view = DeploymentsView(production, deployable, active, history)
    if active is not None:
        view.stage_checks = {stage: _checks(result) for stage, result in active.stages.items() if "checks" in result}
        if active.strategy == "shadow":
            view.report = shadow_report(settings, active.id).to_dict()
    return view


def _checks(result: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"check": c["name"], "passed": c["passed"],
                          "detail": c.get("detail") or ", ".join(f"{k} {v:.4g}" for k, v in c.items()
                                                                 if isinstance(v, float))}
                         for c in result["checks"]], columns=["check", "passed", "detail"])


def progress_line(found: Deployment, now: float | None = None) -> str:
    """Where the deployment is, in one line: step and weight, and the time to promotion if every check passes."""
    now = time.time() if now is None else now
    parts = [f"{found.strategy} of {found.version_id} against {found.baseline_version}", found.status,
             f"stage {found.stage}"]
    if found.strategy == "canary" and found.stage == "production":
        parts.append(f"step {found.step + 1} of {len(found.weights)} at {found.weight:g} %")
    left = found.seconds_to_promotion(now)
    if left is not None:
        parts.append(f"promotion in {left:.0f} s if every check passes")
    parts.append(f"{found.failed_checks} of {found.options['failed_checks']} failed checks before a rollback")
    return " · ".join(parts)


def analysis_figure(found: Deployment) -> go.Figure:
    """Each analysis: the candidate's p95 against the limit it had to stay under, and production's p95."""
    points = [a for a in found.analyses if a["candidate"].get("p95_ms") is not None
              and a["production"].get("p95_ms") is not None]
    if not points:
        return empty_figure(TITLE, "No analysis with traffic yet", "time", "ms")
    at = [pd.Timestamp(a["at"], unit="s", tz="UTC") for a in points]
    options = found.options
    limits = [max(a["production"]["p95_ms"] * options["p95_ratio"], a["production"]["p95_ms"] + options["p95_slack_ms"])
              for a in points]
    figure = go.Figure()
    figure.add_scatter(x=at, y=[a["production"]["p95_ms"] for a in points], name="production p95", mode="lines+markers",
                       line={"color": "#0072B2"})
    figure.add_scatter(x=at, y=limits, name="limit", mode="lines", line={"color": "#D55E00", "dash": "dash"})
    figure.add_scatter(x=at, y=[a["candidate"]["p95_ms"] for a in points], name="candidate p95", mode="markers",
                       marker={"size": 11, "color": [VERDICT_COLOURS[a["verdict"]] for a in points]},
                       text=[f"{a['weight']:g} %: {a['verdict']}" for a in points], hovertemplate="%{text}<br>%{y:.1f} ms")
    figure.update_layout(title=TITLE, yaxis_title="ms",
                         margin={"t": 40, "b": 30})
    return figure
