"""Commands over the monitors: ``drift`` between two files."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from opscore.config import Settings
from opscore.data.datasets import read_csv_path
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.drift_report import DriftReport
from opscore.monitoring.file_drift import file_drift
from opscore.views.formatting import text_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="drift report between a reference file and a current file")
    p.add_argument("--reference", required=True, help="CSV the model was trained on (or any baseline)")
    p.add_argument("--current", required=True, help="CSV to compare with it (same columns)")
    p.add_argument("--json", action="store_true", help="one JSON object, as DESIGN.md specifies")
    p.set_defaults(run=cmd_drift)


def cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    reference = read_csv_path(Path(args.reference))
    current = read_csv_path(Path(args.current))
    report = file_drift(reference, current, DriftOptions.from_settings(settings))
    print(json.dumps(report.to_dict(), allow_nan=False) if args.json else render(report))
    return 0


def _figure(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def render(report: DriftReport) -> str:
    """The report as an operator reads it in a terminal: the verdict, then one line per column."""
    drifted = sum(c.drifted for c in report.columns.values())
    verdict = "DATASET DRIFT" if report.dataset_drift else "no dataset drift"
    lines = [f"{verdict}: {drifted} of {len(report.columns)} columns drifted "
             f"(share {report.drift_share:.2f}, threshold {report.threshold_share:.2f})"]
    header = ["column", "type", "test", "statistic", "threshold", "p-value", "drifted", "missing ref/cur"]
    rows = []
    for name, column in report.columns.items():
        rows.append([name, column.kind, column.test, _figure(column.statistic), _figure(column.threshold),
                     _figure(column.p_value), "yes" if column.drifted else "no",
                     f"{column.missing_share_reference:.1%}/{column.missing_share_current:.1%}"])
    lines.append(text_table(rows, header))
    notes = [f"{name}: {c.reason}" for name, c in report.columns.items() if c.reason]
    notes += [f"{name}: unseen categories {', '.join(map(str, c.unseen_categories))}"
              for name, c in report.columns.items() if c.unseen_categories]
    return "\n".join(lines + notes)
