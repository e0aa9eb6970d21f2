"""The weekly backup is proven by a restore; the drill finds a tampered backup and a missing one."""

from __future__ import annotations

import time
from pathlib import Path

from opscore.operations.backup import backups_taken
from opscore.operations.procedures import get_procedure, no_checkpoint


def _run(name, settings, **params):
    return get_procedure(name).run(settings, params, no_checkpoint)


def test_the_weekly_backup_is_restored_and_recorded_as_verified(served):
    result = _run("verified_backup", served)
    assert result.findings == [] and result.figures["restore_ok"] is True
    assert result.figures["restored_versions"] == 2 and result.figures["restored_predictions"] == 200
    assert Path(result.figures["folder"]).parent == served.workspace / "backups"
    [taken] = backups_taken(served)
    assert taken["verified_at"] is not None and taken["actor"] == "system:opscore"


def test_the_drill_finds_a_tampered_backup(served):
    folder = Path(_run("verified_backup", served).figures["folder"])
    artifact = next((folder / "model_store" / "v2").glob("model.*"))
    artifact.write_bytes(b"not a model")
    result = _run("restore_drill", served)
    assert result.figures["restore_ok"] is False
    assert result.findings[0].severity == "critical" and "model_store/v2/" in result.findings[0].summary


def test_the_drill_reports_age_and_a_missing_backup(served):
    assert _run("restore_drill", served).findings[0].follow_up_procedure == "verified_backup"
    _run("verified_backup", served)
    result = _run("restore_drill", served, now=time.time() + 10 * 86_400)
    assert result.figures["restore_ok"] is True and result.figures["backup_age_days"] > 9.9
    assert "10 days old" in result.findings[0].summary
