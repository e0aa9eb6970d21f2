"""Backups as maintenance: a weekly backup proven by restoring it, and a quarterly full restore drill.

A backup nobody restored is a hope. The weekly procedure takes one into ``backup_dir`` and restores it
into a scratch workspace at once; the quarterly drill restores the newest backup again from scratch,
times it (how long a recovery takes) and says how old it was (how much a recovery would lose).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from opscore.access.actors import SYSTEM
from opscore.config import Settings
from opscore.exceptions import OpscoreError
from opscore.operations.backup import backup, backups_taken, verify_by_restoring
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure

DAY = 86_400.0


def _backup_root(settings: Settings) -> Path:
    root = settings.backup_dir
    return root if root.is_absolute() else settings.workspace / root


def _check(settings: Settings, folder: Path, checkpoint: Checkpoint) -> tuple[dict[str, Any], list[Finding]]:
    checkpoint("restoring into a scratch workspace", 0.6)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opscore-restore-check-") as scratch:
        try:
            check = verify_by_restoring(settings, folder, Path(scratch))
        except OpscoreError as exc:
            return {"restore_ok": False}, [Finding(f"backup {folder} cannot be restored: {exc}", "critical",
                                                   follow_up="corrective")]
    figures = {"restore_ok": check.ok, "restore_seconds": time.perf_counter() - started,
               "restored_versions": check.versions, "restored_predictions": check.predictions,
               "restored_database": check.manifest.database}
    return figures, [Finding(f"backup {folder}: {problem}", "critical", follow_up="corrective")
                     for problem in check.problems]


@procedure("verified_backup", title="Backup with a verified restore", maintenance_set="weekly", estimated_seconds=60)
def verified_backup(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    folder = _backup_root(settings) / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    checkpoint("taking the backup", 0.0)
    manifest = backup(settings, folder, SYSTEM, progress=lambda stage, fraction: checkpoint(stage, 0.5 * fraction))
    figures, findings = _check(settings, folder, checkpoint)
    kept = backups_taken(settings)
    return ProcedureResult(
        {"folder": str(folder), "files": len(manifest.files), "bytes": manifest.total_bytes,
         "versions": manifest.versions, "predictions": manifest.predictions, "backups_kept": len(kept), **figures},
        findings, [f"{len(kept)} backups are recorded, {sum(b['bytes'] for b in kept) / 1e6:.0f} MB in all; copy them "
                   "off this machine and remove old ones by hand"])


@procedure("restore_drill", title="Full restore drill of the newest backup", maintenance_set="quarterly",
           estimated_seconds=60)
def restore_drill(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    present = [b for b in backups_taken(settings) if Path(b["folder"]).is_dir()]
    if not present:
        return ProcedureResult({"backups_found": 0}, [Finding(
            "no backup of this workspace can be found: nothing to restore after a loss", "critical",
            follow_up="corrective", follow_up_procedure="verified_backup")])
    newest = present[0]
    figures, findings = _check(settings, Path(newest["folder"]), checkpoint)
    age_days = (now - newest["taken_at"]) / DAY
    figures.update({"backup": newest["folder"], "backup_age_days": age_days, "backups_found": len(present)})
    if age_days > 8:
        findings.append(Finding(f"the newest backup is {age_days:.0f} days old: a recovery would lose everything "
                                "since", "high", follow_up="corrective", follow_up_procedure="verified_backup"))
    return ProcedureResult(figures, findings)
