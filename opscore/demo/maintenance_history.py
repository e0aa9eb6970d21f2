"""The demo's week of maintenance: the real schedules fired by the real worker, on a compressed clock.

Like the demo's traffic, only the clock is compressed. Each fire time of the past week is handed to
:func:`opscore.operations.schedules.tick` (which records the firing once and queues its set's tasks)
and the queue is drained by the real worker with the clock at that moment, so every task, attempt and
follow-up is what the procedures produced on this workspace, each reading the workspace as of its
moment. Two operator mistakes are part of the story, and the real pipeline meets both: the first
weekly backup goes to a backup folder a misconfiguration points at a file, fails with the operating
system's error and succeeds on its retry once the setting is put right; and the API tokens file was
copied in readable by everyone, which the weekly security audit finds, opening a corrective task
whose re-check a day later passes because the operator ran the chmod the finding asked for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opscore.access.actors import Actor
from opscore.access.tokens import add_token, list_tokens
from opscore.config import Settings, replace
from opscore.operations import schedules
from opscore.operations.worker import run_one

DAY = 86_400.0


@dataclass(frozen=True)
class MaintenanceHistory:
    firings: int
    tasks_run: int
    failed_then_retried: str | None


def fire_times_between(settings: Settings, start: float, end: float) -> list[tuple[float, str]]:
    """Every schedule's fire times in [start, end), oldest first."""
    times: list[tuple[float, str]] = []
    for schedule in schedules.configured_schedules(settings):
        if not schedule.enabled:
            continue
        for moment in schedules.next_runs(schedule, start, count=64):
            if moment.timestamp() >= end:
                break
            times.append((moment.timestamp(), schedule.name))
    return sorted(times)


def build_maintenance_history(settings: Settings, actor: Actor, now: float, *, days: float = 7.0,
                              progress: Callable[[str, float], None] = lambda _s, _f: None) -> MaintenanceHistory:
    """Fire the past ``days`` of schedules and run what they queue, with the clock at each moment."""
    if days <= 0:
        return MaintenanceHistory(0, 0, None)
    moments = fire_times_between(settings, now - days * DAY, now)
    misplaced = settings.workspace / "metrics" / "backups-mount-missing"
    misplaced.parent.mkdir(parents=True, exist_ok=True)
    misplaced.write_text("a file where the backup folder should be: the mount was missing\n")
    broken = replace(settings, backup_dir=misplaced / "backups")
    # The partner system that sends labels gets a feedback token; its file is then copied in world-readable.
    add_token(settings, actor, "label-partner", "feedback")
    token_file = Path(next(t.source for t in list_tokens(settings) if t.name == "label-partner"))
    token_file.chmod(0o644)
    # The planted backup failure is recorded on its task's attempt; the worker's warning would only
    # interrupt the demo's progress display.
    worker_log = logging.getLogger("opscore.operations.worker")
    level = worker_log.level
    worker_log.setLevel(logging.ERROR)
    try:
        ran, failed_then_retried = _run_week(settings, now, days, moments, broken, token_file, progress)
    finally:
        worker_log.setLevel(level)
    progress("maintenance history done", 1.0)
    misplaced.unlink(missing_ok=True)
    token_file.chmod(0o600)
    return MaintenanceHistory(len(moments), ran, failed_then_retried)


def _run_week(settings: Settings, now: float, days: float, moments: list[tuple[float, str]], broken: Settings,
              token_file: Path, progress: Callable[[str, float], None]) -> tuple[int, str | None]:
    failed_then_retried: str | None = None
    ran = 0
    for index, (moment, name) in enumerate(moments):
        progress(f"{name} maintenance of {(now - moment) / DAY:.0f} day(s) ago", index / max(1, len(moments)))
        clock = _Clock(moment + 30.0)
        schedules.tick(settings, now=clock())
        while True:
            # The week's first backup meets the misconfigured folder; the worker's retry has it fixed.
            use = broken if failed_then_retried is None and name == "weekly" else settings
            task = run_one(use, worker_id="demo-worker", clock=clock)
            if task is None:
                break
            ran += 1
            if task.procedure == "verified_backup" and task.status == "up_for_retry" and failed_then_retried is None:
                failed_then_retried = task.id
                clock.advance(max(0.0, task.due_at - clock()))
            if task.procedure == "security_audit" and task.status == "success":
                token_file.chmod(0o600)  # the operator follows the finding
    return ran, failed_then_retried


class _Clock:
    """The moment of a firing, running on at the real pace: tasks take the time they really take."""

    def __init__(self, at: float) -> None:
        self.at = at
        self._started = time.monotonic()

    def __call__(self) -> float:
        return self.at + time.monotonic() - self._started

    def advance(self, seconds: float) -> None:
        self.at += seconds
