"""Files only the workspace's owner may read: the secrets folder, its files, and how they are written.

Secrets live in a folder of their own (``secrets_dir``, default ``.opscore/`` under the workspace),
mode 0700, each file 0600, away from ``metrics/`` and the database beside it. A workspace made by an
older opscore kept them in ``metrics/``; the first call here moves them over. A secret is written
through a unique temporary file in the same folder, then linked (the first writer wins) or renamed
into place, so a reader never sees half a file, whichever thread or process writes at the same time.
Files that others can read are reported once per process, with the command that fixes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from opscore.config import Settings

log = logging.getLogger(__name__)

TOKEN_FILE = "admin_token"
PASSWORD_FILE = "operator_password.json"
TOKENS_FILE = "tokens.json"
SECRET_FILES = (TOKEN_FILE, PASSWORD_FILE, TOKENS_FILE)
# Before secrets had a folder of their own they sat beside the database, with the demo's marker.
_LEGACY_DIR = Path("metrics")
_LEGACY_FILES = (TOKEN_FILE, PASSWORD_FILE, "demo_workspace.json")
_DEFAULT_DIR = Settings.secrets_dir

_warned: set[Path] = set()


@dataclass(frozen=True)
class Generated:
    """A secret created on this call (show it once), or None when it already existed."""

    value: str | None
    path: Path


def private_dir(path: Path) -> Path:
    """``path`` as a folder, created owner-only (0700) when it does not exist yet."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
            path.chmod(0o700)  # whatever the umask
    return path


def secrets_dir(settings: Settings) -> Path:
    """The workspace's secrets folder, owner-only; secrets an older opscore left in ``metrics/`` move here."""
    folder = private_dir(settings.secrets_path)
    if settings.secrets_dir == _DEFAULT_DIR:
        legacy = settings.workspace / _LEGACY_DIR
        for name in _LEGACY_FILES:
            if (legacy / name).is_file() and not (folder / name).exists():
                _move(legacy / name, folder / name)
    return folder


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except FileNotFoundError:
        return  # another process moved it first
    except OSError:
        # Another filesystem: copy it privately, then let go of the old place.
        write_private(target, source.read_text(), overwrite=False)
        source.unlink(missing_ok=True)
    target.chmod(0o600)


def write_private(path: Path, text: str, *, overwrite: bool) -> bool:
    """Write ``text`` to ``path`` (0600) whole or not at all.

    ``overwrite`` False: the first writer wins and later ones return False, leaving the file alone
    (two processes generating a secret at once agree on one). True: the last writer wins.
    """
    private_dir(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _database_file(settings: Settings) -> Path | None:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def exposed_files(settings: Settings) -> list[Path]:
    """Secrets and the SQLite database that users other than the owner can read or write."""
    folder = secrets_dir(settings)
    candidates = [folder / name for name in SECRET_FILES]
    database = _database_file(settings)
    if database is not None:
        candidates.append(database)
    return [p for p in candidates if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077]


def warn_exposed_files(settings: Settings) -> list[Path]:
    """Log and print (once per process and file) each private file that others can read."""
    exposed = exposed_files(settings)
    for path in exposed:
        if path in _warned:
            continue
        _warned.add(path)
        what = "holds every logged prediction and label" if path.suffix == ".db" else "is a secret"
        message = (f"{path} can be read by other users ({stat.filemode(path.stat().st_mode)}) and {what}; "
                   f"fix it with: chmod 600 {path}")
        log.warning(message)
        print(f"opscore: warning: {message}", file=sys.stderr, flush=True)
    return exposed
