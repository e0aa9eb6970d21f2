"""``opscore maintenance run SET`` on a small served workspace finds what was planted there, and
``opscore maintenance schedules`` shows next runs in local time and the firings the tick recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opscore.access.private_files import secrets_dir
from opscore.cli.main import main
from opscore.demo.credit_data import credit_applications
from opscore.models import artifacts
from opscore.models.artifacts import OWNER, STAGING
from opscore.models.leases import this_host
from opscore.operations.procedures import MAINTENANCE_SETS, procedures_in
from opscore.operations.tasks import get_task, list_tasks
from tests.conftest import OPERATOR, _workspace, log_traffic


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """v1 in production and v2 as candidate with logged traffic, built once and copied per test."""
    from opscore.models.training import train_version

    root = tmp_path_factory.mktemp("maintenance-base") / "ws"
    root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        made = _workspace(root, mp, "")
        settings = next(made)
        train_version(settings, "v1", credit_applications(n_rows=1_500, seed=7), "default", actor=OPERATOR,
                      then="promote")
        train_version(settings, "v2", credit_applications(n_rows=1_500, seed=8), "default", actor=OPERATOR,
                      then="candidate")
        log_traffic(settings, 120)
        log_traffic(settings, 80, version="v2", seed=6)
        (root / ".streamlit").mkdir()
        (root / ".streamlit" / "config.toml").write_text('[server]\naddress = "127.0.0.1"\n')
        next(made, None)  # closes the store, so the copy below is the whole database
    return root


@pytest.fixture
def ws(built, tmp_path, monkeypatch):
    folder = tmp_path / "ws"
    shutil.copytree(built, folder)
    yield from _workspace(folder, monkeypatch, "")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["maintenance", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("maintenance_set", MAINTENANCE_SETS)
def test_each_set_runs_every_procedure_through_the_queue_and_exits_0(ws, capsys, maintenance_set):
    code, out, err = run(capsys, "run", maintenance_set, "--json")
    assert code == 0, err
    report = json.loads(out)
    names = [p.name for p in procedures_in(maintenance_set)]
    assert report["set"] == maintenance_set and report["ok"] is True
    assert [t["procedure"] for t in report["tasks"]] == names
    for task in report["tasks"]:
        stored = get_task(ws, task["id"])
        assert stored.status == "success" and task["status"] == "success"
        assert stored.created_by.startswith("operator:") and stored.cause.kind == "operator"
        assert len(stored.attempts) == 1 and stored.attempts[0].outcome == "success"
        assert stored.result == task["result"] and stored.result["figures"]
    # One progress line as each procedure starts and one as it ends, on stderr.
    assert [line.split(":")[0] for line in err.splitlines() if line.startswith("[")] == [
        f"[{i}/{len(names)}] {name}" for i, name in enumerate(names, 1) for _ in range(2)]


def test_daily_cleans_a_planted_stale_staging_folder_and_says_so(ws, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = ws.model_store_path / STAGING / "crashed-writer"
    stale.mkdir(parents=True)
    (stale / "model.joblib").write_bytes(b"half a model")
    (stale / OWNER).write_text(json.dumps({"host": this_host(), "pid": int(dead.stdout), "lease_seconds": 900}))
    code, out, err = run(capsys, "run", "daily")
    assert code == 0, err
    assert not stale.exists()
    cleanup = out.split("cleanup (task ", 1)[1].split("\n\n", 1)[0]
    assert "staging_folders_removed: 1" in cleanup
    assert "[low] removed 1 staging folder(s) left by writers that stopped" in cleanup
    daily = len(procedures_in("daily"))
    assert f"daily maintenance: {daily} of {daily} procedure(s) ran" in out


def test_weekly_finds_a_planted_wrong_checksum_and_a_world_readable_token_file(ws, capsys):
    path = artifacts.artifact_path(ws.model_store_path, "v2")
    path.write_bytes(path.read_bytes() + b"\0")
    token = secrets_dir(ws) / "admin_token"
    token.write_text("planted")
    token.chmod(0o644)
    code, out, err = run(capsys, "run", "weekly", "--json")
    assert code == 0, err
    audit = next(t for t in json.loads(out)["tasks"] if t["procedure"] == "security_audit")
    summaries = [(f["severity"], f["summary"]) for f in audit["result"]["findings"]]
    assert [s for s in summaries if s[0] == "critical" and "artifact does not match the registry: version v2" in s[1]]
    assert [s for s in summaries if s[0] == "high" and f"{token} can be read by other users" in s[1]
            and f"chmod 600 {token}" in s[1]]
    assert audit["result"]["figures"]["checksum_mismatches"] == 1
    assert audit["result"]["figures"]["exposed_files"] == [str(token)]
    # Each finding that asks for it opened a corrective follow-up task.
    follow_ups = [t for t in list_tasks(ws, type="corrective") if t.created_by == f"task:{audit['id']}"]
    assert {t.priority for t in follow_ups} == {"critical", "high"}


def test_a_clean_workspace_has_no_security_findings_to_plant_against(ws, capsys):
    code, out, _ = run(capsys, "run", "weekly")
    assert code == 0
    audit = out.split("security_audit (task ", 1)[1].split("\n\n", 1)[0]
    assert "findings: none" in audit and "checksum_mismatches: 0" in audit


def test_a_procedure_that_crashes_makes_the_run_exit_1_and_is_named(ws, capsys):
    (ws.workspace / "backups").write_text("a file where the backup folder should be")
    code, out, err = run(capsys, "run", "weekly")
    assert code == 1
    assert "verified_backup (task " in out and ": failed" in out.split("verified_backup (task ", 1)[1].split("\n")[0]
    weekly = len(procedures_in("weekly"))
    assert "crashed: verified_backup" in out and f"{weekly - 1} of {weekly} procedure(s) ran" in out
    assert [line for line in err.splitlines() if line.endswith("verified_backup: failed, 0 finding(s)")]
    assert "Traceback" not in err and "Traceback" not in out


def test_schedules_show_next_runs_in_local_time_and_the_recorded_firings(ws, capsys):
    from opscore.operations.schedules import tick

    (ws.workspace / "opscore.toml").write_text('schedule_timezone = "Europe/Berlin"\n'
                                               '[schedules.weekly]\nmisfire_policy = "skip"\n')
    from opscore.config import load_settings

    settings = load_settings()
    berlin = ZoneInfo("Europe/Berlin")
    fired = tick(settings, datetime(2026, 3, 2, 2, 0, 3, tzinfo=berlin).timestamp())
    code, out, _ = run(capsys, "schedules", "--json")
    assert code == 0
    listed = {s["name"]: s for s in json.loads(out)}
    assert list(listed) == list(MAINTENANCE_SETS)
    assert listed["weekly"]["misfire_policy"] == "skip" and listed["daily"]["timezone"] == "Europe/Berlin"
    assert len(listed["quarterly"]["next_runs"]) == 5
    assert all(t.endswith(("T05:00:00+01:00", "T05:00:00+02:00")) for t in listed["quarterly"]["next_runs"])
    [firing] = listed["daily"]["last_firings"]
    assert firing["fire_time"] == "2026-03-02T02:00:00+01:00" and firing["task_ids"] == fired
    code, out, _ = run(capsys, "schedules")
    assert code == 0
    assert f"Mon 2026-03-02 02:00 CET  run      {len(fired)} task(s); on time" in out
    assert len(fired) == len(procedures_in("daily"))
    assert "weekly     0 3 * * SUN" in out and "skip" in out


def test_a_bad_cron_in_opscore_toml_exits_2_with_one_line(ws, capsys):
    (ws.workspace / "opscore.toml").write_text('[schedules.weekly]\ncron = "0 3 * * 0"\n')
    code, out, err = run(capsys, "schedules")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "schedules.weekly.cron" in err and "names" in err

