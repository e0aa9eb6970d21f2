"""Backups of a workspace: a consistent copy of the store and the model store, checked before restoring.

The database is copied while it is in use: SQLite through its online backup API (a snapshot taken
under one read transaction; copying the file of a WAL database would miss what the WAL holds), and
PostgreSQL with ``pg_dump`` (refused, with the reason, when ``pg_dump`` is not installed). The database
is copied first and the model store after it: a version folder is complete before its registry row
exists, so every version in the copied database finds its folder. A manifest lists each file's sha256
and is written last, so a backup without one is unfinished. A restore refuses a backup whose files do
not match their checksums (naming the file) and never replaces a workspace that holds anything
without ``force``; even then the model store it replaces is moved aside, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, ConflictError, IntegrityError
from opscore.models.artifacts import STAGING
from opscore.store import SCHEMA_VERSION, backups, dispose_stores, open_store, predictions, versions

MANIFEST = "manifest.json"
SQLITE_COPY = "store.sqlite"
POSTGRES_COPY = "store.pgdump"
MODEL_STORE_COPY = "model_store"
Progress = Callable[[str, float], None]


def _no_progress(_stage: str, _fraction: float) -> None:
    return None


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds: when, from which kind of store, and each file's sha256 and size."""

    created_at: float
    database: str
    schema_version: int
    versions: int
    predictions: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    folder: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"created_at": self.created_at, "database": self.database, "schema_version": self.schema_version,
                "versions": self.versions, "predictions": self.predictions, "files": self.files}

    @property
    def total_bytes(self) -> int:
        return sum(int(entry["bytes"]) for entry in self.files.values())

    def summary(self) -> str:
        return (f"{len(self.files)} files, {self.total_bytes / 1e6:.1f} MB: {self.versions} versions and "
                f"{self.predictions:,} logged predictions from the {self.database} store")


@dataclass(frozen=True)
class RestoreOutcome:
    manifest: BackupManifest
    replaced_model_store: Path | None

    def summary(self) -> str:
        moved = f"; the model store it replaced is kept at {self.replaced_model_store}" if self.replaced_model_store else ""
        return f"restored {self.manifest.summary()}{moved}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sqlite_path(settings: Settings) -> Path | None:
    url = make_url(settings.database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def _libpq_url(settings: Settings) -> str:
    """The SQLAlchemy URL as pg_dump reads it (no driver suffix)."""
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _require_pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BadInputError(f"the store is PostgreSQL and {name} is not installed here; install the PostgreSQL "
                            f"client tools (e.g. apt-get install postgresql-client) and run this again")
    return found


def _copy_database(settings: Settings, folder: Path) -> str:
    source = _sqlite_path(settings)
    if source is not None:
        target = folder / SQLITE_COPY
        with sqlite3.connect(source, timeout=30) as live, sqlite3.connect(target) as copy:
            live.backup(copy)
        live.close()
        copy.close()
        return SQLITE_COPY
    pg_dump = _require_pg_tool("pg_dump")
    target = folder / POSTGRES_COPY
    done = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={target}",
                           _libpq_url(settings)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BadInputError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
    return POSTGRES_COPY


def _store_counts(settings: Settings) -> tuple[int, int]:
    store = open_store(settings)
    with store.read() as conn:
        return (int(conn.execute(select(func.count()).select_from(versions)).scalar_one()),
                int(conn.execute(select(func.count()).select_from(predictions)).scalar_one()))


def _model_store_files(root: Path) -> list[Path]:
    """Every file of the model store except writes in progress (``.staging``) and temporary files."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and STAGING not in p.relative_to(root).parts and not p.name.endswith(".tmp"))


def backup(settings: Settings, target: Path, actor: Actor, *, progress: Progress = _no_progress,
           clock: Callable[[], float] = time.time) -> BackupManifest:
    """Write a consistent copy of the workspace to ``target`` (absent or empty), manifest last."""
    actor.require_operator("taking a backup")
    target = Path(target).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConflictError(f"{target} is not an empty folder; back up into a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir(mode=0o700)
    try:
        started = clock()
        versions_count, predictions_count = _store_counts(settings)
        progress("copying the database", 0.05)
        database_file = _copy_database(settings, partial)
        root = settings.model_store_path
        files = _model_store_files(root)
        for index, path in enumerate(files):
            copy = partial / MODEL_STORE_COPY / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
            progress("copying the model store", 0.3 + 0.5 * (index + 1) / len(files))
        progress("writing checksums", 0.85)
        entries = {}
        for path in sorted(p for p in partial.rglob("*") if p.is_file()):
            name = path.relative_to(partial).as_posix()
            entries[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        manifest = BackupManifest(started, "sqlite" if database_file == SQLITE_COPY else "postgresql",
                                  SCHEMA_VERSION, versions_count, predictions_count, entries)
        _write_json(partial / MANIFEST, manifest.to_dict())
        if target.exists():
            target.rmdir()
        os.rename(partial, target)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    with open_store(settings).write() as conn:
        conn.execute(insert(backups).values(taken_at=started, folder=str(target), bytes=manifest.total_bytes,
                                            files=len(entries), actor=str(actor)))
    progress("done", 1.0)
    return BackupManifest(**{**manifest.__dict__, "folder": target})


@dataclass(frozen=True)
class RestoreCheck:
    """A backup restored into a scratch workspace and compared with what it was taken from."""

    manifest: BackupManifest
    versions: int
    predictions: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_by_restoring(settings: Settings, source: Path, scratch: Path) -> RestoreCheck:
    """Restore ``source`` into an empty SQLite workspace under ``scratch`` and check what came back.

    Every version must be there with its checksum, its artifact must load, and the predictions the
    manifest counted must all be present. A PostgreSQL backup is restored only by a drill with a
    scratch database of its own, so here it is checked by its checksums alone.
    """
    from opscore.config import replace
    from opscore.models import registry

    manifest = verify_backup(source)
    if manifest.database != "sqlite":
        return RestoreCheck(manifest, manifest.versions, manifest.predictions,
                            [] if manifest.files else ["the backup lists no files"])
    scratch_settings = replace(settings, workspace=Path(scratch), model_store=Path("model_store"), db_url="")
    restore(scratch_settings, source, _RESTORER)
    problems = []
    store = open_store(scratch_settings)
    restored = registry.list_versions(store)
    for info in restored:
        try:
            registry.load_version_model(scratch_settings, info)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding of the check, whatever its kind
            problems.append(f"version {info.version_id} does not load from the restored model store: {exc}")
    if len(restored) != manifest.versions:
        problems.append(f"{len(restored)} versions restored, the backup counted {manifest.versions}")
    with store.read() as conn:
        logged = int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())
    if logged < manifest.predictions:
        problems.append(f"{logged:,} predictions restored, the backup counted {manifest.predictions:,}")
    dispose_stores()
    if not problems:
        with open_store(settings).write() as conn:
            conn.execute(update(backups).where(backups.c.folder == str(Path(source).resolve()))
                         .values(verified_at=time.time()))
    return RestoreCheck(manifest, len(restored), logged, problems)


def backups_taken(settings: Settings) -> list[dict[str, Any]]:
    """Every backup recorded in this workspace, newest first."""
    with open_store(settings).read() as conn:
        rows = conn.execute(select(backups).order_by(backups.c.taken_at.desc())).all()
    return [dict(row._mapping) for row in rows]


_RESTORER = Actor("restore-check", "system", "system")


def _write_json(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def verify_backup(source: Path) -> BackupManifest:
    """The backup's manifest once every file it lists matches its sha256; names the first file that does not."""
    source = Path(source)
    try:
        document = json.loads((source / MANIFEST).read_text())
        manifest = BackupManifest(**document, folder=source)
    except FileNotFoundError:
        raise BadInputError(f"{source} has no {MANIFEST}: not an opscore backup, or one that never finished") from None
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"{source / MANIFEST} cannot be read: {exc}") from exc
    for name, entry in manifest.files.items():
        path = source / name
        if not path.is_file():
            raise IntegrityError(f"backup file {name} is missing from {source}")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise IntegrityError(f"backup file {name} does not match its checksum (manifest sha256 "
                                 f"{entry['sha256'][:12]}…, file {actual[:12]}…); refusing to restore it")
    listed = set(manifest.files) | {MANIFEST}
    unlisted = sorted(p.relative_to(source).as_posix() for p in source.rglob("*")
                      if p.is_file() and p.relative_to(source).as_posix() not in listed)
    if unlisted:
        raise IntegrityError(f"backup holds file(s) its manifest does not list: {', '.join(unlisted[:5])}")
    if manifest.schema_version > SCHEMA_VERSION:
        raise IntegrityError(f"the backup's schema version is {manifest.schema_version}, newer than this opscore "
                             f"understands ({SCHEMA_VERSION}); restore it with a newer opscore")
    return manifest


def workspace_holds_data(settings: Settings) -> bool:
    """True when the store has a version or a logged prediction, or the model store a version folder."""
    versions_count, predictions_count = _store_counts(settings)
    root = settings.model_store_path
    folders = root.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())
    return bool(versions_count or predictions_count or folders)


def restore(settings: Settings, source: Path, actor: Actor, *, force: bool = False,
            progress: Progress = _no_progress) -> RestoreOutcome:
    """Restore the backup in ``source`` into this workspace, after checking every file's checksum."""
    actor.require_operator("restoring a backup")
    progress("checking checksums", 0.0)
    manifest = verify_backup(source)
    is_sqlite = _sqlite_path(settings) is not None
    if (manifest.database == "sqlite") != is_sqlite:
        raise BadInputError(f"the backup holds a {manifest.database} store and this workspace uses "
                            f"{'sqlite' if is_sqlite else 'postgresql'}; restore it into a workspace of the same kind")
    if workspace_holds_data(settings) and not force:
        raise ConflictError("this workspace already holds versions or predictions; restore into an empty workspace, "
                            "or pass --force to replace it (its model store is moved aside, not deleted)")
    progress("restoring the model store", 0.2)
    replaced = _restore_model_store(settings, Path(source) / MODEL_STORE_COPY)
    progress("restoring the database", 0.6)
    _restore_database(settings, Path(source))
    dispose_stores()
    progress("done", 1.0)
    return RestoreOutcome(manifest, replaced)


def _restore_model_store(settings: Settings, copy: Path) -> Path | None:
    """Build the restored model store beside the live one, then swap them by renames."""
    root = settings.model_store_path
    root.parent.mkdir(parents=True, exist_ok=True)
    incoming = root.parent / f".{root.name}.restoring-{uuid.uuid4().hex[:8]}"
    if copy.is_dir():
        shutil.copytree(copy, incoming)
    else:
        incoming.mkdir()
    replaced = None
    if root.exists():
        replaced = root.parent / f"{root.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"
        os.rename(root, replaced)
        if not _has_files(replaced):
            shutil.rmtree(replaced)
            replaced = None
    os.rename(incoming, root)
    return replaced


def _has_files(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob("*"))


def _restore_database(settings: Settings, source: Path) -> None:
    dispose_stores()
    live = _sqlite_path(settings)
    if live is not None:
        live.parent.mkdir(parents=True, exist_ok=True)
        # The backup API replaces the live database's pages in one transaction, WAL included.
        with sqlite3.connect(source / SQLITE_COPY) as copy, sqlite3.connect(live, timeout=30) as target:
            copy.backup(target)
        copy.close()
        target.close()
        return
    pg_restore = _require_pg_tool("pg_restore")
    done = subprocess.run([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                           f"--dbname={_libpq_url(settings)}", str(source / POSTGRES_COPY)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BadInputError(f"pg_restore failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
