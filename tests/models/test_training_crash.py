"""``opscore train`` killed with SIGKILL at each stage leaves a registry the next run can use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from opscore.models import registry
from opscore.models.training import STAGES
from opscore.store import dispose_stores, open_store

KILL_AT = [s for s in STAGES if s != "done"]


def _train(version_id: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "opscore", "train", "--version-id", version_id],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=os.environ.copy())


def _kill_when(process: subprocess.Popen, stage: str) -> bool:
    """SIGKILL the process as soon as it announces ``stage``; False if it finished first."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.strip() == f"stage: {stage}":
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            return True
    process.wait(timeout=60)
    return False


@pytest.mark.parametrize("stage", KILL_AT)
def test_sigkill_at_each_stage_leaves_a_consistent_registry(workspace, stage):
    base = subprocess.run([sys.executable, "-m", "opscore", "train", "--version-id", "base", "--quiet"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert base.returncode == 0, base.stderr
    assert _kill_when(_train("victim"), stage)

    dispose_stores()
    store = open_store(workspace)
    for info in registry.list_versions(store):
        # Whatever is registered is whole: its artifact loads under its checksum.
        registry.load_version_model(workspace, info)
    registered = registry.version_exists(store, "victim")
    assert registry.alias_target(store, "production") in ({"base", "victim"} if registered else {"base"})
    assert registry.ledger_entries(store)[0].to_version == registry.alias_target(store, "production")

    again = subprocess.run([sys.executable, "-m", "opscore", "train", "--version-id", "victim", "--quiet"],
                           capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    if registered:
        # Killed after the registry row committed: the version is complete and the id is taken.
        assert again.returncode == 2 and "already exists" in again.stderr
    else:
        assert again.returncode == 0, again.stderr
    assert registry.version_exists(store, "victim")
    assert registry.load_version_model(workspace, registry.get_version(store, "victim")) is not None
    staging = workspace.model_store_path / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []
