"""Claims on version ids: one training per id, taken back only from a holder known to be gone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from opscore.exceptions import ConflictError
from opscore.models import claims, leases
from opscore.store import open_store

# Claims an id in another process (as ``host``, if given) and dies without releasing it.
DIES_HOLDING = """
import os, sys
from opscore.config import load_settings
from opscore.models import claims, leases
from opscore.store import open_store
if sys.argv[2]:
    leases.this_host = lambda: sys.argv[2]
claims.take(open_store(load_settings()), sys.argv[1])
os._exit(0)
"""


def _dies_holding(version_id: str, host: str = "") -> None:
    subprocess.run([sys.executable, "-c", DIES_HOLDING, version_id, host], check=True, env=os.environ.copy(),
                   timeout=120)


def test_a_claim_blocks_a_second_training_of_the_id_until_released(any_workspace):
    store = open_store(any_workspace)
    first = claims.take(store, "v7")
    with pytest.raises(ConflictError, match="'v7' is being trained right now"):
        claims.take(store, "v7")
    assert claims.claimed_ids(store) == {"v7"}
    claims.release(store, first)
    second = claims.take(store, "v7")
    with store.write() as conn, pytest.raises(ConflictError, match="lost its claim"):
        claims.settle(conn, "v7", first)  # a released claim cannot register
    claims.release(store, second)
    assert claims.claimed_ids(store) == set()


def test_a_claim_left_by_a_dead_process_is_taken_back_only_when_that_is_known(any_workspace):
    store = open_store(any_workspace)
    _dies_holding("here")
    claims.take(store, "here")  # same host, process gone: taken back at once

    # Another host sharing the store: its pid says nothing here, so the claim holds until its lease lapses.
    _dies_holding("elsewhere", host="replica-b.internal")
    with pytest.raises(ConflictError, match="on replica-b.internal"):
        claims.take(store, "elsewhere")


def test_a_lapsed_lease_is_taken_over_and_the_old_holder_cannot_register(any_workspace, monkeypatch):
    store = open_store(any_workspace)
    with monkeypatch.context() as patched:
        patched.setattr(leases, "this_host", lambda: "replica-b.internal")
        stalled = claims.take(store, "v3", lease_seconds=0.0)  # a holder that stopped renewing
    fresh = claims.take(store, "v3")
    with store.write() as conn, pytest.raises(ConflictError, match="lost its claim"):
        claims.settle(conn, "v3", stalled)
    with store.write() as conn:
        claims.settle(conn, "v3", fresh)
    assert claims.claimed_ids(store) == set()
