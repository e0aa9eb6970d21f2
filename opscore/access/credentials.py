"""Credentials for the two shells that change state: the HTTP admin token and the operator password.

With nothing configured, the first start generates each secret, stores it in the workspace with
mode 0600 and shows it once; later starts read the stored copy (the password only as a scrypt hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import PermissionDenied

TOKEN_FILE = "admin_token"
PASSWORD_FILE = "operator_password.json"


@dataclass(frozen=True)
class Generated:
    """A secret created on this call (show it once), or None when it already existed."""

    value: str | None
    path: Path


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # link() fails if another process created the file first: the first writer wins.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def admin_token(settings: Settings) -> tuple[str, Generated]:
    """The bearer token for mutating HTTP routes: configured, stored, or generated now."""
    path = settings.secrets_path / TOKEN_FILE
    if settings.admin_token:
        return settings.admin_token, Generated(None, path)
    if path.exists():
        return path.read_text().strip(), Generated(None, path)
    _write_private(path, secrets.token_urlsafe(32))
    token = path.read_text().strip()
    return token, Generated(token, path)


def token_matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


def _hash(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()


def ensure_operator_password(settings: Settings) -> Generated:
    """Make sure an operator password exists; returns it once when generated here."""
    path = settings.secrets_path / PASSWORD_FILE
    if settings.operator_password or path.exists():
        return Generated(None, path)
    password = secrets.token_urlsafe(12)
    salt = secrets.token_bytes(16)
    _write_private(path, json.dumps({"salt": salt.hex(), "scrypt": _hash(password, salt)}))
    stored = json.loads(path.read_text())
    return Generated(password if stored["scrypt"] == _hash(password, bytes.fromhex(stored["salt"])) else None, path)


def check_operator_password(settings: Settings, password: str) -> bool:
    """True when ``password`` is the configured or stored operator password."""
    if settings.operator_password:
        return hmac.compare_digest(settings.operator_password.encode(), password.encode())
    path = settings.secrets_path / PASSWORD_FILE
    if not path.exists():
        return False
    stored = json.loads(path.read_text())
    return hmac.compare_digest(stored["scrypt"], _hash(password, bytes.fromhex(stored["salt"])))


def operator_actor(settings: Settings, name: str, password: str, via: str = "dashboard") -> Actor:
    """Sign an operator in, or refuse with a message that says why."""
    name = name.strip() or "operator"
    if not check_operator_password(settings, password):
        raise PermissionDenied("wrong operator password")
    return Actor(name, "operator", via)


def viewer_actor(via: str = "dashboard") -> Actor:
    return Actor("viewer", "viewer", via)
