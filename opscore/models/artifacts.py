"""The model store: immutable version folders written atomically, loaded only when checksums match.

``<model_store>/<version_id>/`` holds the artifact, ``model.sha256``, ``feature_schema.json``,
``reference_profile.json``, ``input_example.json`` and ``fingerprint.txt``. The artifact's file name
says how it is read: ``model.joblib`` (trained versions: joblib loads several times faster than
skops, which matters on a hot swap, see bench/artifacts.py), ``model.skops`` or ``model.pkl``
(registered models, kept in the format they came in). Training data lives apart,
in ``<model_store>/.datasets/<fingerprint>.parquet``, shared by versions trained on the same data.
Everything is written under ``.staging/``, fsynced and renamed into place, so a crash never leaves a
half version where a reader could find it. Each staging folder carries an owner file (host, pid, lease)
whose modification time is its heartbeat: a folder is cleaned up only once its lease lapsed, or when
its writer ran on this host and is gone, since the model store may be shared by several hosts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from opscore.exceptions import BadInputError, ConflictError, IntegrityError, NotFoundError
from opscore.models import model_files
from opscore.models.leases import Holder, hold_lapsed

VERSION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
STAGING = ".staging"
DATASETS = ".datasets"
ARTIFACT = "model.joblib"
ARTIFACT_NAMES = tuple(model_files.STORE_NAMES.values())
OWNER = ".owner.json"
# A staging folder whose owner file was not touched for this long belongs to a writer that stopped.
STAGING_LEASE_SECONDS = 15 * 60.0


def check_version_id(version_id: str) -> str:
    """Refuse ids that could escape the store or collide with its own folders."""
    if not isinstance(version_id, str) or not VERSION_ID.fullmatch(version_id):
        raise BadInputError(
            f"version id {version_id!r} is malformed: use 1-64 of letters, digits, '.', '_' and '-'"
        )
    if version_id.startswith("."):
        raise BadInputError(f"version id {version_id!r} is malformed: it may not start with '.' (reserved for the store's own folders)")
    return version_id


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _staging_dir(root: Path) -> Path:
    """A fresh staging folder holding its owner file; touch the owner file to renew the lease."""
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    holder = Holder.me()
    path = staging / f"{holder.host}-{holder.pid}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    owner = {"host": holder.host, "pid": holder.pid, "lease_seconds": STAGING_LEASE_SECONDS}
    (path / OWNER).write_text(json.dumps(owner))
    return path


def _renew(staging: Path) -> None:
    os.utime(staging / OWNER)


def dump_model(model: Any, artifact_name: str = ARTIFACT) -> bytes:
    """Serialise ``model`` in the format its artifact name says."""
    if artifact_name == model_files.STORE_NAMES["skops"]:
        return model_files.dump_skops(model)
    if artifact_name != ARTIFACT:
        raise BadInputError(f"opscore writes model.joblib or model.skops, not {artifact_name!r}")
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def write_version(root: Path, version_id: str, model: Any, documents: dict[str, Any], *,
                  artifact_name: str = ARTIFACT, blob: bytes | None = None) -> str:
    """Write a version folder atomically; returns the artifact's sha256.

    ``documents`` maps file names to JSON-serialisable objects written beside the artifact.
    ``blob`` keeps a registered model's bytes exactly as they came (``model`` is then not re-serialised).
    """
    check_version_id(version_id)
    if artifact_name not in ARTIFACT_NAMES:
        raise BadInputError(f"unknown artifact name {artifact_name!r}; expected one of {', '.join(ARTIFACT_NAMES)}")
    final = root / version_id
    if final.exists():
        raise ConflictError(f"model store already has a folder for {version_id!r}; version ids are never reused")
    blob = dump_model(model, artifact_name) if blob is None else blob
    digest = sha256_bytes(blob)
    staging = _staging_dir(root)
    try:
        _write_file(staging / artifact_name, blob)
        _renew(staging)
        _write_file(staging / "model.sha256", f"{digest}  {artifact_name}\n".encode())
        for name, document in documents.items():
            _renew(staging)
            _write_file(staging / name, json.dumps(document, indent=1, default=str).encode())
        # Removing the owner file touches the folder, so it still reads as fresh until the rename.
        (staging / OWNER).unlink()
        _fsync_dir(staging)
        try:
            os.rename(staging, final)
        except OSError as exc:
            raise ConflictError(f"model store already has a folder for {version_id!r}") from exc
        _fsync_dir(root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return digest


def write_dataset(root: Path, fingerprint: str, frame: pd.DataFrame) -> Path:
    """Keep a version's training data (once per fingerprint), written atomically."""
    folder = root / DATASETS
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{fingerprint}.parquet"
    if final.exists():
        return final
    temporary = folder / f".{fingerprint}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    frame.to_parquet(temporary, index=False, engine="pyarrow")
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    _fsync_dir(folder)
    return final


def read_dataset(root: Path, fingerprint: str) -> pd.DataFrame:
    path = root / DATASETS / f"{fingerprint}.parquet"
    if not path.exists():
        raise NotFoundError(f"training data {fingerprint[:12]}… is not in the model store")
    return pd.read_parquet(path, engine="pyarrow")


def read_document(root: Path, version_id: str, name: str) -> Any:
    path = root / check_version_id(version_id) / name
    if not path.exists():
        raise NotFoundError(f"version {version_id!r} has no {name} in the model store")
    return json.loads(path.read_text())


def artifact_path(root: Path, version_id: str) -> Path:
    """The one artifact in a version folder (its name says its format)."""
    folder = root / check_version_id(version_id)
    found = [folder / name for name in ARTIFACT_NAMES if (folder / name).exists()]
    if not found:
        raise NotFoundError(f"version {version_id!r} has no artifact in the model store ({folder / ARTIFACT})")
    if len(found) > 1:
        raise IntegrityError(f"version {version_id!r} has more than one artifact ({', '.join(p.name for p in found)}); refusing to guess")
    return found[0]


def load_model(root: Path, version_id: str, expected_sha256: str, trusted_types: Sequence[str] = ()) -> Any:
    """Load a version's artifact only after its bytes match the registry's checksum.

    A skops artifact is also checked for types: beyond scikit-learn, numpy and scipy only
    ``trusted_types`` (what the operator trusted at registration, kept in the registry) are built.
    """
    path = artifact_path(root, version_id)
    blob = path.read_bytes()
    actual = sha256_bytes(blob)
    if actual != expected_sha256:
        raise IntegrityError(
            f"checksum mismatch for version {version_id!r}: the registry records sha256 {expected_sha256[:12]}…, "
            f"the artifact on disk has {actual[:12]}…; refusing to load it"
        )
    try:
        return model_files.load_artifact(blob, path.name, trusted_types)
    except BadInputError as exc:
        raise IntegrityError(f"version {version_id!r} cannot be loaded: {exc}") from exc


def remove_stale_staging(root: Path) -> int:
    """Delete staging folders whose writer stopped (lease lapsed, or gone from this host); returns how many.

    Folders being deleted already (``orphan-*``) are finished off. A folder without an owner file
    (written by an older opscore, or about to be renamed into place) counts as fresh for one lease
    after its last change.
    """
    staging = root / STAGING
    if not staging.is_dir():
        return 0
    removed = 0
    now = time.time()
    for entry in staging.iterdir():
        if entry.name.startswith("orphan-") or _staging_lapsed(entry, now):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def _staging_lapsed(entry: Path, now: float) -> bool:
    try:
        owner = json.loads((entry / OWNER).read_text())
        holder, lease = Holder(str(owner["host"]), int(owner["pid"])), float(owner["lease_seconds"])
        return hold_lapsed(holder, (entry / OWNER).stat().st_mtime + lease, now)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no owner file, or one being written: judge by the folder's own last change
    try:
        return now - entry.stat().st_mtime >= STAGING_LEASE_SECONDS
    except FileNotFoundError:
        return False  # renamed into place meanwhile


def delete_orphan_folder(root: Path, version_id: str) -> Path | None:
    """Delete a version folder that no registry row claims (a crash between rename and insert).

    Moved aside first so the deletion is atomic from a reader's point of view; returns where it went.
    """
    folder = root / version_id
    if not folder.exists():
        return None
    target = root / STAGING / f"orphan-{version_id}-{uuid.uuid4().hex[:8]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, target)
    shutil.rmtree(target, ignore_errors=True)
    return target
