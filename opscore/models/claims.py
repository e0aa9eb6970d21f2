"""Claims on version ids being trained, so two trainings of one id can never both write it.

A training claims its id in the store, in a transaction of its own, before it does any work. While it
runs a thread renews the claim's lease; the claim turns into the version row in the transaction that
registers the version (:func:`opscore.models.registry.insert_version`), or is released on failure.
While a claim holds, a second training of that id is refused by name and the first one's folder is
never touched. A claim left by a training that died is taken over once its lease lapsed, or at once
when it ran on this host and its process is gone (see :mod:`opscore.models.leases`). Lease times
come from the database's clock, which every host sharing the store agrees on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError as DuplicateKey

from opscore.exceptions import ConflictError, OpscoreError
from opscore.models.leases import Holder, hold_lapsed
from opscore.store import Store, version_claims, versions

log = logging.getLogger(__name__)

# A training renews its claim every third of this; a claim not renewed for this long is taken back.
LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class VersionClaim:
    """This process's claim on one version id; ``token`` tells it apart from any later claim."""

    version_id: str
    token: str
    holder: Holder
    lease_seconds: float = LEASE_SECONDS


def _now(conn: Connection) -> float:
    """The store's time: on a shared PostgreSQL, the one clock all hosts read; SQLite is local anyway."""
    if conn.dialect.name == "sqlite":
        return time.time()
    return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())


def _busy(version_id: str, row: Any, now: float) -> ConflictError:
    holder = Holder(row.host, row.pid)
    started = max(0.0, now - row.claimed_at)
    return ConflictError(
        f"version {version_id!r} is being trained right now ({holder}, started {started:.0f} s ago); "
        "pick another id (versions are immutable)"
    )


def take(store: Store, version_id: str, *, lease_seconds: float = LEASE_SECONDS) -> VersionClaim:
    """Claim ``version_id`` for one training, or raise ConflictError naming it (taken or being trained)."""
    claim = VersionClaim(version_id, uuid.uuid4().hex, Holder.me(), lease_seconds)
    try:
        with store.write() as conn:
            now = _now(conn)
            # The claim is read before the version: a training that registers deletes its claim and
            # inserts its version in one commit, so whichever of the two reads comes later sees it.
            row = conn.execute(select(version_claims).where(version_claims.c.version_id == version_id)).first()
            if conn.execute(select(versions.c.version_id).where(versions.c.version_id == version_id)).first():
                raise ConflictError(f"version {version_id!r} already exists; pick a new id (versions are immutable)")
            if row is not None:
                if not hold_lapsed(Holder(row.host, row.pid), row.expires_at, now):
                    raise _busy(version_id, row, now)
                log.warning("taking over the claim on %r left by %s (lease lapsed)", version_id, Holder(row.host, row.pid))
                taken_back = conn.execute(delete(version_claims).where(
                    version_claims.c.version_id == version_id, version_claims.c.token == row.token)).rowcount
                if taken_back != 1:
                    raise _busy(version_id, row, now)
            conn.execute(insert(version_claims).values(
                version_id=version_id, token=claim.token, host=claim.holder.host, pid=claim.holder.pid,
                claimed_at=now, expires_at=now + lease_seconds))
    except DuplicateKey as exc:
        raise ConflictError(f"version {version_id!r} was claimed by another training at the same moment; "
                            "pick another id") from exc
    return claim


def renew(store: Store, claim: VersionClaim) -> bool:
    """Push the claim's lease forward; False when it is no longer this claim's."""
    with store.write() as conn:
        return conn.execute(
            update(version_claims)
            .where(version_claims.c.version_id == claim.version_id, version_claims.c.token == claim.token)
            .values(expires_at=_now(conn) + claim.lease_seconds)
        ).rowcount == 1


def release(store: Store, claim: VersionClaim) -> None:
    """Give the id back (a training that failed); nothing happens if the claim already turned into a version."""
    with store.write() as conn:
        conn.execute(delete(version_claims).where(
            version_claims.c.version_id == claim.version_id, version_claims.c.token == claim.token))


def settle(conn: Connection, version_id: str, claim: VersionClaim | None) -> None:
    """Inside the transaction that registers ``version_id``: consume its claim, or refuse.

    Without a claim, registering is refused while someone else's training holds the id.
    """
    if claim is None:
        row = conn.execute(select(version_claims).where(version_claims.c.version_id == version_id)).first()
        now = _now(conn)
        if row is not None and not hold_lapsed(Holder(row.host, row.pid), row.expires_at, now):
            raise _busy(version_id, row, now)
        return
    consumed = conn.execute(delete(version_claims).where(
        version_claims.c.version_id == version_id, version_claims.c.token == claim.token)).rowcount
    if consumed != 1:
        raise ConflictError(
            f"the training of {version_id!r} lost its claim on the id (not renewed for {claim.lease_seconds:.0f} s, "
            "so another training took it over); nothing was registered"
        )


def claimed_ids(store: Store) -> set[str]:
    """Ids whose training is under way (claims whose lease holds)."""
    with store.read() as conn:
        now = _now(conn)
        rows = conn.execute(select(version_claims)).all()
    return {r.version_id for r in rows if not hold_lapsed(Holder(r.host, r.pid), r.expires_at, now)}


def _keep_renewing(store: Store, claim: VersionClaim, stop: threading.Event) -> None:
    while not stop.wait(claim.lease_seconds / 3):
        try:
            if not renew(store, claim):
                log.error("the claim on %r was taken over; this training will not be registered", claim.version_id)
                return
        except OpscoreError as exc:  # a store blip: the next renewal may get through before the lease lapses
            log.warning("could not renew the claim on %r: %s", claim.version_id, exc)


@contextmanager
def held(store: Store, version_id: str, *, lease_seconds: float = LEASE_SECONDS) -> Iterator[VersionClaim]:
    """Claim ``version_id``, keep the claim alive while the block runs, release it if still held after."""
    claim = take(store, version_id, lease_seconds=lease_seconds)
    stop = threading.Event()
    renewer = threading.Thread(target=_keep_renewing, args=(store, claim, stop), daemon=True,
                               name=f"claim-{version_id}")
    renewer.start()
    try:
        yield claim
    finally:
        stop.set()
        renewer.join(timeout=30)
        try:
            release(store, claim)
        except OpscoreError as exc:  # the lease lapses on its own; never hide the block's own outcome
            log.warning("could not release the claim on %r: %s", version_id, exc)
