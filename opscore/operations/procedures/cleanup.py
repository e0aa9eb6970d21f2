"""Daily cleanup: staging folders writers left behind, and raw prediction rows past retention.

Both reuse the code that owns the data: the model store's lease-aware staging cleanup (a folder is
removed only once its writer's lease lapsed, or its writer is gone from this host) and the telemetry
writer's retention, which removes raw rows in small transactions and keeps the latency rollups.
"""

from __future__ import annotations

from typing import Any

from opscore.config import Settings
from opscore.models.artifacts import STAGING, remove_stale_staging
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure
from opscore.serving.telemetry_writer import apply_retention, apply_rollup_retention
from opscore.store import open_store


@procedure("cleanup", title="Remove stale staging folders and raw logs past retention", maintenance_set="daily",
           estimated_seconds=10)
def cleanup(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    root = settings.model_store_path
    checkpoint("staging folders", 0.0)
    removed_folders = remove_stale_staging(root)
    staging = root / STAGING
    in_progress = sum(1 for p in staging.iterdir() if p.is_dir()) if staging.is_dir() else 0
    checkpoint("raw logs past retention", 0.4)
    store = open_store(settings)
    removed_rows = apply_retention(store, settings.retention_days) if settings.retention_days > 0 else 0
    checkpoint("rollups past retention", 0.8)
    removed_rollups = (apply_rollup_retention(store, settings.rollup_retention_days)
                       if settings.rollup_retention_days > 0 else 0)
    findings, recommendations = [], []
    if removed_folders:
        findings.append(Finding(f"removed {removed_folders} staging folder(s) left by writers that stopped "
                                f"(a training or registration that crashed)", "low"))
    if settings.retention_days <= 0:
        recommendations.append("raw prediction rows are kept forever (retention_days = 0): the database grows "
                               "with every request; set retention_days in opscore.toml")
    return ProcedureResult(
        figures={"staging_folders_removed": removed_folders, "staging_folders_in_progress": in_progress,
                 "raw_rows_removed": removed_rows, "rollup_rows_removed": removed_rollups,
                 "retention_days": settings.retention_days, "rollup_retention_days": settings.rollup_retention_days},
        findings=findings, recommendations=recommendations)
