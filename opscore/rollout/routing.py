"""The traffic split every serving replica follows, kept in the store's ``routing`` table.

A split names, beside production (whatever the alias holds), a candidate answering ``weight`` of the
requests (canary) and a shadow receiving a copy of ``share`` of them (its answers are logged, never
returned). Each change bumps the row's generation; replicas poll it as they poll the alias, so all of
them apply a change within ``alias_poll_seconds``. Assignment is a hash of the deployment and the
request's key: the same key always meets the same version, and a key that reached the candidate at 5 %
still reaches it at 25 %. Versions are loaded by the follower before it publishes a new split, so a
request never waits for a load; a version that cannot be loaded sends its traffic to production.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.store import Store, open_store, routing

log = logging.getLogger(__name__)

SCOPE = "serving"
PRODUCTION, CANDIDATE, SHADOW = "production", "candidate", "shadow"
_SCALE = float(2**64)


@dataclass(frozen=True)
class Split:
    """Who answers what: production, plus a weighted candidate and a shadow copy, for one deployment."""

    deployment_id: str | None = None
    candidate: str | None = None
    weight: float = 0.0
    shadow: str | None = None
    share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("weight", "share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInputError(f"routing {name} must be between 0 and 1, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        return cls(**{k: data.get(k, v) for k, v in asdict(cls()).items()})

    def role_for(self, key: str) -> str:
        """The role answering the request with ``key``: candidate for ``weight`` of all keys, else production."""
        if self.candidate is None or self.weight <= 0.0:
            return PRODUCTION
        return CANDIDATE if assignment(self.deployment_id, key, CANDIDATE) < self.weight else PRODUCTION

    def shadows(self, key: str) -> bool:
        """Whether the request with ``key`` is copied to the shadow version."""
        if self.shadow is None or self.share <= 0.0:
            return False
        return assignment(self.deployment_id, key, SHADOW) < self.share


NO_SPLIT = Split()


def assignment(deployment_id: str | None, key: str, salt: str) -> float:
    """A key's fixed place in [0, 1) for one deployment: the same key always lands in the same place."""
    digest = hashlib.blake2b(f"{deployment_id}\x00{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def read_split(store: Store) -> tuple[Split, int]:
    """The split in force and its generation (no row yet: no split, generation 0)."""
    with store.read() as conn:
        row = conn.execute(select(routing).where(routing.c.scope == SCOPE)).first()
    if row is None:
        return NO_SPLIT, 0
    return Split.from_dict(json.loads(row.split)), int(row.generation)


def write_split(conn: Connection, split: Split, now: float) -> int:
    """Set the split inside the caller's write transaction; returns the new generation."""
    row = conn.execute(select(routing).where(routing.c.scope == SCOPE).with_for_update()).first()
    body = json.dumps(split.to_dict())
    if row is None:
        conn.execute(insert(routing).values(scope=SCOPE, split=body, generation=1, updated_at=now))
        return 1
    generation = int(row.generation) + 1
    conn.execute(update(routing).where(routing.c.scope == SCOPE).values(split=body, generation=generation,
                                                                       updated_at=now))
    return generation


@dataclass(frozen=True)
class Route:
    """A split as one replica applies it: with the candidate and shadow loaded (None: send to production)."""

    split: Split
    generation: int
    candidate: Any = None
    shadow: Any = None
    applied_at: float = 0.0


class RoutingFollower:
    """Keeps this replica's :class:`Route` on the store's split, polling every ``alias_poll_seconds``.

    ``load`` turns a version id into what serving predicts with (``ProductionModel.get``).
    """

    def __init__(self, settings: Settings, load: Callable[[str], Any], poll: bool = True) -> None:
        self._settings = settings
        self._store = open_store(settings)
        self._load = load
        self._route = Route(NO_SPLIT, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.last_error: str | None = None
        self.refresh()
        self._thread: threading.Thread | None = None
        if poll:
            self._thread = threading.Thread(target=self._poll, name="opscore-routing-poll", daemon=True)
            self._thread.start()

    def current(self) -> Route:
        return self._route

    def refresh(self) -> bool:
        """Apply the store's split if its generation moved; True when it did."""
        with self._lock:
            split, generation = read_split(self._store)
            if generation <= self._route.generation:
                return False
            candidate = self._loaded(split.candidate, split.weight)
            shadow = self._loaded(split.shadow, split.share)
            self._route = Route(split, generation, candidate, shadow, time.time())
            return True

    def _loaded(self, version_id: str | None, amount: float) -> Any:
        if version_id is None or amount <= 0.0:
            return None
        try:
            return self._load(version_id)
        except Exception as exc:  # noqa: BLE001 - an unloadable version gets no traffic; production answers
            self.last_error = f"could not load {version_id!r} for routing: {exc}"
            log.error("%s; its share goes to production", self.last_error)
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self._settings.alias_poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a store blip must not stop following
                self.last_error = str(exc)
