"""Commands for a person at the workspace: ``demo`` builds one, ``dashboard`` opens it."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from opscore.config import Settings
from opscore.exceptions import BadInputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build a demo workspace through the real pipeline (a day of traffic, drift, labels)")
    p.add_argument("--fresh", action="store_true", help="rebuild a workspace that an earlier demo built")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_demo)

    # No options of its own (prefix "+" never occurs): every argument, --flags included, goes to streamlit run.
    p = sub.add_parser("dashboard", help="the operator dashboard (same as streamlit run dashboard.py)",
                       prefix_chars="+", add_help=False)
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, help="passed on to streamlit run")
    p.set_defaults(run=cmd_dashboard)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from opscore.cli.models import cli_actor
    from opscore.demo.workspace import build_demo

    bar = tqdm(total=100, desc="demo", file=sys.stderr, disable=args.quiet or not sys.stderr.isatty(),
               bar_format="{desc:<36} {percentage:3.0f}%|{bar}| {elapsed}")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(round(fraction * 100) - bar.n)

    try:
        outcome = build_demo(settings, cli_actor(), progress=progress, fresh=args.fresh)
    finally:
        bar.close()
    print(outcome.summary())
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    script = Path(__file__).resolve().parents[2] / "dashboard.py"
    if not script.is_file():
        raise BadInputError(f"dashboard.py is not next to the opscore package ({script}); run from a source checkout")
    from opscore.demo.live_traffic import demo_live_traffic, end_with_parent

    streamlit = [sys.executable, "-m", "streamlit", "run", str(script), *[a for a in args.streamlit_args if a != "--"]]
    with demo_live_traffic(settings, settings.demo_traffic_rate) as traffic:
        if traffic is None:
            os.execv(sys.executable, streamlit)  # nothing to look after: the dashboard becomes this process
        print(f"opscore: live demo traffic at {settings.demo_traffic_rate:g} request(s)/s through {traffic.url} "
              "(OPSCORE_DEMO_TRAFFIC_RATE=0 turns it off); it stops with the dashboard", file=sys.stderr, flush=True)
        dashboard = subprocess.Popen(streamlit, preexec_fn=end_with_parent if sys.platform == "linux" else None)
        # A terminated `opscore dashboard` takes its dashboard (and, leaving the block, the traffic) with it.
        signal.signal(signal.SIGTERM, lambda *_: dashboard.terminate())
        try:
            return dashboard.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the dashboard too; let it finish stopping
            return dashboard.wait()
