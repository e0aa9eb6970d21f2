"""The store creates its schema once, refuses a newer one, and works on both backends."""

from __future__ import annotations

import stat

import pytest
from sqlalchemy import select, update

from opscore.exceptions import IntegrityError
from opscore.store import SCHEMA_VERSION, aliases, dispose_stores, open_store, schema_info


def test_schema_is_created_with_a_version_and_both_aliases(any_workspace):
    store = open_store(any_workspace)
    with store.read() as conn:
        version = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).scalar()
        names = set(conn.execute(select(aliases.c.name)).scalars())
    assert int(version) == SCHEMA_VERSION and names == {"production", "candidate"}


def test_opening_twice_keeps_data(any_workspace):
    store = open_store(any_workspace)
    with store.write() as conn:
        conn.execute(update(aliases).where(aliases.c.name == "candidate").values(generation=5))
    dispose_stores()
    with open_store(any_workspace).read() as conn:
        assert conn.execute(select(aliases.c.generation).where(aliases.c.name == "candidate")).scalar() == 5


def test_a_newer_schema_is_refused_untouched(any_workspace):
    store = open_store(any_workspace)
    with store.write() as conn:
        conn.execute(update(schema_info).values(value=str(SCHEMA_VERSION + 1)))
    dispose_stores()
    with pytest.raises(IntegrityError, match="newer than this opscore"):
        open_store(any_workspace)


def test_sqlite_runs_in_wal_mode(workspace):
    with open_store(workspace).read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_new_sqlite_store_is_private_to_its_owner(workspace):
    store = open_store(workspace)
    with store.write() as conn:
        conn.execute(update(aliases).where(aliases.c.name == "candidate").values(generation=1))
    folder = workspace.workspace / "metrics"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = [p for p in folder.iterdir() if p.name.startswith("opscore.db")]
    assert {p.name for p in written} >= {"opscore.db", "opscore.db-wal"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written), written
