"""Commands that serve and load a service: ``serve`` and ``simulate``."""

from __future__ import annotations

import argparse
import sys

from opscore.config import Settings
from opscore.exceptions import BadInputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the HTTP service: /predict, /feedback, /health, /metrics, registry routes")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-worker", action="store_true",
                   help="do not run the maintenance queue and schedules in this process (run `opscore worker` instead)")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("simulate", help="send realistic traffic (drift, bursts, malformed requests, delayed labels)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the running service")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    p.add_argument("--drift", choices=["none", "gradual", "sudden"], default="none",
                   help="population shift: ramps up from --drift-start (gradual) or jumps there (sudden)")
    p.add_argument("--drift-start", type=float, default=0.5, help="when the drift begins, as a share of the run")
    p.add_argument("--drift-strength", type=float, default=0.8, help="shift reached, 0-1 (default 0.8)")
    p.add_argument("--drift-features", help="comma-separated columns that drift (default: the whole population)")
    p.add_argument("--new-category-share", type=float, default=0.0,
                   help="share of drifted rows whose employment_type is a category the model never saw")
    p.add_argument("--malformed-share", type=float, default=0.0, help="share of requests that are malformed")
    p.add_argument("--burst-every", type=float, default=0.0, help="seconds between bursts (0: no bursts)")
    p.add_argument("--burst-size", type=int, default=50, help="requests sent at once in a burst")
    p.add_argument("--label-delay", type=float, default=5.0, help="seconds before a label is sent to /feedback")
    p.add_argument("--label-share", type=float, default=0.8, help="share of predictions that get a label")
    p.add_argument("--token", help="a token with the feedback scope, for labels (opscore tokens add NAME --scope "
                   "feedback); default: OPSCORE_ADMIN_TOKEN or the workspace's generated admin token")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_simulate)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.serving import http_api as service

    if not 0 < args.port < 65536:
        raise BadInputError(f"--port must be 1-65535, not {args.port}")
    if args.no_worker:
        from opscore.config import replace

        settings = replace(settings, serve_worker=False)
    print(f"opscore: serving on http://{args.host}:{args.port} (API docs at /docs); Ctrl-C stops",
          file=sys.stderr, flush=True)
    service.run(settings, args.host, args.port)
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from opscore.demo.simulate import TrafficPlan, simulate

    plan = TrafficPlan(
        rate=args.rate, duration=args.duration, drift=args.drift, drift_start=args.drift_start,
        drift_strength=args.drift_strength,
        drift_features=tuple(c.strip() for c in args.drift_features.split(",") if c.strip()) if args.drift_features else (),
        new_category_share=args.new_category_share, malformed_share=args.malformed_share,
        burst_every=args.burst_every, burst_size=args.burst_size, label_delay=args.label_delay,
        label_share=args.label_share, seed=settings.seed if args.seed is None else args.seed,
    )
    from opscore.access.tokens import local_admin_token

    token = args.token or local_admin_token(settings)
    bar = tqdm(total=round(plan.duration), desc="simulating", unit="s", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty())

    def progress(elapsed: float, report: object) -> None:
        bar.update(min(round(elapsed), bar.total) - bar.n)
        bar.set_postfix_str(str(report), refresh=False)

    try:
        report = simulate(args.url, plan, token=token, progress=progress)
    finally:
        bar.close()
    print(report.summary())
    return 0 if report.failed == 0 else 1
