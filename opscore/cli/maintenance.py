"""Scheduled maintenance from the command line: ``maintenance schedules`` and ``maintenance run SET``.

``run`` puts one task per procedure of the set on the queue (so the run is in the queue's history like
any other) and executes each in this process, one after the other. Findings are what maintenance is
for, not failures: the exit code is 1 only when a procedure crashed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from opscore.cli.models import cli_actor
from opscore.config import Settings
from opscore.operations.procedures.registry import MAINTENANCE_SETS
from opscore.views.formatting import duration, text_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("maintenance", help="maintenance schedules, and running a maintenance set now")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    a = actions.add_parser("schedules", help="each schedule: cron, timezone, misfire policy, next runs, last firings")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_schedules)

    a = actions.add_parser("run", help="run every procedure of a maintenance set now, in this process")
    a.add_argument("set", choices=MAINTENANCE_SETS, metavar="|".join(MAINTENANCE_SETS))
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_run)


def _local(iso: str, timezone: str) -> str:
    """A fire time as its schedule's local wall time with the zone's abbreviation (CET, EDT)."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def cmd_schedules(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.schedules import describe_schedules

    described = describe_schedules(settings)
    if args.json:
        print(json.dumps(described))
        return 0
    rows = []
    for s in described:
        policy = s["misfire_policy"] + (f" (grace {duration(s['grace_seconds'])})" if s["misfire_policy"] == "run_once_late"
                                        else "")
        edited = f"edited by {s['edited_by']}" if s["edited_by"] else "-"
        rows.append([s["name"], s["cron"], s["timezone"], "yes" if s["enabled"] else "no", policy, edited])
    print(text_table(rows, ["schedule", "cron", "timezone", "enabled", "misfire policy", "edit"]))
    for s in described:
        print(f"\n{s['name']}")
        print("  next runs: " + (", ".join(_local(t, s["timezone"]) for t in s["next_runs"]) if s["next_runs"] else "none (disabled)"))
        if not s["last_firings"]:
            print("  last firings: none yet")
            continue
        print("  last firings:")
        for f in s["last_firings"]:
            tasks = f"{len(f['task_ids'])} task(s)" if f["outcome"] == "run" else "no tasks"
            print(f"    {_local(f['fire_time'], s['timezone'])}  {f['outcome']:<7}  {tasks}; {f['detail']}")
    return 0


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        text = json.dumps(value, default=str)
        return text if len(text) <= 160 else text[:157] + "..."
    return str(value)


def _report(task: Any) -> list[str]:
    """A task's outcome and result in lines: figures, findings (with severity), recommendations."""
    lines = [f"{task.procedure} (task {task.id}): {task.status}"
             + (f" in {task.actual_seconds:.1f} s" if task.actual_seconds is not None else "")]
    if task.status != "success" and task.attempts and task.attempts[-1].error:
        lines.append(f"  error: {task.attempts[-1].error}")
    result = task.result or {}
    figures = result.get("figures", {})
    if figures:
        lines.append("  figures:")
        lines += [f"    {name}: {_value(value)}" for name, value in figures.items()]
    findings = result.get("findings", [])
    lines.append("  findings:" if findings else "  findings: none")
    lines += [f"    [{f['severity']}] {f['summary']}" + (f" (opens a {f['follow_up']} task)" if f.get("follow_up") else "")
              for f in findings]
    lines += ["  recommendation: " + r for r in result.get("recommendations", [])]
    return lines


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        return f"opscore: {record.getMessage()}" + (f" ({type(error).__name__}: {error})" if error else "")


@contextmanager
def _worker_logs_in_one_line() -> Iterator[None]:
    """The worker logs a crashed procedure with its traceback; here one line is enough, since the
    report repeats the error (OPSCORE_DEBUG keeps the traceback)."""
    if os.environ.get("OPSCORE_DEBUG"):
        yield
        return
    logger = logging.getLogger("opscore.operations.worker")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    previous = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = previous


def _run_here(settings: Settings, task_id: str, actor: Any) -> Any:
    """Run a queued task in this process; if a worker took it first, follow it to its end instead."""
    from opscore.exceptions import ConflictError
    from opscore.operations.tasks import ENDED, get_task
    from opscore.operations.worker import execute_task

    try:
        return execute_task(settings, task_id, actor=actor)
    except ConflictError:
        task = get_task(settings, task_id)
        while task.status not in ENDED:
            time.sleep(0.5)
            task = get_task(settings, task_id)
        return task


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.operations.procedures import procedures_in
    from opscore.operations.tasks import Cause, create_task

    actor = cli_actor()
    procedures = procedures_in(args.set)
    cause = Cause("operator", str(actor), f"opscore maintenance run {args.set}, by {actor.name}")
    done = []
    started = time.perf_counter()
    with _worker_logs_in_one_line():
        for number, proc in enumerate(procedures, 1):
            step = f"[{number}/{len(procedures)}] {proc.name}"
            print(f"{step}: {proc.title} ...", file=sys.stderr, flush=True)
            # One attempt: an operator who runs maintenance by hand hears about a crash now, and retries
            # it with `opscore tasks retry` if need be.
            task = create_task(settings, procedure=proc.name, actor=actor, cause=cause, max_attempts=1)
            task = _run_here(settings, task.id, actor)
            findings = len((task.result or {}).get("findings", []))
            took = f" in {task.actual_seconds:.1f} s" if task.actual_seconds is not None else ""
            print(f"{step}: {task.status}{took}, {findings} finding(s)", file=sys.stderr, flush=True)
            done.append(task)
    crashed = [t for t in done if t.status not in ("success", "skipped")]
    if args.json:
        print(json.dumps({"set": args.set, "ok": not crashed, "tasks": [t.to_dict() for t in done]}, default=str))
        return 1 if crashed else 0
    for task in done:
        print("\n".join(_report(task)))
    total = sum(len((t.result or {}).get("findings", [])) for t in done)
    print(f"\n{args.set} maintenance: {len(done) - len(crashed)} of {len(done)} procedure(s) ran, "
          f"{total} finding(s), {time.perf_counter() - started:.1f} s"
          + (f"; crashed: {', '.join(t.procedure for t in crashed)}" if crashed else ""))
    return 1 if crashed else 0
