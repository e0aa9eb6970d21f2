"""Commands over the monitors: ``drift`` between two files, or of live traffic over a window."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from opscore.config import Settings
from opscore.data.datasets import read_csv_path
from opscore.exceptions import BadInputError
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.drift_report import DriftReport
from opscore.monitoring.file_drift import file_drift
from opscore.monitoring.live_drift import LiveDriftReport, live_drift, parse_window
from opscore.views.formatting import text_table

# The clock --window ends at (tests hand it a fixed moment).
now = time.time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="drift between two files, or of live traffic over a window")
    p.add_argument("--reference", help="CSV the model was trained on (or any baseline)")
    p.add_argument("--current", help="CSV to compare with it (same columns)")
    p.add_argument("--window", help="live traffic over the last 90m, 24h, 7d ... against the version's profile")
    p.add_argument("--version", help="with --window: the version whose traffic to check (default: production's)")
    p.add_argument("--json", action="store_true", help="one JSON object, as DESIGN.md specifies")
    p.set_defaults(run=cmd_drift)


def cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    if args.window is not None:
        if args.reference or args.current:
            raise BadInputError("use either --window (live traffic) or --reference with --current (two files)")
        end = now()
        live = live_drift(settings, end - parse_window(args.window), end, version=args.version)
        print(json.dumps(live.to_dict(), allow_nan=False) if args.json else render_live(live))
        return 0
    if args.version:
        raise BadInputError("--version goes with --window (live traffic of that version)")
    if not args.reference or not args.current:
        raise BadInputError("give --reference CSV and --current CSV, or --window 24h for live traffic")
    reference = read_csv_path(Path(args.reference))
    current = read_csv_path(Path(args.current))
    report = file_drift(reference, current, DriftOptions.from_settings(settings))
    print(json.dumps(report.to_dict(), allow_nan=False) if args.json else render(report))
    return 0


def render_live(live: LiveDriftReport) -> str:
    """A live report: which version and window, the file report's table, then prediction and multivariate drift."""
    span = f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(live.start))} to " \
           f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(live.end))} UTC"
    lines = [f"version {live.version}, {live.rows:,} logged rows from {span}"]
    if live.rows == 0:
        lines.append("no logged rows in this window: nothing to compare")
        return "\n".join(lines)
    lines.append(render(live.report))
    if live.prediction_drift is not None:
        p = live.prediction_drift
        lines.append(f"prediction drift: {p.test} {_figure(p.statistic)} (threshold {_figure(p.threshold)}): "
                     f"{'drifted' if p.drifted else 'no drift'}")
    m = live.multivariate
    if m and m.get("mean_error") is not None:
        lines.append(f"multivariate (PCA reconstruction error): {m['mean_error']:.4g}, band {m['lower']:.4g} to "
                     f"{m['upper']:.4g}: {'ALERT' if m['alert'] else 'within the band'}")
    return "\n".join(lines)


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
