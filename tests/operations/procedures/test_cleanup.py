"""Daily cleanup removes staging folders whose writers stopped, keeps live ones, and applies retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from sqlalchemy import func, select

from opscore.config import replace
from opscore.data.features import frame_to_records
from opscore.models.artifacts import OWNER, STAGING
from opscore.models.leases import this_host
from opscore.operations.procedures import get_procedure, no_checkpoint
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter
from opscore.store import open_store, predictions


def _staging(root, name, owner=None, age_seconds=0.0):
    folder = root / STAGING / name
    folder.mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"half a model")
    if owner is not None:
        (folder / OWNER).write_text(json.dumps({**owner, "lease_seconds": 900}))
    if age_seconds:
        old = time.time() - age_seconds
        for path in (*folder.iterdir(), folder):
            os.utime(path, (old, old))
    return folder


def test_a_planted_stale_staging_folder_is_cleaned_and_a_live_one_kept(trained):
    root = trained.model_store_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = _staging(root, "crashed-writer", {"host": this_host(), "pid": int(dead.stdout)})
    abandoned = _staging(root, "no-owner-file", age_seconds=3600)
    live = _staging(root, "still-writing", {"host": this_host(), "pid": os.getpid()})
    result = get_procedure("cleanup").run(trained, {}, no_checkpoint)
    assert not gone.exists() and not abandoned.exists() and live.exists()
    assert result.figures["staging_folders_removed"] == 2 and result.figures["staging_folders_in_progress"] == 1
    assert "removed 2 staging folder(s)" in result.findings[0].summary


def test_raw_rows_past_retention_are_removed_and_recent_ones_kept(trained):
    from opscore.demo.credit_data import credit_applications

    row = frame_to_records(credit_applications(n_rows=1, seed=1).drop(columns="default"))[0]
    writer = TelemetryWriter(trained).start()
    now = time.time()
    for i, age_days in enumerate([40, 35, 2, 0]):
        writer.submit(PredictionRecord(f"r{i}", now - age_days * 86_400, "v1", "api", 5.0, "ok", row, 0, 0.2))
    assert writer.close()
    result = get_procedure("cleanup").run(replace(trained, retention_days=30), {}, no_checkpoint)
    with open_store(trained).read() as conn:
        left = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
    assert result.figures["raw_rows_removed"] == 2 and left == 2
