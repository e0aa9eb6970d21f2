"""``opscore health``: the five health checks, as a summary or as the JSON the HTTP service answers."""

from __future__ import annotations

import argparse
import json

from opscore.config import Settings
from opscore.monitoring.health import HealthReport, health_report
from opscore.monitoring.live_drift import parse_window


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="the five health checks: performance, data quality, model accuracy, "
                                      "infrastructure, cost efficiency")
    p.add_argument("--window", default="24h", help="how far back the checks read traffic (e.g. 1h, 24h, 7d)")
    p.add_argument("--json", action="store_true", help="one JSON object: overall, checked_at, checks")
    p.set_defaults(run=cmd_health)


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    report = health_report(settings, window=parse_window(args.window))
    print(json.dumps(report.to_dict(), allow_nan=False) if args.json else render(report))
    return 0


def render(report: HealthReport) -> str:
    """The overall status, then per check its status, its issues and what to do."""
    lines = [f"overall: {report.overall.upper()}"]
    for name, check in report.checks.items():
        lines.append(f"{name:<16} {check.status}")
        lines += [f"  - {issue}" for issue in check.issues]
        lines += [f"  > {advice}" for advice in check.recommendations]
    return "\n".join(lines)
