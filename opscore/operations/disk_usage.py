"""Disk used by the workspace: the model store, the database, and what each review measured before.

Each infrastructure review records its figures in ``disk_usage`` so the next one reports growth
against a measurement, and the days until the disk is full from the rate between the two.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from opscore.config import Settings
from opscore.store import disk_usage, open_store


@dataclass(frozen=True)
class DiskUsage:
    measured_at: float
    model_store_bytes: int
    database_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.model_store_bytes + self.database_bytes


def folder_bytes(path: Path) -> int:
    """Bytes in the files under ``path`` (0 when it does not exist)."""
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def database_bytes(settings: Settings) -> int:
    """The SQLite file with its WAL and shared-memory files, or PostgreSQL's ``pg_database_size``."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        base = Path(url.database or "")
        return sum(p.stat().st_size for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.is_file())
    with open_store(settings).read() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def measure(settings: Settings, now: float) -> DiskUsage:
    return DiskUsage(now, folder_bytes(settings.model_store_path), database_bytes(settings))


def previous(settings: Settings, before: float) -> DiskUsage | None:
    """The latest recorded measurement taken before ``before``."""
    query = select(disk_usage).where(disk_usage.c.measured_at < before).order_by(disk_usage.c.measured_at.desc()).limit(1)
    with open_store(settings).read() as conn:
        row = conn.execute(query).first()
    return None if row is None else DiskUsage(row.measured_at, row.model_store_bytes, row.database_bytes)


def record(settings: Settings, usage: DiskUsage) -> None:
    with open_store(settings).write() as conn:
        conn.execute(insert(disk_usage).values(measured_at=usage.measured_at, model_store_bytes=usage.model_store_bytes,
                                               database_bytes=usage.database_bytes))


def free_bytes(settings: Settings) -> tuple[int, int]:
    """Free and total bytes of the filesystem holding the model store."""
    path = settings.model_store_path
    while not path.exists():
        path = path.parent
    usage = shutil.disk_usage(path)
    return usage.free, usage.total
