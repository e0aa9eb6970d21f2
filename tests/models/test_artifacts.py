"""The model store: atomic version folders, no reuse of ids, leftovers of crashes cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from opscore.exceptions import ConflictError, IntegrityError, NotFoundError
from opscore.models import artifacts


def test_a_version_folder_appears_whole(tmp_path):
    digest = artifacts.write_version(tmp_path, "v1", {"weights": [1, 2, 3]}, {"feature_schema.json": {"a": 1}})
    folder = tmp_path / "v1"
    assert sorted(p.name for p in folder.iterdir()) == ["feature_schema.json", "model.joblib", "model.sha256"]
    assert (folder / "model.sha256").read_text().startswith(digest)
    assert artifacts.load_model(tmp_path, "v1", digest) == {"weights": [1, 2, 3]}
    assert list((tmp_path / artifacts.STAGING).iterdir()) == []


def test_ids_are_never_reused_and_checksums_are_enforced(tmp_path):
    digest = artifacts.write_version(tmp_path, "v1", [1], {})
    with pytest.raises(ConflictError, match="never reused"):
        artifacts.write_version(tmp_path, "v1", [2], {})
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        artifacts.load_model(tmp_path, "v1", "0" * 64)
    with pytest.raises(NotFoundError):
        artifacts.load_model(tmp_path, "v2", digest)


def _staging_left_by_a_process_that_died(root, host: str = ""):
    """A staging folder made by another process (on ``host``, if given) that then died mid-write."""
    code = ("import os, sys; from pathlib import Path; from opscore.models import artifacts, leases\n"
            "if sys.argv[2]: leases.this_host = lambda: sys.argv[2]\n"
            "print(artifacts._staging_dir(Path(sys.argv[1])).name); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code, str(root), host], capture_output=True, text=True, check=True)
    return root / artifacts.STAGING / done.stdout.strip()


def test_staging_is_removed_only_when_its_writer_is_known_to_be_gone(tmp_path):
    here = _staging_left_by_a_process_that_died(tmp_path)
    # Another host sharing the model store: its pid means nothing here, only its lease does.
    elsewhere = _staging_left_by_a_process_that_died(tmp_path, host="replica-b.internal")
    mine = artifacts._staging_dir(tmp_path)
    assert artifacts.remove_stale_staging(tmp_path) == 1
    assert not here.exists() and elsewhere.exists() and mine.exists()

    # The other host stopped renewing its lease long ago: now it is known to be gone.
    lapsed = time.time() - artifacts.STAGING_LEASE_SECONDS - 1
    os.utime(elsewhere / artifacts.OWNER, (lapsed, lapsed))
    assert artifacts.remove_stale_staging(tmp_path) == 1
    assert not elsewhere.exists() and mine.exists()


def test_orphan_folder_is_moved_out_of_the_way(tmp_path):
    artifacts.write_version(tmp_path, "v9", [1], {})
    artifacts.delete_orphan_folder(tmp_path, "v9")
    assert not (tmp_path / "v9").exists()
    artifacts.write_version(tmp_path, "v9", [2], {})


def test_datasets_are_kept_once_per_fingerprint(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", None]})
    path = artifacts.write_dataset(tmp_path, "f" * 64, frame)
    assert artifacts.write_dataset(tmp_path, "f" * 64, frame.head(1)) == path
    pd.testing.assert_frame_equal(artifacts.read_dataset(tmp_path, "f" * 64), frame)
    with pytest.raises(NotFoundError):
        artifacts.read_dataset(tmp_path, "0" * 64)
