"""Two operators moving production at the same moment never corrupt the alias or lose a move."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from opscore.models import registry
from opscore.models.training import train_version
from opscore.store import open_store

WORKER = r"""
import json, sys, time
from opscore.config import load_settings
from opscore.exceptions import ConflictError
from opscore.models.registry import promote
from opscore.access.actors import Actor
start_at, targets, rounds, name = float(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
settings = load_settings()
actor = Actor(name, "operator", "cli")
while time.time() < start_at:
    time.sleep(0.001)
done, conflicts = [], 0
for i in range(rounds):
    try:
        entry = promote(settings, targets[i % len(targets)], actor, f"round {i}", skip_preflight=i % 2 == 1)
        done.append([entry.id, entry.from_version, entry.to_version])
    except ConflictError:
        conflicts += 1
print(json.dumps({"done": done, "conflicts": conflicts}))
"""


def test_two_processes_promoting_at_once_agree_with_the_ledger(any_workspace, demo_frame, operator):
    for version_id in ("v1", "v2", "v3"):
        train_version(any_workspace, version_id, demo_frame, "default", actor=operator, then="none")
    store = open_store(any_workspace)
    setup_moves = len(registry.ledger_entries(store))
    start_at = time.time() + 3
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(start_at), targets, "50", name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        for targets, name in (("v2,v1", "alice"), ("v3,v1", "bob"))
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        results.append(json.loads(out))

    entries = registry.ledger_entries(store, alias="production", newest_first=False)
    moved = [tuple(move) for r in results for move in r["done"]]
    assert len(moved) + sum(r["conflicts"] for r in results) == 100
    assert len(entries) == setup_moves + len(moved)
    assert {m[0] for m in moved} == {e.id for e in entries[setup_moves:]}
    # The ledger is one unbroken chain and ends where the alias points.
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.from_version == before.to_version
    assert registry.alias_target(store, "production") == entries[-1].to_version
    # Each worker saw the move it made, exactly as the ledger recorded it.
    by_id = {e.id: (e.id, e.from_version, e.to_version) for e in entries}
    assert all(by_id[m[0]] == m for m in moved)
