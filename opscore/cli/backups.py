"""Commands over backups: ``backup --to DIR`` and ``restore --from DIR [--force]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opscore.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="consistent copy of the store and the model store, with sha256 checksums")
    p.add_argument("--to", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup after checking its checksums")
    p.add_argument("--from", dest="source", required=True, metavar="DIR", help="a folder written by opscore backup")
    p.add_argument("--force", action="store_true",
                   help="replace a workspace that already holds versions or predictions (its model store is moved aside)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_restore)


def _bar(desc: str, quiet: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, file=sys.stderr, disable=quiet or not sys.stderr.isatty(),
               bar_format="{desc:<28} {percentage:3.0f}%|{bar}| {elapsed}")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(round(fraction * 100) - bar.n)

    return bar, progress


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.cli.models import cli_actor
    from opscore.operations.backup import backup

    bar, progress = _bar("backup", args.quiet)
    try:
        manifest = backup(settings, Path(args.to), cli_actor(), progress=progress)
    finally:
        bar.close()
    print(f"backup written to {manifest.folder}: {manifest.summary()}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.cli.models import cli_actor
    from opscore.operations.backup import restore

    bar, progress = _bar("restore", args.quiet)
    try:
        outcome = restore(settings, Path(args.source), cli_actor(), force=args.force, progress=progress)
    finally:
        bar.close()
    print(outcome.summary())
    return 0
