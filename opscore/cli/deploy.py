"""Safe rollouts from the command line: ``opscore deploy start|status|pause|resume|promote|abort``."""

from __future__ import annotations

import argparse
import json
import time

from opscore.cli.models import cli_actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, NotFoundError
from opscore.rollout import deployments
from opscore.rollout.deployments import Deployment
from opscore.views.formatting import text_table, when


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="safe rollouts: start a shadow, canary or blue-green deployment and steer it")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    a = actions.add_parser("start", help="validate and test a version, then route traffic to it by a strategy")
    a.add_argument("version")
    a.add_argument("--strategy", required=True, choices=deployments.STRATEGIES)
    a.add_argument("--weights", metavar="5,25,50,100", help="canary steps in percent (default: deploy_weights)")
    a.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="override a deploy_* setting for this deployment, e.g. interval_seconds=30; repeatable")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_start)

    a = actions.add_parser("status", help="the active deployment (or the one named) and the latest ones")
    a.add_argument("id", nargs="?")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_status)

    for action, text in (("pause", "halt the analysis, keeping the traffic split"),
                         ("resume", "start the current step's interval again"),
                         ("promote", "make the candidate production now"),
                         ("abort", "send every request back to production")):
        a = actions.add_parser(action, help=text)
        a.add_argument("id", nargs="?", help="default: the active deployment")
        a.add_argument("--json", action="store_true")
        a.set_defaults(run=cmd_act, deploy_action=action)


def _options(args: argparse.Namespace) -> dict:
    options: dict = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadInputError(f"--option {item!r}: expected NAME=VALUE, e.g. interval_seconds=30")
        options[name.strip()] = value.strip()
    if args.weights:
        options["weights"] = [w for w in args.weights.split(",") if w.strip()]
    return options


def _print(found: Deployment, as_json: bool) -> None:
    if as_json:
        print(json.dumps(found.to_dict()))
        return
    now = time.time()
    line = f"deployment {found.id}: {found.strategy} of {found.version_id} against {found.baseline_version}, {found.status}"
    line += f", stage {found.stage}"
    if found.strategy == "canary" and found.stage == "production":
        line += f", step {found.step + 1}/{len(found.weights)} at {found.weight:g} %"
    left = found.seconds_to_promotion(now)
    if left is not None:
        line += f", promotion in {left:.0f} s if every check passes"
    print(line)
    for stage, result in found.stages.items():
        print(f"  {stage}: {'passed' if result.get('passed', True) else 'failed'}"
              + (f" ({result['reason']})" if result.get("reason") else ""))
    for analysis in found.analyses[-10:]:
        print(f"  check at {when(analysis['at'])}, {analysis['weight']:g} %: {analysis['verdict']}"
              + (f" ({'; '.join(analysis['problems'])})" if analysis["problems"] else ""))
    if found.reason:
        print(f"  {found.reason}")


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    found = deployments.start(settings, args.version, args.strategy, actor=cli_actor(), options=_options(args))
    _print(found, args.json)
    return 0 if found.status != "failed" else 1


def _target(settings: Settings, given: str | None) -> str:
    if given:
        return given
    active = deployments.active_deployment(settings)
    if active is None:
        raise NotFoundError("no deployment is active; name one (opscore deploy status lists them)")
    return active.id


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    if args.id:
        _print(deployments.get_deployment(settings, args.id), args.json)
        return 0
    active = deployments.active_deployment(settings)
    recent = deployments.list_deployments(settings, limit=10)
    if args.json:
        print(json.dumps({"active": active.to_dict() if active else None, "deployments": [d.to_dict() for d in recent]}))
        return 0
    if active is not None:
        _print(active, False)
    else:
        print("no deployment is active")
    rows = [[d.id, d.strategy, d.version_id, d.baseline_version or "-", d.status, when(d.created_at), d.reason]
            for d in recent]
    if rows:
        print(text_table(rows, ["id", "strategy", "version", "baseline", "status", "started", "outcome"]))
    return 0


def cmd_act(args: argparse.Namespace, settings: Settings) -> int:
    found = deployments.act(settings, _target(settings, args.id), args.deploy_action, actor=cli_actor())
    _print(found, args.json)
    return 0
