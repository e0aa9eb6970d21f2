"""The schedules as the Maintenance page shows them: what fires when, the next five runs, the last firings.

Read through :func:`opscore.operations.schedules.describe_schedules`, the same call as ``opscore
maintenance schedules``, so the page and the command agree. Fire times are shown in the schedule's
own timezone, where its cron is read, with UTC beside them: across a daylight-saving change the wall
time stays and the UTC one moves.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from opscore.config import Settings
from opscore.operations.schedules import describe_schedules
from opscore.views.formatting import duration, when

LOCAL = "%a %Y-%m-%d %H:%M %Z"


def schedule_board(settings: Settings, now: float | None = None) -> list[dict[str, Any]]:
    """Every schedule in force with its next five runs and its last ten firings."""
    return describe_schedules(settings, time.time() if now is None else now, runs=5, history=10)


def schedules_frame(board: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per schedule: its cron where it is read, whether it runs, how it treats a late firing."""
    columns = ["schedule", "cron", "timezone", "enabled", "misfire policy", "next run", "last fired", "edited by"]
    rows = []
    for s in board:
        policy = (f"run once late within {duration(s['grace_seconds'])}" if s["misfire_policy"] == "run_once_late"
                  else "skip a late firing")
        last = s["last_firings"][0] if s["last_firings"] else None
        rows.append({
            "schedule": s["name"], "cron": s["cron"], "timezone": s["timezone"], "enabled": s["enabled"],
            "misfire policy": policy,
            "next run": _local(s["next_runs"][0], s["timezone"]) if s["next_runs"] else "— (disabled)",
            "last fired": f"{_local(last['fire_time'], s['timezone'])} ({last['outcome']})" if last else "never",
            "edited by": f"{s['edited_by']} at {when(s['edited_at'])}" if s["edited_by"] else "",
        })
    return pd.DataFrame(rows, columns=columns)


def _local(iso: str, timezone: str) -> str:
    """An ISO time in the schedule's zone, named as people there say it (CET, CEST, EST)."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)).strftime(LOCAL)


def next_runs_frame(entry: dict[str, Any]) -> pd.DataFrame:
    """The next runs in the schedule's timezone, its UTC offset then, and the same instant in UTC."""
    rows = []
    for iso in entry["next_runs"]:
        moment = datetime.fromisoformat(iso)
        offset = moment.utcoffset()
        hours = offset.total_seconds() / 3600 if offset is not None else 0.0
        rows.append({"local time": _local(iso, entry["timezone"]), "UTC offset": f"{hours:+g} h",
                     "UTC": moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")})
    return pd.DataFrame(rows, columns=["local time", "UTC offset", "UTC"])


def firings_frame(entry: dict[str, Any]) -> pd.DataFrame:
    """The last firings, newest first: when due, when noticed, what came of it and the tasks it queued."""
    rows = [{
        "fire time": _local(f["fire_time"], entry["timezone"]), "fired at": when(f["fired_at"]), "outcome": f["outcome"],
        "late": duration(f["late_seconds"]) if f["late_seconds"] >= 1 else "on time",
        "coalesced": f["coalesced"], "tasks": len(f["task_ids"]), "detail": f["detail"],
    } for f in entry["last_firings"]]
    return pd.DataFrame(rows, columns=["fire time", "fired at", "outcome", "late", "coalesced", "tasks", "detail"])
