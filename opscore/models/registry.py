"""The model registry: versions, the ``production`` and ``candidate`` aliases, and the ledger.

An alias moves only through :func:`move_alias`, which runs the pre-flight check, then moves the
alias and writes its ledger row in one write transaction, refusing if production moved while the
check ran. So the ledger is the complete history (``served_at`` answers which version served at any
moment), and rollback is just another move. No other module writes the alias or ledger tables.

Every move takes its time from a ``clock`` (``time.time`` unless a caller replays a past day, as
the demo does); an alias's ledger times never go backwards, so the ledger's order is its time order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.data.features import FeatureSchema, incompatibilities, validate_records
from opscore.exceptions import ConflictError, NotFoundError, PreflightError
from opscore.models import artifacts, claims
from opscore.models.claims import VersionClaim
from opscore.store import Store, aliases, ledger, open_store, version_claims, versions

CREATED_BY = ("cli", "dashboard", "http", "retrain", "trigger", "demo")
# The tables only this module (and the claims it settles) writes.
TABLES = (versions, aliases, ledger, version_claims)
Clock = Callable[[], float]


@dataclass(frozen=True)
class ProductionChange:
    """A moment the production alias moved, drawn as a vertical marker."""

    at: float
    version_id: str
    action: str = "promote"


@dataclass(frozen=True)
class VersionInfo:
    version_id: str
    created_at: float
    task: str
    target: str
    params: dict[str, Any]
    metrics: dict[str, float]
    fingerprint: str
    feature_schema: FeatureSchema
    artifact_sha256: str
    parent_version: str | None
    created_by: str
    notes: str
    training_rows: int
    train_seconds: float
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "created_at": self.created_at,
            "task": self.task,
            "target": self.target,
            "metrics": self.metrics,
            "params": self.params,
            "fingerprint": self.fingerprint,
            "artifact_sha256": self.artifact_sha256,
            "parent_version": self.parent_version,
            "created_by": self.created_by,
            "notes": self.notes,
            "training_rows": self.training_rows,
            "train_seconds": self.train_seconds,
            "aliases": list(self.aliases),
            "features": self.feature_schema.names,
        }


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    at: float
    alias: str
    action: str
    from_version: str | None
    to_version: str | None
    actor: str
    reason: str
    alert_id: str | None = None
    experiment_id: str | None = None
    task_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PreflightReport:
    """The checks that guard an alias move, each with its outcome and a detail a person can read.

    ``aliases`` is the alias state (version, generation) the checks were made against: the move
    that follows refuses to go ahead if production is no longer that.
    """

    version_id: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    aliases: dict[str, tuple[str | None, int]] = field(default_factory=dict)

    @property
    def production(self) -> tuple[str | None, int]:
        """Production's (version, generation) when the check ran."""
        return self.aliases.get("production", (None, 0))

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)

    def failures(self) -> list[str]:
        return [f"{name}: {detail}" for name, passed, detail in self.checks if not passed]


def _row_to_version(row: Any, alias_map: dict[str, list[str]]) -> VersionInfo:
    return VersionInfo(
        version_id=row.version_id,
        created_at=row.created_at,
        task=row.task,
        target=row.target,
        params=json.loads(row.params),
        metrics=json.loads(row.metrics),
        fingerprint=row.fingerprint,
        feature_schema=FeatureSchema.from_dict(json.loads(row.feature_schema)),
        artifact_sha256=row.artifact_sha256,
        parent_version=row.parent_version,
        created_by=row.created_by,
        notes=row.notes,
        training_rows=row.training_rows,
        train_seconds=row.train_seconds,
        aliases=tuple(alias_map.get(row.version_id, [])),
    )


def _alias_map(conn: Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in conn.execute(select(aliases.c.name, aliases.c.version_id)):
        if row.version_id:
            out.setdefault(row.version_id, []).append(row.name)
    return out


def list_versions(store: Store) -> list[VersionInfo]:
    """Every version, newest first, with the aliases it holds."""
    with store.read() as conn:
        alias_map = _alias_map(conn)
        rows = conn.execute(select(versions).order_by(versions.c.created_at.desc())).all()
    return [_row_to_version(r, alias_map) for r in rows]


def get_version(store: Store, version_id: str) -> VersionInfo:
    artifacts.check_version_id(version_id)
    with store.read() as conn:
        row = conn.execute(select(versions).where(versions.c.version_id == version_id)).first()
        if row is None:
            raise NotFoundError(f"no version {version_id!r} in the registry")
        return _row_to_version(row, _alias_map(conn))


def version_exists(store: Store, version_id: str) -> bool:
    with store.read() as conn:
        return conn.execute(select(versions.c.version_id).where(versions.c.version_id == version_id)).first() is not None


def alias_target(store: Store, alias: str = "production") -> str | None:
    with store.read() as conn:
        return conn.execute(select(aliases.c.version_id).where(aliases.c.name == alias)).scalar()


def alias_state(store: Store) -> dict[str, tuple[str | None, int]]:
    """Each alias's version and generation; serving polls this to hot-swap cheaply."""
    with store.read() as conn:
        return {r.name: (r.version_id, r.generation) for r in conn.execute(select(aliases))}


def insert_version(store: Store, info: VersionInfo, claim: VersionClaim | None = None) -> None:
    """Record a version whose artifact is already in the model store.

    ``claim`` is the training's claim on the id (see :mod:`opscore.models.claims`): it is consumed in this
    same transaction, and the insert is refused if the claim was lost.
    """
    with store.write() as conn:
        exists = conn.execute(select(versions.c.version_id).where(versions.c.version_id == info.version_id)).first()
        if exists:
            raise ConflictError(f"version {info.version_id!r} already exists; version ids are never reused")
        claims.settle(conn, info.version_id, claim)
        conn.execute(
            insert(versions).values(
                version_id=info.version_id,
                created_at=info.created_at,
                task=info.task,
                target=info.target,
                params=json.dumps(info.params),
                metrics=json.dumps(info.metrics),
                fingerprint=info.fingerprint,
                feature_schema=json.dumps(info.feature_schema.to_dict()),
                artifact_sha256=info.artifact_sha256,
                parent_version=info.parent_version,
                created_by=info.created_by,
                notes=info.notes,
                training_rows=info.training_rows,
                train_seconds=info.train_seconds,
            )
        )


def load_version_model(settings: Settings, info: VersionInfo) -> Any:
    """The fitted pipeline of ``info``, refused unless its bytes match the registry's checksum."""
    trusted = info.params.get("source", {}).get("trusted_types", [])  # types trusted when it was registered
    return artifacts.load_model(settings.model_store_path, info.version_id, info.artifact_sha256, trusted)


def preflight(settings: Settings, version_id: str, alias: str = "production") -> PreflightReport:
    """Check a version can take ``alias``: checksum, load, predict its example, schema compatibility."""
    store = open_store(settings)
    report = PreflightReport(version_id, aliases=alias_state(store))
    info = get_version(store, version_id)
    try:
        model = load_version_model(settings, info)
        report.checks.append(("checksum", True, f"sha256 {info.artifact_sha256[:12]}… matches"))
        report.checks.append(("loads", True, type(model).__name__))
    except Exception as exc:  # noqa: BLE001 - any failure to load is a failed check, reported as such
        name = "checksum" if "checksum" in str(exc) else "loads"
        report.checks.append((name, False, str(exc)))
        return report
    try:
        example = artifacts.read_document(settings.model_store_path, version_id, "input_example.json")
        rows = validate_records(info.feature_schema, example)
        if rows.errors:
            raise ValueError("; ".join(map(str, rows.errors[:3])))
        predicted = model.predict(rows.frame)
        report.checks.append(("predicts example", True, f"{len(predicted)} row(s) scored"))
    except Exception as exc:  # noqa: BLE001
        report.checks.append(("predicts example", False, f"the stored input example fails: {exc}"))
    current = report.production[0]
    if current and current != version_id:
        problems = incompatibilities(get_version(store, current).feature_schema, info.feature_schema)
        detail = "; ".join(problems) if problems else f"accepts every input {current} accepts"
        report.checks.append(("schema compatible", not problems, detail))
    return report


def move_alias(
    settings: Settings,
    version_id: str,
    actor: Actor,
    reason: str,
    *,
    alias: str = "production",
    action: str = "promote",
    expected_from: str | None = None,
    expected_generation: int | None = None,
    alert_id: str | None = None,
    experiment_id: str | None = None,
    task_id: str | None = None,
    skip_preflight: bool = False,
    require_empty: bool = False,
    clock: Clock = time.time,
) -> LedgerEntry:
    """The one way an alias moves: pre-flight, then alias + ledger row in one transaction.

    The transaction refuses (ConflictError, nothing changed) when the alias no longer holds
    ``expected_from`` / ``expected_generation`` (what the caller means to replace), and when
    production moved while the pre-flight check ran: the check compared against a production that
    is gone, and the other operator's move must not be silently overridden.
    """
    actor.require_operator(f"moving {alias}")
    if alias not in {"production", "candidate"}:
        raise NotFoundError(f"no alias {alias!r}; aliases are production and candidate")
    reason = (reason or "").strip()
    if not reason:
        raise PreflightError("a reason is required for every alias move")
    store = open_store(settings)
    checked_against: dict[str, tuple[str | None, int]] | None = None
    if not skip_preflight:
        report = preflight(settings, version_id, alias)
        if not report.ok:
            raise PreflightError(f"pre-flight check failed for {version_id!r}: " + "; ".join(report.failures()))
        checked_against = report.aliases
    with store.write() as conn:
        store.lock_alias_rows(conn)
        state = {r.name: r for r in conn.execute(select(aliases))}
        row = state[alias]
        if require_empty and row.version_id is not None:
            raise ConflictError(f"{alias} is already held by {row.version_id!r}")
        # An expectation already stale when the check ran is reported as such, before any later move.
        seen = checked_against.get(alias, (None, 0)) if checked_against is not None else (row.version_id, row.generation)
        _refuse_unexpected(alias, seen, expected_from, expected_generation)
        if checked_against is not None:
            _refuse_moves_since_preflight(checked_against, state, version_id)
        if row.version_id == version_id:
            raise ConflictError(f"{version_id!r} is already {alias}")
        if conn.execute(select(versions.c.version_id).where(versions.c.version_id == version_id)).first() is None:
            raise NotFoundError(f"no version {version_id!r} in the registry")
        now = _ledger_time(conn, alias, clock)
        conn.execute(
            update(aliases)
            .where(aliases.c.name == alias)
            .values(version_id=version_id, updated_at=now, generation=row.generation + 1)
        )
        if alias == "production":
            # A version that takes production stops being the candidate.
            conn.execute(
                update(aliases)
                .where(aliases.c.name == "candidate", aliases.c.version_id == version_id)
                .values(version_id=None, updated_at=now, generation=aliases.c.generation + 1)
            )
        entry_id = conn.execute(
            insert(ledger).values(
                at=now,
                alias=alias,
                action=action,
                from_version=row.version_id,
                to_version=version_id,
                actor=str(actor),
                reason=reason,
                alert_id=alert_id,
                experiment_id=experiment_id,
                task_id=task_id,
            )
        ).inserted_primary_key[0]
    return LedgerEntry(entry_id, now, alias, action, row.version_id, version_id, str(actor), reason, alert_id, experiment_id, task_id)


def _refuse_unexpected(
    alias: str, seen: tuple[str | None, int], expected_from: str | None, expected_generation: int | None
) -> None:
    """Raise ConflictError if ``alias`` (version, generation) is not what the caller means to replace."""
    version, generation = seen
    if expected_from is not None and version != expected_from:
        raise ConflictError(f"{alias} moved to {version!r} meanwhile (expected {expected_from!r}); nothing changed")
    if expected_generation is not None and generation != expected_generation:
        raise ConflictError(f"{alias} moved meanwhile (it holds {version!r} at generation {generation}; "
                            f"expected generation {expected_generation}); nothing changed")


def _refuse_moves_since_preflight(
    checked_against: dict[str, tuple[str | None, int]], state: dict[str, Any], version_id: str
) -> None:
    """Raise ConflictError if production changed since the pre-flight check compared against it."""
    before_version, before_generation = checked_against.get("production", (None, 0))
    now_row = state["production"]
    if (now_row.version_id, now_row.generation) != (before_version, before_generation):
        raise ConflictError(
            f"production moved from {before_version!r} to {now_row.version_id!r} while the pre-flight check of "
            f"{version_id!r} ran (the check compared against {before_version!r}); nothing changed. "
            "Look at the ledger, then move again if you still mean to."
        )


def _ledger_time(conn: Connection, alias: str, clock: Clock) -> float:
    """The move's time: the clock's, but never before the alias's last ledgered move (hosts' clocks differ)."""
    last = conn.execute(select(func.max(ledger.c.at)).where(ledger.c.alias == alias)).scalar()
    now = clock()
    return now if last is None else max(now, last)


def promote(settings: Settings, version_id: str, actor: Actor, reason: str, **links: Any) -> LedgerEntry:
    """Make ``version_id`` production (after the pre-flight check); ledgered.

    ``links`` pass on to :func:`move_alias`: ``expected_from``, ``expected_generation``, ``clock``,
    ``alert_id``, ``experiment_id``, ``task_id``, ``skip_preflight``.
    """
    return move_alias(settings, version_id, actor, reason, action="promote", **links)


def rollback(
    settings: Settings,
    actor: Actor,
    reason: str,
    to: str | None = None,
    *,
    expected_from: str | None = None,
    expected_generation: int | None = None,
    **links: Any,
) -> LedgerEntry:
    """Move production back: to ``to``, or to the version that served before the current one.

    ``expected_from`` / ``expected_generation``: what the caller means to replace; refused if
    production is something else by the time the move is made.
    """
    store = open_store(settings)
    current, generation = alias_state(store).get("production", (None, 0))
    if current is None:
        raise NotFoundError("nothing is in production yet, so there is nothing to roll back")
    _refuse_unexpected("production", (current, generation), expected_from, expected_generation)
    target = to or previous_production(store)
    if target is None:
        raise NotFoundError(f"{current!r} is the only version that has served production; name one with --to")
    # The target was chosen from this production; the move refuses if it is not that any more.
    return move_alias(settings, target, actor, reason, action="rollback", expected_from=current,
                      expected_generation=generation, **links)


def previous_production(store: Store) -> str | None:
    """The version a plain rollback returns to, replaying the ledger as a stack.

    Promotions push, rollbacks pop: after v1 → v2 → v3, rollback goes to v2, and a second one to v1.
    """
    stack: list[str] = []
    for entry in ledger_entries(store, alias="production", newest_first=False):
        if entry.to_version is None:
            continue
        if entry.action == "rollback" and entry.to_version in stack:
            del stack[stack.index(entry.to_version) + 1 :]
        else:
            if entry.to_version in stack:
                stack.remove(entry.to_version)
            stack.append(entry.to_version)
    return stack[-2] if len(stack) >= 2 else None


def set_candidate(settings: Settings, version_id: str, actor: Actor, reason: str, **links: Any) -> LedgerEntry:
    return move_alias(settings, version_id, actor, reason, alias="candidate", action="candidate", **links)


def clear_candidate(settings: Settings, actor: Actor, reason: str, clock: Clock = time.time,
                    action: str = "discard") -> LedgerEntry | None:
    """Discard the candidate (the version stays in the registry; only the alias is cleared).

    ``action`` names the move in the ledger: a canary that failed its analysis is a ``rollback``.
    """
    actor.require_operator("discarding the candidate")
    store = open_store(settings)
    with store.write() as conn:
        store.lock_alias_rows(conn)
        row = conn.execute(select(aliases).where(aliases.c.name == "candidate")).one()
        if row.version_id is None:
            return None
        now = _ledger_time(conn, "candidate", clock)
        conn.execute(
            update(aliases).where(aliases.c.name == "candidate").values(version_id=None, updated_at=now, generation=row.generation + 1)
        )
        entry_id = conn.execute(
            insert(ledger).values(at=now, alias="candidate", action=action, from_version=row.version_id,
                                  to_version=None, actor=str(actor), reason=reason or "discarded")
        ).inserted_primary_key[0]
    return LedgerEntry(entry_id, now, "candidate", action, row.version_id, None, str(actor), reason or "discarded")


def erase_everything(conn: Connection) -> None:
    """Empty the registry inside the caller's transaction: versions, claims, the ledger; aliases unset.

    Only for rebuilding a throw-away workspace (``opscore demo --fresh``). Alias generations keep
    counting up, so a running server still notices the next move.
    """
    for table in (ledger, version_claims, versions):
        conn.execute(delete(table))
    conn.execute(update(aliases).values(version_id=None, updated_at=time.time(), generation=aliases.c.generation + 1))


def ledger_entries(
    store: Store,
    alias: str | None = None,
    newest_first: bool = True,
    limit: int | None = None,
    before_id: int | None = None,
) -> list[LedgerEntry]:
    """Ledger entries in ledger order; ``limit`` and ``before_id`` (entries older than that one) page it."""
    query = select(ledger)
    if alias:
        query = query.where(ledger.c.alias == alias)
    if before_id is not None:
        query = query.where(ledger.c.id < before_id)
    query = query.order_by(ledger.c.id.desc() if newest_first else ledger.c.id.asc())
    if limit:
        query = query.limit(limit)
    with store.read() as conn:
        return [LedgerEntry(**r._mapping) for r in conn.execute(query)]


def first_movers(store: Store) -> dict[str, str]:
    """Who first gave each version an alias (one row per version, whatever the ledger's length)."""
    first = select(func.min(ledger.c.id)).where(ledger.c.to_version.is_not(None)).group_by(ledger.c.to_version)
    with store.read() as conn:
        return dict(conn.execute(select(ledger.c.to_version, ledger.c.actor).where(ledger.c.id.in_(first))).all())


def production_seconds(store: Store, now: float | None = None) -> dict[str, float]:
    """How long each version has served production in all, up to ``now`` (one row per version)."""
    now = time.time() if now is None else now
    stretches = select(
        ledger.c.to_version.label("version_id"),
        ledger.c.at.label("start"),
        func.lead(ledger.c.at).over(order_by=ledger.c.id).label("end"),
    ).where(ledger.c.alias == "production").subquery()
    query = (
        select(stretches.c.version_id, func.sum(func.coalesce(stretches.c.end, now) - stretches.c.start))
        .where(stretches.c.version_id.is_not(None))
        .group_by(stretches.c.version_id)
    )
    with store.read() as conn:
        return {version_id: float(seconds) for version_id, seconds in conn.execute(query)}


def served_at(store: Store, at: float, alias: str = "production") -> str | None:
    """Which version held ``alias`` at time ``at`` (epoch seconds), from the ledger."""
    with store.read() as conn:
        return conn.execute(
            select(ledger.c.to_version)
            .where(ledger.c.alias == alias, ledger.c.at <= at)
            .order_by(ledger.c.at.desc(), ledger.c.id.desc())
            .limit(1)
        ).scalar()


def production_periods(store: Store) -> list[tuple[str, float, float | None]]:
    """(version, start, end) for each stretch a version served production; end None = still serving."""
    entries = ledger_entries(store, alias="production", newest_first=False)
    periods: list[tuple[str, float, float | None]] = []
    for i, entry in enumerate(entries):
        if entry.to_version is None:
            continue
        end = entries[i + 1].at if i + 1 < len(entries) else None
        periods.append((entry.to_version, entry.at, end))
    return periods


def production_changes(store: Store) -> list[ProductionChange]:
    """Every production move (for chart markers), oldest first."""
    entries = ledger_entries(store, alias="production", newest_first=False)
    return [ProductionChange(e.at, e.to_version, e.action) for e in entries if e.to_version]
