"""The maintenance queue from the command line: ``opscore tasks list|show|add|run|cancel|retry`` and ``opscore worker``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from opscore.cli.models import cli_actor
from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.operations.procedures import TASK_TYPES
from opscore.operations.tasks import PRIORITIES, STATUSES, Task
from opscore.views.formatting import duration, text_table, when


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="the maintenance queue: list, show, add, run, cancel, retry")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    a = actions.add_parser("list", help="tasks in queue order (priority, then due time), then ended ones")
    a.add_argument("--status", choices=STATUSES)
    a.add_argument("--type", choices=TASK_TYPES)
    a.add_argument("--priority", choices=PRIORITIES)
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_list)

    a = actions.add_parser("show", help="one task with its attempts and result")
    a.add_argument("id")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_show)

    a = actions.add_parser("add", help="queue a task running a registered procedure")
    a.add_argument("procedure", help="a procedure name (opscore tasks add --list shows them)")
    a.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter (VALUE read as JSON when it parses, else as text); repeatable")
    a.add_argument("--title")
    a.add_argument("--type", choices=TASK_TYPES)
    a.add_argument("--priority", choices=PRIORITIES, default="medium")
    a.add_argument("--due", metavar="TIME", help="now, a delay (30m, 2h, 1d) or a time like 2026-12-02T18:00 (UTC); default now")
    a.add_argument("--depends-on", action="append", default=[], metavar="ID")
    a.add_argument("--max-attempts", type=int)
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_add)

    a = actions.add_parser("run", help="run a queued task now, in this process, with progress")
    a.add_argument("id")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_run)

    for name, helptext in (("cancel", "cancel a queued task, or stop a running one at its next checkpoint"),
                           ("retry", "queue a failed, cancelled or upstream_failed task again")):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("id")
        a.set_defaults(run=cmd_cancel if name == "cancel" else cmd_retry)

    p = sub.add_parser("worker", help="run the maintenance queue, the schedules and the alert evaluator")
    p.add_argument("--once", action="store_true", help="run every due task once, then exit")
    p.add_argument("--poll", type=float, help="seconds between looks at an empty queue (default: worker_poll_seconds)")
    p.add_argument("--no-schedules", action="store_true", help="do not fire the maintenance schedules")
    p.add_argument("--no-alerts", action="store_true", help="do not run the alert evaluator")
    p.set_defaults(run=cmd_worker)


def _params(pairs: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"--param must read KEY=VALUE, got {pair!r}")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def _rows(found: list[Task]) -> str:
    rows = [[t.id, t.status, t.priority, t.type, t.title[:48], when(t.due_at, "%m-%d %H:%M"),
             str(len(t.attempts)), t.created_by] for t in found]
    return text_table(rows, ["id", "status", "priority", "type", "title", "due (UTC)", "attempts", "created by"])


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.tasks import list_tasks

    found = list_tasks(settings, status=args.status, type=args.type, priority=args.priority, limit=args.limit)
    if args.json:
        print(json.dumps([t.to_dict() for t in found]))
    else:
        print(_rows(found) if found else "no tasks")
    return 0


def describe(task: Task) -> str:
    """A task as an operator reads it: what, why, every attempt and what it found."""
    lines = [f"task {task.id}: {task.title}",
             f"  {task.status} · {task.priority} · {task.type} · runs {task.procedure} "
             f"{json.dumps(task.params, sort_keys=True)}",
             f"  due {when(task.due_at)} · created by {task.created_by} ({task.cause.kind}: {task.cause.summary})",
             f"  estimated {duration(task.estimated_seconds)}"
             + (f", took {duration(task.actual_seconds)}" if task.actual_seconds is not None else "")]
    if task.depends_on:
        lines.append(f"  depends on {', '.join(task.depends_on)}")
    for a in task.attempts:
        took = f"{a.ended_at - a.started_at:.1f} s" if a.ended_at is not None else "running"
        lines.append(f"  attempt {a.number} by {a.worker}: {a.outcome or 'running'} ({took})"
                     + (f" — {a.error}" if a.error else ""))
    if task.note:
        lines.append(f"  note: {task.note}")
    if task.result:
        for key, value in task.result.get("figures", {}).items():
            lines.append(f"  {key}: {json.dumps(value) if isinstance(value, dict | list) else value}")
        for finding in task.result.get("findings", []):
            follow = f" -> {finding['follow_up']} task" if finding.get("follow_up") else ""
            lines.append(f"  finding [{finding['severity']}] {finding['summary']}{follow}")
        for rec in task.result.get("recommendations", []):
            lines.append(f"  recommendation: {rec}")
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.tasks import get_task

    task = get_task(settings, args.id)
    print(json.dumps(task.to_dict()) if args.json else describe(task))
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.tasks import create_task, due_time

    now = time.time()
    task = create_task(settings, procedure=args.procedure, params=_params(args.param), title=args.title,
                       type=args.type, priority=args.priority,
                       due_at=due_time(args.due, now) if args.due else None, depends_on=args.depends_on,
                       actor=cli_actor(), max_attempts=args.max_attempts, now=now)
    print(json.dumps(task.to_dict()) if args.json else f"task {task.id} queued: {task.title} ({task.priority}, "
          f"due {when(task.due_at)})")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from opscore.operations.worker import execute_task

    bar = tqdm(total=100, desc=args.id, file=sys.stderr, disable=args.json or not sys.stderr.isatty(),
               bar_format="{desc:<40} {percentage:3.0f}%|{bar}| {elapsed}")

    def progress(note: str, fraction: float | None) -> None:
        bar.set_description(note[:40] or args.id)
        if fraction is not None:
            bar.update(round(fraction * 100) - bar.n)

    try:
        task = execute_task(settings, args.id, progress=progress, actor=cli_actor())
    finally:
        bar.close()
    print(json.dumps(task.to_dict()) if args.json else describe(task))
    return 0 if task.status in ("success", "skipped") else 1


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.tasks import cancel_task

    task = cancel_task(settings, args.id, actor=cli_actor())
    print(f"task {task.id}: {'cancelled' if task.status == 'cancelled' else 'stops at its next checkpoint'}")
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.tasks import retry_task

    task = retry_task(settings, args.id, actor=cli_actor())
    print(f"task {task.id} queued again, due {when(task.due_at)}")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.alert_evaluator import AlertEvaluator
    from opscore.operations.worker import new_worker_id, run_worker, tick_hooks

    stop = threading.Event()
    hooks = tick_hooks(settings, schedules=not args.no_schedules)
    worker_id = new_worker_id()
    if args.once:
        ran = run_worker(settings, stop=stop, tick_hooks=hooks, worker_id=worker_id, poll_seconds=0.0,
                         until_idle=True)
        print(f"worker {worker_id}: ran {ran} task(s)")
        return 0
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    evaluator = None if args.no_alerts else AlertEvaluator(settings).start()
    print(f"worker {worker_id} running the queue"
          + ("" if args.no_schedules else " and the schedules")
          + ("" if args.no_alerts else " and the alert evaluator") + "; Ctrl-C stops it", file=sys.stderr)
    try:
        ran = run_worker(settings, stop=stop, tick_hooks=hooks, worker_id=worker_id, poll_seconds=args.poll)
    finally:
        if evaluator is not None:
            evaluator.stop()
    print(f"worker {worker_id} stopped after {ran} task(s)", file=sys.stderr)
    return 0
