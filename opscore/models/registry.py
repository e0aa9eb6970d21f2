"""The model registry: versions, the ``production`` and ``candidate`` aliases, and the ledger.

An alias moves only through :func:`move_alias`, which runs the pre-flight check, then moves the
alias and writes its ledger row in one write transaction. So the ledger is the complete history
(``served_at`` answers which version served at any moment), and rollback is just another move.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select, update

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.data.features import FeatureSchema, incompatibilities, validate_records
from opscore.exceptions import ConflictError, NotFoundError, PreflightError
from opscore.models import artifacts
from opscore.store import Store, aliases, ledger, open_store, versions

CREATED_BY = ("cli", "dashboard", "http", "retrain", "trigger", "demo")


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
    """The checks that guard an alias move, each with its outcome and a detail a person can read."""

    version_id: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

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


def insert_version(store: Store, info: VersionInfo) -> None:
    """Record a version whose artifact is already in the model store."""
    with store.write() as conn:
        exists = conn.execute(select(versions.c.version_id).where(versions.c.version_id == info.version_id)).first()
        if exists:
            raise ConflictError(f"version {info.version_id!r} already exists; version ids are never reused")
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
    report = PreflightReport(version_id)
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
    current = alias_target(store, "production")
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
    alert_id: str | None = None,
    experiment_id: str | None = None,
    task_id: str | None = None,
    skip_preflight: bool = False,
    require_empty: bool = False,
) -> LedgerEntry:
    """The one way an alias moves: pre-flight, then alias + ledger row in one transaction."""
    actor.require_operator(f"moving {alias}")
    if alias not in {"production", "candidate"}:
        raise NotFoundError(f"no alias {alias!r}; aliases are production and candidate")
    reason = (reason or "").strip()
    if not reason:
        raise PreflightError("a reason is required for every alias move")
    store = open_store(settings)
    if not skip_preflight:
        report = preflight(settings, version_id, alias)
        if not report.ok:
            raise PreflightError(f"pre-flight check failed for {version_id!r}: " + "; ".join(report.failures()))
    now = time.time()
    with store.write() as conn:
        store.lock_alias_rows(conn)
        row = conn.execute(select(aliases).where(aliases.c.name == alias)).one()
        if require_empty and row.version_id is not None:
            raise ConflictError(f"{alias} is already held by {row.version_id!r}")
        if expected_from is not None and row.version_id != expected_from:
            raise ConflictError(
                f"{alias} moved to {row.version_id!r} meanwhile (expected {expected_from!r}); nothing changed"
            )
        if row.version_id == version_id:
            raise ConflictError(f"{version_id!r} is already {alias}")
        if conn.execute(select(versions.c.version_id).where(versions.c.version_id == version_id)).first() is None:
            raise NotFoundError(f"no version {version_id!r} in the registry")
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


def promote(settings: Settings, version_id: str, actor: Actor, reason: str, **links: Any) -> LedgerEntry:
    """Make ``version_id`` production (after the pre-flight check); ledgered."""
    return move_alias(settings, version_id, actor, reason, action="promote", **links)


def rollback(settings: Settings, actor: Actor, reason: str, to: str | None = None, **links: Any) -> LedgerEntry:
    """Move production back: to ``to``, or to the version that served before the current one."""
    store = open_store(settings)
    current = alias_target(store, "production")
    if current is None:
        raise NotFoundError("nothing is in production yet, so there is nothing to roll back")
    target = to or previous_production(store)
    if target is None:
        raise NotFoundError(f"{current!r} is the only version that has served production; name one with --to")
    return move_alias(settings, target, actor, reason, action="rollback", expected_from=current, **links)


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


def clear_candidate(settings: Settings, actor: Actor, reason: str) -> LedgerEntry | None:
    """Discard the candidate (the version stays in the registry; only the alias is cleared)."""
    actor.require_operator("discarding the candidate")
    store = open_store(settings)
    now = time.time()
    with store.write() as conn:
        store.lock_alias_rows(conn)
        row = conn.execute(select(aliases).where(aliases.c.name == "candidate")).one()
        if row.version_id is None:
            return None
        conn.execute(
            update(aliases).where(aliases.c.name == "candidate").values(version_id=None, updated_at=now, generation=row.generation + 1)
        )
        entry_id = conn.execute(
            insert(ledger).values(at=now, alias="candidate", action="discard", from_version=row.version_id,
                                  to_version=None, actor=str(actor), reason=reason or "discarded")
        ).inserted_primary_key[0]
    return LedgerEntry(entry_id, now, "candidate", "discard", row.version_id, None, str(actor), reason or "discarded")


def ledger_entries(
    store: Store, alias: str | None = None, newest_first: bool = True, limit: int | None = None
) -> list[LedgerEntry]:
    query = select(ledger)
    if alias:
        query = query.where(ledger.c.alias == alias)
    query = query.order_by(ledger.c.id.desc() if newest_first else ledger.c.id.asc())
    if limit:
        query = query.limit(limit)
    with store.read() as conn:
        return [LedgerEntry(**r._mapping) for r in conn.execute(query)]


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
