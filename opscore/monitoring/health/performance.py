"""Performance: the service's p95 request latency against its target, throughput, and the error rate.

Read from the per-minute rollups of API traffic, so the check costs the same at any traffic. The
error rate counts refused requests (4xx: nothing was predicted) beside failed model calls, because
a caller whose request was refused was not served either; each is also reported on its own.
"""

from __future__ import annotations

from opscore.config import Settings
from opscore.monitoring.health.status import CheckResult, level
from opscore.serving import telemetry_queries
from opscore.store import Store

SOURCE = "api"


def check_performance(settings: Settings, store: Store, start: float, end: float) -> CheckResult:
    """p95 (ms), requests per minute, failed and refused requests of the API over [start, end)."""
    result = CheckResult()
    window = telemetry_queries.window_percentiles(store, start, end, source=SOURCE)
    refused = int(telemetry_queries.refusal_series(store, start, end, source=SOURCE)["count"].sum())
    requests, failed = int(window["count"]), int(window["errors"])
    asked = requests + refused
    error_rate = (failed + refused) / asked if asked else None
    result.figures = {
        "p95_ms": window["p95_ms"],
        "p95_target_ms": settings.health_p95_target_ms,
        "requests": requests,
        "rows": int(window["rows"]),
        "requests_per_minute": requests / max((end - start) / 60, 1.0),
        "failed_requests": failed,
        "refused_requests": refused,
        "error_rate": error_rate,
    }
    if not asked:
        result.note(f"no API traffic in the last {(end - start) / 3600:g} h: latency and errors were not judged")
        return result
    p95 = window["p95_ms"]
    status = level(p95, settings.health_p95_target_ms, settings.health_p95_critical_ms)
    if status != "healthy":
        result.raise_to(status, f"p95 request latency is {p95:,.0f} ms, above the {settings.health_p95_target_ms:,.0f} ms "
                                f"target", "look at the Latency page for the version and minutes that are slow; "
                                "lower batch_max_wait_ms or add a replica if every version is slow")
    status = level(error_rate, settings.health_error_rate_warning, settings.health_error_rate_critical)
    if status != "healthy":
        result.raise_to(status, f"{error_rate:.1%} of {asked:,} requests were not answered ({failed:,} failed in the "
                                f"model, {refused:,} refused before it)",
                        "failed requests: read the service log for the model's exception; refused requests: check "
                        "the refusal reasons on the Latency page and the callers' request bodies")
    return result
