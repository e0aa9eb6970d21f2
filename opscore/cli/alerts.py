"""Alerts from the command line: ``opscore alerts list|evaluate|ack ID|silence``."""

from __future__ import annotations

import argparse
import json
import time

from opscore.cli.models import cli_actor
from opscore.config import Settings
from opscore.operations import alerts
from opscore.operations.alert_evaluator import evaluate_once
from opscore.views.formatting import text_table, when


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="the alert evaluator and lifecycle: list, evaluate, ack, silence")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    a = actions.add_parser("list", help="alerts, newest first")
    a.add_argument("--state", choices=alerts.STATES)
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_list)

    a = actions.add_parser("evaluate", help="evaluate every rule once now, notify and escalate")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_evaluate)

    a = actions.add_parser("ack", help="acknowledge an alert: it stops escalating and repeating")
    a.add_argument("id", type=int)
    a.set_defaults(run=cmd_ack)

    a = actions.add_parser("silence", help="mute alerts matching every --matcher until --until")
    a.add_argument("--matcher", action="append", required=True, metavar="KEY=VALUE",
                   help="a label, rule or severity the alert must have (repeatable)")
    a.add_argument("--author", required=True)
    a.add_argument("--comment", required=True)
    a.add_argument("--until", required=True, metavar="TIME", help="2h (from now) or 2026-12-02T18:00 (UTC)")
    a.set_defaults(run=cmd_silence)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    found = alerts.list_alerts(settings, state=args.state, limit=args.limit)
    if args.json:
        print(json.dumps(found))
        return 0
    rows = [[str(a["id"]), a["state"], a["severity"], a["rule"], ",".join(f"{k}={v}" for k, v in a["labels"].items()),
             when(a["started_at"]), a["acknowledged_by"] or "-", a["summary"]] for a in found]
    print(text_table(rows, ["id", "state", "severity", "rule", "labels", "since", "acknowledged", "summary"])
          if rows else "no alerts")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    result = evaluate_once(settings)
    if args.json:
        print(json.dumps({"at": result.at, "rules": result.rules, "changes": result.changes,
                          "deliveries": result.deliveries, "open": result.states, "tasks": result.tasks}))
        return 0
    print(f"{result.rules} rules evaluated at {when(result.at)}; {len(result.changes)} state change(s), "
          f"{result.deliveries} delivery(ies); open: "
          + (", ".join(f"{n} {state}" for state, n in sorted(result.states.items())) or "none"))
    for change in result.changes:
        print(f"  {change}")
    for task_id in result.tasks:
        print(f"  opened maintenance task {task_id}")
    return 0


def cmd_ack(args: argparse.Namespace, settings: Settings) -> int:
    alert = alerts.acknowledge(settings, args.id, actor=cli_actor())
    print(f"alert #{alert['id']} ({alert['rule']}) acknowledged by {alert['acknowledged_by']}")
    return 0


def cmd_silence(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    silence = alerts.create_silence(settings, matchers=alerts.parse_matchers(args.matcher), author=args.author,
                                    comment=args.comment, ends_at=alerts.silence_end(args.until, now),
                                    actor=cli_actor(), now=now)
    print(f"silence #{silence['id']} until {when(silence['ends_at'])}: "
          + ", ".join(f"{k}={v}" for k, v in silence["matchers"].items()))
    return 0
