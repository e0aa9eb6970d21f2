"""Settings in one place: defaults < ``opscore.toml`` < ``OPSCORE_*`` environment variables.

Every field can be set in the TOML file (top-level key of the same name) or through the environment
as ``OPSCORE_<NAME>`` in upper case, e.g. ``OPSCORE_DB_URL`` or ``OPSCORE_MODEL_STORE``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from opscore.exceptions import BadInputError


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; build it with :func:`load_settings`."""

    workspace: Path = field(default_factory=Path.cwd)
    model_store: Path = Path("model_store")
    db_url: str = ""
    # Where secrets (admin token, API tokens, operator password hash) live: a folder of its own, mode 0700.
    secrets_dir: Path = Path(".opscore")
    admin_token: str = ""
    operator_password: str = ""
    seed: int = 42
    holdout_fraction: float = 0.2
    # Ensemble size: the forest's trees and the boosting rounds (smaller trains faster, e.g. in tests).
    forest_trees: int = 100
    boosting_rounds: int = 200
    # Serving
    max_instances_per_request: int = 10_000
    alias_poll_seconds: float = 0.25
    batching: bool = True
    batch_max_size: int = 64
    batch_max_wait_ms: float = 10.0
    # Largest /predict body read before refusing it (413), so an oversized upload is never parsed.
    max_request_bytes: int = 16_000_000
    # Telemetry
    telemetry: bool = True
    telemetry_buffer: int = 200_000
    telemetry_batch: int = 5_000
    telemetry_flush_seconds: float = 0.25
    live_window: int = 1_000
    retention_days: float = 30.0
    # How often a serving process's telemetry writer removes raw rows past retention_days.
    retention_check_seconds: float = 3600.0
    # Drift: the multiple-testing correction over p-value columns (bh, bonferroni or none), the share of
    # drifted columns that makes the dataset drifted, and per-column tests, e.g. in opscore.toml
    # ``[drift_columns]`` then ``income = "psi"`` or ``age = {test = "ks", threshold = 0.01}``.
    drift_correction: str = "bh"
    drift_share: float = 0.5
    drift_columns: dict = field(default_factory=dict)
    # Live drift: a window with fewer logged rows than this gets the verdict "too few rows" instead of
    # a drift score. Distances are not corrected for sample size: at 100-200 rows a normed Wasserstein
    # or Jensen-Shannon distance of 0.1 (their threshold) is within noise; at 300 it is about 2x it.
    drift_min_rows: int = 300
    # Per-minute rollups (latency, refusals) outlive raw rows, but not forever: past this many days
    # they are removed too (0 keeps them), so every read over "all time" stays bounded.
    rollup_retention_days: float = 400.0
    # Where the weekly maintenance writes its verified backups (a folder per backup).
    backup_dir: Path = Path("backups")
    # Per-feature counts over each version's reference profile bins (and the multivariate error),
    # kept at ingestion so live drift and data quality cost the same at any traffic.
    feature_rollups: bool = True
    # Data quality findings: a column's share of missing values, and of IQR outliers, above these.
    quality_missing_share: float = 0.05
    quality_outlier_share: float = 0.10
    # Alerts: rules (``[[alert_rules]]``, added to the defaults or replacing one of the same name and
    # severity), channels by name (``[alert_channels.NAME]`` with ``type`` webhook, slack, pagerduty,
    # email or log) and routes (``[[alert_routes]]``: matchers, severities, channels in escalation order).
    alert_rules: list = field(default_factory=list)
    alert_channels: dict = field(default_factory=dict)
    alert_routes: list = field(default_factory=list)
    alert_evaluation_seconds: float = 30.0
    alert_group_wait_seconds: float = 30.0
    alert_group_interval_seconds: float = 300.0
    alert_repeat_interval_seconds: float = 14_400.0
    # A firing alert nobody acknowledged within this long goes to the next channel of its route;
    # so does the alert of a rule that fired this many times within the window.
    alert_escalate_after_seconds: float = 900.0
    alert_escalate_count: int = 3
    alert_escalate_window_seconds: float = 3600.0
    alert_delivery_attempts: int = 3
    alert_delivery_backoff_seconds: float = 1.0
    # Fewer logged rows than this in a rule's window is no data for the drift and data-quality signals.
    alert_min_rows: int = 100
    # The accuracy signal reads at most this many of the newest labelled predictions in a rule's window
    # (the standard error of an accuracy on 2,000 is about 0.01), so it costs the same at any traffic.
    alert_accuracy_rows: int = 2_000
    # The daily review of alerts calls a rule flapping at this many state changes within its window (a day).
    alert_flapping_changes: int = 10
    # Triggers: a firing alert of these rules opens one maintenance task; with alert_auto_retrain a drift or
    # accuracy alert's task retrains a candidate (never promoted), at most once per rule per cool-down.
    trigger_rules: list = field(default_factory=lambda: ["dataset_drift", "average_latency", "accuracy_drop"])
    alert_auto_retrain: bool = False
    retrain_cooldown_seconds: float = 21_600.0
    # Requests per second that `opscore dashboard` sends through a real server on a workspace the demo
    # built, so live figures move while someone watches (0 turns it off; other workspaces never get any).
    demo_traffic_rate: float = 1.0
    # Dashboard
    dashboard_upload_mb: float = 25.0
    dashboard_refresh_seconds: float = 2.0
    # Health checks (opscore health, GET /health/report): a figure past its warning line makes its check
    # "warning", past its critical line "critical". Shares are fractions (0.05 is 5 %); the data-quality lines
    # (quality_missing_share, quality_outlier_share) and the accuracy drop turn critical at health_critical_factor times theirs.
    health_p95_target_ms: float = 250.0
    health_p95_critical_ms: float = 1000.0
    health_error_rate_warning: float = 0.01
    health_error_rate_critical: float = 0.05
    health_accuracy_drop: float = 0.05
    health_critical_factor: float = 2.0
    health_cpu_warning: float = 80.0
    health_cpu_critical: float = 95.0
    health_memory_warning: float = 85.0
    health_memory_critical: float = 95.0
    health_disk_warning: float = 85.0
    health_disk_critical: float = 95.0
    # What one CPU core costs per hour (any currency), the cost per 1,000 predictions above which the
    # cost check warns (0: no target), and the share of idle minutes that counts as paying for nothing.
    cost_per_cpu_hour: float = 0.05
    health_cost_per_1000_target: float = 0.0
    health_idle_share: float = 0.8
    # Maintenance queue: a running task's lease (a worker that stops renewing it for this long is taken
    # for dead and its task retried), attempts per task (1 + Celery's 3 retries), the first retry's
    # delay (doubling each time, up to the cap), how often an idle worker looks, and whether
    # `opscore serve` runs a worker in process.
    task_lease_seconds: float = 60.0
    task_max_attempts: int = 4
    task_retry_backoff_seconds: float = 180.0
    task_retry_backoff_max_seconds: float = 3600.0
    worker_poll_seconds: float = 2.0
    serve_worker: bool = True
    # A follow-up a finding opens without a procedure of its own re-runs the procedure that found it this
    # much later, and succeeds only once the finding is gone.
    follow_up_check_seconds: float = 86_400.0
    # Maintenance schedules: the IANA timezone their cron is read in (wall times stay right across
    # daylight-saving changes), and ``[schedules.NAME]`` tables (daily, weekly, monthly, quarterly) that
    # override ``cron``, ``enabled``, ``misfire_policy`` (run_once_late or skip) and ``grace_seconds``.
    schedule_timezone: str = "UTC"
    schedules: dict = field(default_factory=dict)
    # Safe rollouts: canary weight steps (percent), the analysis interval, how many failed checks roll
    # back, and what a check allows the candidate against production over the same interval: p95 up to
    # deploy_p95_ratio times production's (or deploy_p95_slack_ms more, whichever is larger), an error
    # rate up to deploy_error_margin above, accuracy (where labels arrived) down to deploy_accuracy_drop
    # below. A check with fewer than deploy_min_requests candidate requests waits. The testing stage
    # allows holdout metrics down to deploy_holdout_tolerance below production's and a benchmark up to
    # deploy_benchmark_ratio times production's time on the same rows. Shadow staging lasts
    # deploy_shadow_seconds; `opscore serve` advances deployments every deploy_tick_seconds (0: never).
    deploy_weights: list = field(default_factory=lambda: [5, 25, 50, 100])
    deploy_interval_seconds: float = 60.0
    deploy_failed_checks: int = 3
    deploy_p95_ratio: float = 1.5
    deploy_p95_slack_ms: float = 10.0
    deploy_error_margin: float = 0.01
    deploy_accuracy_drop: float = 0.05
    deploy_min_requests: int = 20
    deploy_holdout_tolerance: float = 0.02
    deploy_benchmark_ratio: float = 3.0
    deploy_shadow_seconds: float = 600.0
    deploy_tick_seconds: float = 1.0

    @property
    def model_store_path(self) -> Path:
        return _under(self.workspace, self.model_store)

    @property
    def secrets_path(self) -> Path:
        return _under(self.workspace, self.secrets_dir)

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{_under(self.workspace, Path('metrics')) / 'opscore.db'}"


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _coerce(name: str, kind: type, raw: object) -> object:
    try:
        if kind is bool and isinstance(raw, str):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is Path:
            return Path(str(raw))
        if kind in (dict, list):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, kind):
                raise ValueError(raw)
            return value
        return kind(raw)
    except (TypeError, ValueError) as exc:
        expected = {dict: "a table (TOML) or a JSON object (environment)",
                    list: "an array of tables (TOML) or a JSON array (environment)"}.get(kind, kind.__name__)
        raise BadInputError(f"setting {name!r}: cannot read {raw!r} as {expected}") from exc


_TYPES = {"Path": Path, "str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list}


def load_settings(workspace: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Resolve settings for ``workspace`` (default: the current directory)."""
    env = dict(os.environ if env is None else env)
    workspace = Path(env.get("OPSCORE_WORKSPACE", workspace or Path.cwd())).resolve()
    values: dict[str, object] = {"workspace": workspace}
    toml_path = Path(env.get("OPSCORE_CONFIG", workspace / "opscore.toml"))
    file_values: dict[str, object] = {}
    if toml_path.is_file():
        try:
            file_values = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BadInputError(f"{toml_path}: not valid TOML ({exc})") from exc
    for f in fields(Settings):
        if f.name == "workspace":
            continue
        kind = _TYPES[str(f.type)]
        if f.name in file_values:
            values[f.name] = _coerce(f.name, kind, file_values[f.name])
        env_key = f"OPSCORE_{f.name.upper()}"
        if env.get(env_key, "") != "":
            values[f.name] = _coerce(f.name, kind, env[env_key])
    unknown = set(file_values) - {f.name for f in fields(Settings)} - {"auth"}
    if unknown:
        raise BadInputError(f"{toml_path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return Settings(**values)


def replace(settings: Settings, **changes: object) -> Settings:
    """A copy of ``settings`` with some fields changed (tests and benchmarks use this)."""
    return dataclasses.replace(settings, **changes)
