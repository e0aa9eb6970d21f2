"""The health report: the five checks over one window, and the worst of their statuses."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opscore.config import Settings
from opscore.exceptions import BadInputError, OpscoreError
from opscore.models import registry
from opscore.monitoring.health.accuracy import check_model_accuracy
from opscore.monitoring.health.cost import check_cost_efficiency
from opscore.monitoring.health.infrastructure import HostReader, HostReading, check_infrastructure, read_host
from opscore.monitoring.health.performance import check_performance
from opscore.monitoring.health.quality import check_data_quality
from opscore.monitoring.health.status import CheckResult, worst
from opscore.serving.feature_rollups import bucket_of
from opscore.store import open_store

CHECKS = ("performance", "data_quality", "model_accuracy", "infrastructure", "cost_efficiency")


@dataclass
class HealthReport:
    """Each check's result by name (in ``CHECKS`` order), the window they read and when."""

    checked_at: float
    start: float
    end: float
    checks: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def overall(self) -> str:
        return worst(check.status for check in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        """``{"overall", "checked_at", "checks": {name: {"status", "issues", "recommendations", "figures"}}}``."""
        return {"overall": self.overall, "checked_at": float(self.checked_at),
                "checks": {name: check.to_dict() for name, check in self.checks.items()}}


def _guarded(run: Callable[[], CheckResult]) -> CheckResult:
    """A check that could not read what it needs is reported critical with the reason, not raised."""
    try:
        return run()
    except OpscoreError as exc:
        result = CheckResult()
        result.raise_to("critical", f"the check could not run: {exc}", "fix the cause above and run the check again")
        return result


def _no_production(what: str) -> CheckResult:
    result = CheckResult()
    result.note(f"no version has served production yet: {what} was not judged")
    return result


def health_report(settings: Settings, now: float | None = None, window: float = 86400,
                  host: HostReader = read_host) -> HealthReport:
    """The five health checks over the ``window`` seconds up to ``now`` (whole minutes; the start moves back
    to the feature rollups' bucket boundary)."""
    if not (math.isfinite(window) and window >= 60):
        raise BadInputError(f"the health window must be at least 60 seconds, not {window!r}")
    checked_at = time.time() if now is None else now
    end = math.ceil(checked_at / 60) * 60
    # Starting on a feature-rollup bucket keeps the drift and quality sums to the one window asked for
    # (a start inside a bucket would split the newest traffic into a second window they do not read).
    start = bucket_of(end - math.ceil(window / 60) * 60)
    store = open_store(settings)
    production = registry.served_at(store, end) or registry.alias_target(store)
    info = registry.get_version(store, production) if production else None
    reading: list[HostReading] = []

    def infrastructure() -> CheckResult:
        reading.append(host(settings.workspace))
        return check_infrastructure(settings, lambda _path: reading[0])

    checks = {
        "performance": _guarded(lambda: check_performance(settings, store, start, end)),
        "data_quality": _guarded(lambda: check_data_quality(settings, start, end, info.version_id)) if info
        else _no_production("data quality"),
        "model_accuracy": _guarded(lambda: check_model_accuracy(settings, start, end, info)) if info
        else _no_production("model accuracy"),
        "infrastructure": _guarded(infrastructure),
    }
    cores = reading[0].cores if reading else 1
    checks["cost_efficiency"] = _guarded(lambda: check_cost_efficiency(settings, store, start, end, cores))
    return HealthReport(checked_at, start, end, {name: checks[name] for name in CHECKS})
