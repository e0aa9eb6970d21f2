"""API tokens: which caller may use which mutating route, by name and scope, rotatable while serving.

Two scopes: ``feedback`` sends labels to ``/feedback``; ``admin`` may use every mutating route and
implies ``feedback``. Tokens added with ``opscore tokens add`` live in ``tokens.json`` in the secrets
folder as name, scopes and the sha256 of the value; the value is shown once and never stored. Two
admin tokens exist outside that file: ``OPSCORE_ADMIN_TOKEN`` (named ``env``) and, when no admin
token is configured anywhere, one generated at the service's first start and kept in clear in
``admin_token`` (0600) so tools on the same machine can use it (named ``generated``).

A running service reads the two small files on each authorisation and parses them again when they
changed, so a token added or revoked takes effect at the next request, without a restart. The ledger names the token that
moved an alias (``http:<name>``), never its value.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opscore.access.actors import Actor
from opscore.access.private_files import TOKEN_FILE, TOKENS_FILE, Generated, secrets_dir, write_private
from opscore.config import Settings
from opscore.exceptions import (
    BadInputError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    Unauthenticated,
)

FEEDBACK, ADMIN = "feedback", "admin"
SCOPES = (FEEDBACK, ADMIN)
ENV_NAME, GENERATED_NAME = "env", "generated"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class ApiToken:
    """One token as the service knows it: its name, scopes and the sha256 of its value."""

    name: str
    scopes: tuple[str, ...]
    sha256: str
    source: str  # where it is configured: the tokens file, OPSCORE_ADMIN_TOKEN, or the generated file
    created_at: float | None = None
    created_by: str = ""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scopes": list(self.scopes), "source": self.source,
                "created_at": self.created_at, "created_by": self.created_by}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _tokens_path(settings: Settings) -> Path:
    return secrets_dir(settings) / TOKENS_FILE


def _generated_path(settings: Settings) -> Path:
    return secrets_dir(settings) / TOKEN_FILE


def _read_generated(settings: Settings) -> str | None:
    path = _generated_path(settings)
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def local_admin_token(settings: Settings) -> str | None:
    """The admin token a tool on this machine uses when given none: ``OPSCORE_ADMIN_TOKEN``, else the generated one."""
    return settings.admin_token or _read_generated(settings)


def _read_file(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        entries = json.loads(text)["tokens"]
        for entry in entries:
            if not (isinstance(entry["name"], str) and isinstance(entry["sha256"], str)
                    and set(entry["scopes"]) <= set(SCOPES)):
                raise ValueError(entry.get("name"))
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path} is damaged ({exc!r}); restore it from a backup or remove it and add the "
                             "tokens again with `opscore tokens add`") from exc
    return entries


def list_tokens(settings: Settings) -> list[ApiToken]:
    """Every token the service accepts now: the environment's, the generated one, then the file's."""
    found = []
    if settings.admin_token:
        found.append(ApiToken(ENV_NAME, (ADMIN,), _digest(settings.admin_token), "OPSCORE_ADMIN_TOKEN"))
    else:
        generated = _read_generated(settings)
        if generated:
            found.append(ApiToken(GENERATED_NAME, (ADMIN,), _digest(generated), str(_generated_path(settings))))
    path = _tokens_path(settings)
    found += [ApiToken(e["name"], tuple(e["scopes"]), e["sha256"], str(path), e.get("created_at"),
                       e.get("created_by", "")) for e in _read_file(path)]
    return found


def ensure_admin_token(settings: Settings) -> Generated:
    """At the service's first start, with no admin token anywhere, generate one; returned once only."""
    path = _generated_path(settings)
    if any(ADMIN in t.scopes for t in list_tokens(settings)):
        return Generated(None, path)
    value = secrets.token_urlsafe(32)
    # Two replicas starting at once: the first writer wins and only it shows the token.
    return Generated(value if write_private(path, value, overwrite=False) else None, path)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[Path]:
    """Serialise changes to the tokens file across processes (read, change, replace)."""
    path = _tokens_path(settings)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(lock)  # releases the lock


def _write_file(path: Path, entries: list[dict[str, Any]]) -> None:
    write_private(path, json.dumps({"tokens": entries}, indent=1) + "\n", overwrite=True)


def add_token(settings: Settings, actor: Actor, name: str, scope: str) -> str:
    """Add a token named ``name`` with ``scope``; returns its value, which is never stored or shown again."""
    actor.require_operator("adding an API token")
    if not _NAME.fullmatch(name or ""):
        raise BadInputError(f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                            "letter or digit")
    if name in (ENV_NAME, GENERATED_NAME):
        raise BadInputError(f"token name {name!r} is reserved for the {'environment' if name == ENV_NAME else 'generated'}"
                            " admin token; choose another")
    if scope not in SCOPES:
        raise BadInputError(f"scope {scope!r}: use feedback or admin (admin includes feedback)")
    value = secrets.token_urlsafe(32)
    with _locked(settings) as path:
        entries = _read_file(path)
        if any(e["name"] == name for e in entries):
            raise ConflictError(f"a token named {name!r} already exists; revoke it first or choose another name")
        entries.append({"name": name, "scopes": [scope], "sha256": _digest(value), "created_at": time.time(),
                        "created_by": str(actor)})
        _write_file(path, entries)
    return value


def revoke_token(settings: Settings, actor: Actor, name: str) -> None:
    """Remove the token named ``name``; a running service refuses it from its next request."""
    actor.require_operator("revoking an API token")
    if name == ENV_NAME:
        raise BadInputError("the token named env is OPSCORE_ADMIN_TOKEN: unset or change it where the service "
                            "starts, then restart the service")
    if name == GENERATED_NAME and not settings.admin_token:
        path = _generated_path(settings)
        if path.exists():
            path.unlink()
            return
    with _locked(settings) as path:
        entries = _read_file(path)
        kept = [e for e in entries if e["name"] != name]
        if len(kept) == len(entries):
            known = ", ".join(t.name for t in list_tokens(settings)) or "none"
            raise NotFoundError(f"no token named {name!r} (known: {known})")
        _write_file(path, kept)


def _contents(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class TokenBook:
    """The tokens a running service accepts, re-read whenever their files change."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._seen: tuple[object, ...] | None = None
        self._tokens: list[ApiToken] = []

    def _current(self) -> list[ApiToken]:
        # Reading two small files is cheap next to a request, and unlike a modification time it
        # never misses a change made within the file system's timestamp granularity.
        seen = (_contents(_tokens_path(self._settings)), _contents(_generated_path(self._settings)))
        with self._lock:
            if seen != self._seen:
                self._tokens = list_tokens(self._settings)
                self._seen = seen
            return self._tokens

    def authorize(self, presented: str | None, scope: str) -> Actor:
        """The actor behind ``presented`` if it may act in ``scope``; 401 unknown, 403 known but not allowed."""
        if not presented:
            raise Unauthenticated(f"this route changes state: send Authorization: Bearer <token> with the {scope} scope")
        digest = _digest(presented)
        # Compare against every token, so the time taken does not tell which one nearly matched.
        matches = [t for t in self._current() if hmac.compare_digest(t.sha256, digest)]
        if not matches:
            raise Unauthenticated("the bearer token is not one this service knows (revoked, mistyped, or from "
                                  "another workspace)")
        token = matches[0]
        if not token.allows(scope):
            raise PermissionDenied(f"token {token.name!r} has the {', '.join(token.scopes)} scope; this needs {scope}")
        return Actor(token.name, "operator" if ADMIN in token.scopes else "feedback", "http")
