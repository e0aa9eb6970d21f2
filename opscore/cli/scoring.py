"""``opscore predict``: score a CSV file with the production version, logged like API traffic."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

import pandas as pd

from opscore.config import Settings
from opscore.exceptions import BadInputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score a CSV with the production version (every row logged)")
    p.add_argument("--input", required=True, help="CSV with the model's feature columns")
    p.add_argument("--output", help="where to write the scored CSV (default: <input stem>.predictions.csv)")
    p.add_argument("--errors", help="also write the per-row problems to this CSV (row, line, column, problem)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_predict)


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from opscore.data.datasets import read_csv_path
    from opscore.serving.predictor import score_frame
    from opscore.serving.telemetry_writer import TelemetryWriter

    source = Path(args.input)
    output = Path(args.output) if args.output else source.with_name(f"{source.stem}.predictions.csv")
    errors_path = Path(args.errors) if args.errors else None
    for path in filter(None, [output, errors_path]):
        if path.resolve() == source.resolve():
            raise BadInputError(f"{path} is the input file; choose another output name")
    frame = read_csv_path(source)
    writer = TelemetryWriter(settings).start() if settings.telemetry else None
    bar = tqdm(total=len(frame), desc="scoring", unit="row", file=sys.stderr, disable=args.quiet or None)
    try:
        result = score_frame(settings, frame, source="batch", telemetry=writer,
                             progress=lambda done, _total: bar.update(done - bar.n))
    finally:
        bar.close()
        logged = writer.close(timeout=60) if writer is not None else True
    _write_atomically(result.frame, output)
    if errors_path is not None:
        problems = pd.DataFrame(
            [(p.row, None if p.row is None else p.row + 2, p.column, p.message) for p in result.errors],
            columns=["row", "line", "column", "problem"],
        )
        _write_atomically(problems, errors_path)
    for warning in result.warnings[:5]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(result.warnings) > 5:
        print(f"warning: … and {len(result.warnings) - 5} more", file=sys.stderr)
    if result.failed:
        print(f"{result.failed} row(s) not scored (first: {result.errors[0]}); see the error column",
              file=sys.stderr)
    print(f"{result.summary()} -> {output}")
    if not logged:
        stats = writer.stats
        print(f"opscore: {stats.backlog} prediction(s) could not be logged: {stats.last_error}", file=sys.stderr)
        return 1
    return 0


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV so a reader never sees half a file: temporary name beside it, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            frame.to_csv(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
