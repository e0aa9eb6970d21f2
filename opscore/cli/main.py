"""The ``opscore`` command line: each command parses its arguments and makes one library call.

Exit codes: 0 success, 2 bad usage or bad input (one-line reason on stderr), 1 failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable

from opscore.cli import alerts as cli_alerts
from opscore.cli import backups as cli_backups
from opscore.cli import deploy as cli_deploy
from opscore.cli import health as cli_health
from opscore.cli import maintenance as cli_maintenance
from opscore.cli import models as cli_models
from opscore.cli import monitoring as cli_monitoring
from opscore.cli import scoring as cli_scoring
from opscore.cli import serving as cli_serving
from opscore.cli import tasks as cli_tasks
from opscore.cli import tokens as cli_tokens
from opscore.cli import workspace as cli_workspace
from opscore.config import Settings, load_settings
from opscore.exceptions import OpscoreError, StoreUnavailable

Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opscore", description="Operations console for ML models in production.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Each command group keeps its parser beside its commands.
    for group in (cli_models, cli_serving, cli_workspace, cli_scoring, cli_monitoring, cli_health, cli_tokens,
                  cli_backups, cli_alerts, cli_tasks, cli_maintenance, cli_deploy):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        settings = load_settings()
        return int(args.run(args, settings) or 0)
    except StoreUnavailable as exc:
        print(f"opscore: {exc}", file=sys.stderr)
        return 1
    except OpscoreError as exc:
        print(f"opscore: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"opscore: interrupted after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        print(f"opscore: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("OPSCORE_DEBUG"):
            traceback.print_exc()
        return 1
