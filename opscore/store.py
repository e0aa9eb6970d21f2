"""The one storage interface: SQLAlchemy 2 Core over SQLite (WAL) by default, PostgreSQL by URL.

Every capability keeps its state in the tables declared here, so one schema version covers the
whole workspace. Write transactions that read-then-write (alias moves) use :meth:`Store.write`,
which takes the write lock up front (``BEGIN IMMEDIATE`` on SQLite, row locks on PostgreSQL) so two
operators can never interleave.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError

from opscore.config import Settings
from opscore.exceptions import IntegrityError, StoreUnavailable

SCHEMA_VERSION = 4

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("version_id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("task", String(32), nullable=False),
    Column("target", String(256), nullable=False),
    Column("params", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("feature_schema", Text, nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("parent_version", String(64)),
    Column("created_by", String(32), nullable=False),
    Column("notes", Text, nullable=False, default=""),
    Column("training_rows", Integer, nullable=False),
    Column("train_seconds", Float, nullable=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("version_id", String(64)),
    Column("updated_at", Float, nullable=False),
    Column("generation", BigInteger, nullable=False, default=0),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("alias", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_version", String(64)),
    Column("to_version", String(64)),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("alert_id", String(64)),
    Column("experiment_id", String(64)),
    Column("task_id", String(64)),
)

# A version id while it is being trained: claimed in its own transaction before any work, renewed
# while the training runs, and deleted in the transaction that inserts the version (or on failure).
version_claims = Table(
    "version_claims",
    metadata,
    Column("version_id", String(64), primary_key=True),
    Column("token", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("claimed_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("version_id", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("features", Text, nullable=False),
    Column("prediction", Text),
    Column("probability", Float),
    Column("error", Text),
    Column("label", Text),
    Column("labelled_at", Float),
    # Rows of the request this row opens (its first row); 0 on the request's other rows. Request
    # figures (latency percentiles, requests per second) count opening rows only, so a 64-row request
    # is one request and 64 rows. Rows logged before schema 2 read as requests of one row.
    Column("request_rows", Integer, nullable=False, server_default=text("1")),
    # The deployment routing this row's request and the role of the version that answered it
    # (production, candidate or shadow); NULL outside a deployment and on rows logged before schema 3.
    Column("deployment_id", String(32)),
    Column("role", String(16)),
    Index("ix_predictions_request_id", "request_id", unique=True),
    Index("ix_predictions_at", "at"),
    Index("ix_predictions_version_at", "version_id", "at"),
    Index("ix_predictions_source_at", "source", "at"),
    # Labelled rows only, covering what accuracy reads: a window's labelled share, never the whole window.
    # (status before at gives it one more equality than ix_predictions_version_at, so SQLite picks it.)
    Index("ix_predictions_labelled", "version_id", "status", "at", "prediction", "probability", "label",
          sqlite_where=text("label IS NOT NULL"), postgresql_where=text("label IS NOT NULL")),
)

# One row per (minute, version, source): requests (``count``), failed requests (``errors``), the sum
# and a sparse histogram of request latencies over fine log-spaced buckets (one latency per request,
# so percentiles over any window cost the same whatever the traffic), and the rows those requests
# carried (``row_count``, ``row_errors``). Rows before schema 2 were counted as one request each.
latency_rollups = Table(
    "latency_rollups",
    metadata,
    Column("minute", BigInteger, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("latency_sum_ms", Float, nullable=False),
    Column("histogram", Text, nullable=False),
    Column("row_count", BigInteger, nullable=False, server_default=text("0")),
    Column("row_errors", BigInteger, nullable=False, server_default=text("0")),
)

# Requests refused before any prediction (a 4xx: malformed body, invalid rows, too large), per
# minute, version, source and reason: they log no prediction, so without this a flood of bad input
# would leave every other figure untouched.
refusals = Table(
    "refusals",
    metadata,
    Column("minute", BigInteger, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Each backup taken (``opscore backup``, the weekly procedure, a restore drill): where, how big, and
# whether a restore of it into a scratch workspace was verified. The maturity scorecard reads it.
backups = Table(
    "backups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("taken_at", Float, nullable=False, index=True),
    Column("folder", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("files", Integer, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("verified_at", Float),
)

# Disk used by the model store and the database at each infrastructure review, so the next review
# reports growth against a measured figure instead of a guess.
disk_usage = Table(
    "disk_usage",
    metadata,
    Column("measured_at", Float, primary_key=True),
    Column("model_store_bytes", BigInteger, nullable=False),
    Column("database_bytes", BigInteger, nullable=False),
)

# Rows of a request refused for invalid cells, per minute, version, source, column and reason (the
# column is "(row)" when a whole row was wrong): what data quality reports as rejected rows.
rejected_cells = Table(
    "rejected_cells",
    metadata,
    Column("minute", BigInteger, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("column_name", String(256), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# One row per (bucket, version, source, kind, column): how the logged rows' values of one feature
# (kind "feature") or of the model's score (kind "prediction") fell over the version's reference
# profile bins, so drift and data quality over any window are sums of these rows. ``bucket`` is the
# bucket's start (epoch seconds, a multiple of FEATURE_BUCKET_SECONDS). ``counts`` is a little-endian
# int64 array: per live bin (numeric) or per profile category in sorted order (categorical).
# ``below``/``above`` count numeric values outside the reference range, ``low_outliers`` and
# ``high_outliers`` those beyond Q1 - 1.5 IQR and Q3 + 1.5 IQR; ``unseen`` counts categories the
# profile lacks and ``unseen_names`` names them (JSON {name: count}, the most frequent first).
FEATURE_BUCKET_SECONDS = 300
feature_rollups = Table(
    "feature_rollups",
    metadata,
    Column("bucket", BigInteger, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("column_name", String(256), primary_key=True),
    Column("rows", BigInteger, nullable=False),
    Column("missing", BigInteger, nullable=False),
    Column("below", BigInteger, nullable=False),
    Column("above", BigInteger, nullable=False),
    Column("low_outliers", BigInteger, nullable=False),
    Column("high_outliers", BigInteger, nullable=False),
    Column("unseen", BigInteger, nullable=False),
    Column("minimum", Float),
    Column("maximum", Float),
    Column("counts", LargeBinary, nullable=False),
    Column("unseen_names", Text, nullable=False),
)

# One row per (bucket, version, source): the PCA reconstruction error of each logged row (from the
# version's monitor reference), as count, sum, sum of squares and an int64 histogram over the
# version's fixed error bins (see opscore.serving.feature_rollups.error_edges).
multivariate_rollups = Table(
    "multivariate_rollups",
    metadata,
    Column("bucket", BigInteger, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("error_sum", Float, nullable=False),
    Column("error_sumsq", Float, nullable=False),
    Column("histogram", LargeBinary, nullable=False),
)

# One row per (bucket, version, source): for a classifier with a stored calibration, the logged rows'
# calibrated chances that the prediction is right (see opscore.models.calibration.chances_right) as
# their count, sum and sum of c(1 - c), so accuracy estimated without labels (CBPE) over any window
# of whole buckets is a sum of these rows, whatever the traffic.
estimate_rollups = Table(
    "estimate_rollups",
    metadata,
    Column("bucket", BigInteger, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("chance_sum", Float, nullable=False),
    Column("chance_variance_sum", Float, nullable=False),
)

# Alerts: one row per episode of a rule firing for one label set (its fingerprint); an episode ends
# resolved, and the next breach opens a new row. Everything that happens to an alert is an event.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("labels", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("value", Float),
    Column("started_at", Float, nullable=False),
    Column("fired_at", Float),
    Column("resolved_at", Float),
    Column("last_true_at", Float, nullable=False),
    Column("acknowledged_by", String(128)),
    Column("acknowledged_at", Float),
    Column("notified_at", Float),
    Column("escalation_level", Integer, nullable=False, default=0),
    Index("ix_alerts_fingerprint_state", "fingerprint", "state"),
    Index("ix_alerts_started_at", "started_at"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_alert_events_alert_id", "alert_id"),
    Index("ix_alert_events_at", "at"),
)

# Every delivery attempt with the channel's answer (HTTP status, SMTP reply or the error).
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("answer", Text, nullable=False),
    Index("ix_alert_deliveries_alert_id", "alert_id"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
)

# Rules an operator set on the Alerts page: they replace a configured rule of the same name and severity.
alert_rule_overrides = Table(
    "alert_rule_overrides",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("severity", String(16), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Named leases on work only one replica may do at a time (the alert evaluator).
work_leases = Table(
    "work_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# The maintenance queue: what each task runs, its state and lease, every attempt and what it found.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", Text, nullable=False),
    Column("procedure", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("type", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    # 0 for critical .. 3 for low, so the queue orders by priority in SQL.
    Column("priority_rank", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("cause_kind", String(16), nullable=False),
    Column("cause_id", String(200), nullable=False),
    Column("cause_summary", Text, nullable=False),
    # One open task per key: released (set to NULL) when the task ends.
    Column("dedup_key", String(200), unique=True),
    Column("parent_task", String(32)),
    Column("max_attempts", Integer, nullable=False),
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("estimated_seconds", Float, nullable=False),
    Column("actual_seconds", Float),
    Column("result", Text),
    Column("cancel_requested", Integer, nullable=False, default=0),
    Column("progress", Float),
    Column("note", Text, nullable=False, default=""),
    Column("lease_holder", String(96)),
    Column("lease_host", String(255)),
    Column("lease_pid", Integer),
    Column("lease_expires_at", Float),
    Index("ix_tasks_queue", "status", "priority_rank", "due_at"),
)

task_dependencies = Table(
    "task_dependencies",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("depends_on", String(32), primary_key=True),
    Index("ix_task_dependencies_upstream", "depends_on"),
)

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("worker", String(96), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("outcome", String(20)),
    Column("error", Text),
)

# Each firing of a maintenance schedule, recorded once whatever the number of workers: the unique key on
# (schedule, fire_time) makes a second worker's insert of the same firing do nothing. ``fire_time`` is
# the cron instant (epoch seconds); ``outcome`` is "run" or "skipped" (a misfire past its grace, or the
# "skip" policy); ``coalesced`` counts the earlier missed fire times this one stands for.
schedule_firings = Table(
    "schedule_firings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule", String(64), nullable=False),
    Column("fire_time", BigInteger, nullable=False),
    Column("fired_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("late_seconds", Float, nullable=False),
    Column("coalesced", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("task_ids", Text, nullable=False),
    Index("ux_schedule_firings_schedule_fire_time", "schedule", "fire_time", unique=True),
)

# A schedule's cron or enabled flag as an operator set it on the Maintenance page: above opscore.toml.
schedule_overrides = Table(
    "schedule_overrides",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("cron", String(256)),
    Column("enabled", Integer),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Safe rollouts: one row per deployment of a candidate version (its strategy, where the pipeline is,
# each stage's result and figures as JSON, why it ended), each canary analysis with its figures, and
# each blue-green switch. ``routing`` holds the split every replica follows: one row per scope, its
# generation bumped on every change, as the aliases' is.
deployments = Table(
    "deployments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("version_id", String(64), nullable=False),
    Column("baseline_version", String(64)),
    Column("strategy", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("step", Integer, nullable=False, default=0),
    Column("weights", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("failed_checks", Integer, nullable=False, default=0),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("step_started_at", Float),
    Column("ended_at", Float),
    Column("stages", Text, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_deployments_status", "status"),
)

deployment_analyses = Table(
    "deployment_analyses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("step", Integer, nullable=False),
    Column("weight", Float, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("figures", Text, nullable=False),
    Index("ix_deployment_analyses_deployment", "deployment_id", "at"),
)

deployment_switches = Table(
    "deployment_switches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("from_version", String(64)),
    Column("to_version", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
)

routing = Table(
    "routing",
    metadata,
    Column("scope", String(32), primary_key=True),
    Column("split", Text, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

ALIASES = ("production", "candidate")


class Store:
    """A handle on the workspace database; cheap to share within a process."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (autocommitted, never holds the write lock)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"the store at {_redact(self.url)} is unavailable: {exc.orig}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction holding the write lock from its first statement; commits on success."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(opscore_immediate=True)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"the store at {_redact(self.url)} is unavailable: {exc.orig}") from exc

    def lock_alias_rows(self, conn: Connection) -> None:
        """On PostgreSQL, lock the alias rows so concurrent moves serialize (SQLite already does)."""
        if not self.is_sqlite:
            conn.execute(select(aliases.c.name).with_for_update())


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _create_private_file(path: Path) -> None:
    """Create a new SQLite file owner-only (0600, in a 0700 folder when that is new too).

    The database holds every feature payload and label. SQLite gives its -wal and -shm files the
    database file's mode, so they stay private as well. An existing file is left as it is.
    """
    if not path.parent.is_dir():
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):
            path.parent.mkdir(mode=0o700)
            path.parent.chmod(0o700)  # whatever the umask
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            _create_private_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy's BEGIN (below) control transactions instead of the driver.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("opscore_immediate") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_stores: dict[tuple[str, int], Store] = {}
_stores_lock = threading.Lock()


def open_store(settings: Settings) -> Store:
    """The store for ``settings``, created and schema-checked on first use in this process."""
    url = settings.database_url
    key = (url, os.getpid())
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = Store(url, _make_engine(url))
            _ensure_schema(store)
            _stores[key] = store
        return store


def dispose_stores() -> None:
    """Close every pooled connection (tests use this between workspaces)."""
    with _stores_lock:
        for store in _stores.values():
            store.engine.dispose()
        _stores.clear()


def _ensure_schema(store: Store) -> None:
    with store.write() as conn:
        if not store.is_sqlite:
            # Replicas starting together must not race each other creating tables.
            conn.execute(text("SELECT pg_advisory_xact_lock(7270011)"))
        metadata.create_all(conn, checkfirst=True)
        row = conn.execute(
            select(schema_info.c.value).where(schema_info.c.key == "schema_version")
        ).first()
        if row is None:
            conn.execute(insert(schema_info).values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(row.value) > SCHEMA_VERSION:
            raise IntegrityError(
                f"the store's schema version is {row.value}, newer than this opscore understands "
                f"({SCHEMA_VERSION}); upgrade opscore instead of letting it touch that database"
            )
        elif int(row.value) < SCHEMA_VERSION:
            for version in range(int(row.value) + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version](conn)
            conn.execute(update(schema_info).where(schema_info.c.key == "schema_version")
                         .values(value=str(SCHEMA_VERSION)))
        present = set(conn.execute(select(aliases.c.name)).scalars())
        for name in ALIASES:
            if name not in present:
                conn.execute(insert(aliases).values(name=name, version_id=None, updated_at=time.time(), generation=0))


# -- migrations: each brings a store from the version before it, inside _ensure_schema's transaction.
# New tables need none (create_all adds them); new columns and indexes on existing tables do.
def _add_column(conn: Connection, table: Table, name: str) -> bool:
    """Add ``table.c[name]`` to an existing table (with its server default); False if already there."""
    if name in {c["name"] for c in inspect(conn).get_columns(table.name)}:
        return False
    column = table.c[name]
    kind = column.type.compile(dialect=conn.dialect)
    default = column.server_default.arg.text if column.server_default is not None else None
    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"
                      + (f" NOT NULL DEFAULT {default}" if default is not None else "")))
    return True


def _to_2(conn: Connection) -> None:
    """Requests apart from rows: request_rows on predictions, row counts on rollups, a source index."""
    _add_column(conn, predictions, "request_rows")
    added = _add_column(conn, latency_rollups, "row_count")
    _add_column(conn, latency_rollups, "row_errors")
    if added:
        # Before schema 2 every row counted as a request of its own, so rows equal requests there.
        conn.execute(update(latency_rollups).values(row_count=latency_rollups.c.count,
                                                    row_errors=latency_rollups.c.errors))
    index = next(i for i in predictions.indexes if i.name == "ix_predictions_source_at")
    index.create(conn, checkfirst=True)


def _to_3(conn: Connection) -> None:
    """The partial index of labelled rows (estimate_rollups is a new table: create_all adds it)."""
    index = next(i for i in predictions.indexes if i.name == "ix_predictions_labelled")
    index.create(conn, checkfirst=True)


def _to_4(conn: Connection) -> None:
    """Which deployment routed each logged prediction and the role that answered (nullable: old rows stay
    readable); the deployment tables are new and need no migration."""
    _add_column(conn, predictions, "deployment_id")
    _add_column(conn, predictions, "role")


_MIGRATIONS = {2: _to_2, 3: _to_3, 4: _to_4}
