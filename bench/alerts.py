"""Alert evaluation benchmark: 50 rules over 1,000,000 logged predictions in under 1 s, and as cheap as at 100,000.

Two workspaces are built the same way through the real path (a trained production version, its
predictions on demo applicants logged by :class:`TelemetryWriter` with every rollup it keeps, 10 %
labelled through ``record_feedback``): two days of traffic whose last three hours come from a
drifted population. One holds 100,000 predictions (the baseline), the other 1,000,000. The 50 rules
are the defaults plus rules over every signal at windows from 5 minutes to 3 days. Each round runs
one full evaluation (signals, state moves, notification to the log) on each workspace in turn, at the
moment its traffic ends; the first round creates the alerts and is not counted.

Run: ``.venv/bin/python bench/alerts.py [--fresh]``. Workspaces are kept in ``bench/out/``
(git-ignored) and reused when they already hold the asked number of predictions.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.common import markdown_table, write_section  # noqa: E402
from opscore.access.actors import Actor  # noqa: E402
from opscore.config import Settings, load_settings, replace  # noqa: E402
from opscore.data.features import validate_frame  # noqa: E402
from opscore.demo.credit_data import credit_applications  # noqa: E402
from opscore.models.training import train_version  # noqa: E402
from opscore.operations.alert_rules import configured_rules  # noqa: E402
from opscore.operations.alerts import evaluate  # noqa: E402
from opscore.serving.feedback import record_feedback  # noqa: E402
from opscore.serving.predictor import load_version  # noqa: E402
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter  # noqa: E402
from opscore.store import dispose_stores, open_store, predictions  # noqa: E402

OUT = Path(__file__).with_name("out")
SIZES = (100_000, 1_000_000)
RULES = 50
BUDGET_SECONDS = 1.0
RATIO_TARGET = 1.5
ROUNDS = 9
DAYS = 2
DRIFTED_HOURS = 3
DISTINCT_ROWS = 5_000
LABELLED_SHARE = 0.1
WINDOWS = ("5m", "15m", "1h", "6h")


def bench_rules() -> list[dict[str, Any]]:
    """Rules beside the defaults, over every signal and several windows, to make 50 in all."""
    rules: list[dict[str, Any]] = []
    for window in WINDOWS:
        w = window.replace("m", "min")
        rules += [
            {"name": f"p95_{w}", "expr": "p95_latency_ms > 40", "severity": "warning", "window": window},
            {"name": f"p95_{w}", "expr": "p95_latency_ms > 200", "severity": "critical", "window": window},
            {"name": f"mean_latency_{w}", "expr": "avg_latency_ms > 30", "window": window},
            {"name": f"errors_{w}", "expr": "error_rate > 0.002", "severity": "warning", "window": window},
            {"name": f"errors_{w}", "expr": "error_rate > 0.02", "severity": "critical", "window": window},
            {"name": f"traffic_stopped_{w}", "expr": "requests_per_minute < 1", "window": window},
        ]
    for window in ("15m", "6h", "1d"):
        rules.append({"name": f"drift_{window}", "expr": "dataset_drift_share >= 0.3", "window": window})
    for window in ("6h", "1d"):
        rules.append({"name": f"missing_{window}", "expr": "missing_share > 0.02", "window": window})
        rules.append({"name": f"outliers_{window}", "expr": "outlier_share > 0.05", "window": window})
    for window in ("6h", "12h", "3d"):
        rules.append({"name": f"accuracy_{window}", "expr": "accuracy_drop > 0.02", "window": window})
    rules.append({"name": "memory_high", "expr": "memory_percent > 99", "severity": "critical", "window": "1m"})
    rules.append({"name": "cpu_high", "expr": "cpu_percent > 99", "severity": "critical", "window": "1m"})
    return rules


def _settings(folder: Path) -> Settings:
    env = {"OPSCORE_WORKSPACE": str(folder), "OPSCORE_OPERATOR_PASSWORD": "bench", "OPSCORE_FOREST_TREES": "30",
           "OPSCORE_BOOSTING_ROUNDS": "50"}
    return replace(load_settings(folder, env=env), telemetry_buffer=250_000, telemetry_batch=10_000,
                   alert_rules=bench_rules(), alert_group_wait_seconds=0)


def _traffic_end(settings: Settings) -> tuple[int, float]:
    with open_store(settings).read() as conn:
        count, last = conn.execute(select(func.count(), func.max(predictions.c.at)).select_from(predictions)).one()
    return int(count or 0), float(last or 0.0)


def build_workspace(folder: Path, rows: int, fresh: bool) -> Settings:
    """``rows`` predictions of v1 over two days (the last three hours drifted), 10 % labelled."""
    settings = _settings(folder)
    if not fresh and (folder / "metrics" / "opscore.db").exists() and _traffic_end(settings)[0] == rows:
        return settings
    dispose_stores()
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    settings = _settings(folder)
    train_version(settings, "v1", credit_applications(n_rows=3_000, seed=1), "default",
                  actor=Actor("bench", "operator", "cli"), then="promote")
    loaded = load_version(settings, "v1")
    pools = []
    for shift in (0.0, 1.0):
        traffic = credit_applications(n_rows=DISTINCT_ROWS, seed=9, shift=shift).drop(columns="default")
        valid = validate_frame(loaded.schema, traffic)
        scores = loaded.predict_frame(valid.frame)
        features = valid.frame.astype(object).where(valid.frame.notna(), None).to_dict(orient="records")
        pools.append((features, scores.predictions, scores.positive_probability()))
    rng = np.random.default_rng(7)
    end = (time.time() // 60) * 60
    at = np.sort(end - rng.random(rows) * DAYS * 86_400)
    drifted = at >= end - DRIFTED_HOURS * 3600
    latency = rng.lognormal(np.log(9.0), 0.4, rows)
    failed = rng.random(rows) < 0.003
    writer = TelemetryWriter(settings).start()
    chunk = 100_000
    for first in range(0, rows, chunk):
        batch = []
        for i in range(first, min(first + chunk, rows)):
            features, predicted, probability = pools[int(drifted[i])]
            k = i % DISTINCT_ROWS
            batch.append(PredictionRecord(
                f"bench-{i}", float(at[i]), "v1", "api", float(latency[i]), "error" if failed[i] else "ok",
                features[k], None if failed[i] else predicted[k], None if failed[i] else probability[k],
                "model call failed" if failed[i] else None))
        writer.submit_many(batch)
        writer.flush(timeout=600)
        print(f"  logged {min(first + chunk, rows):,} / {rows:,}", file=sys.stderr, flush=True)
    assert writer.close(timeout=600) and writer.stats.dropped == 0, writer.stats
    labelled = np.flatnonzero((rng.random(rows) < LABELLED_SHARE) & ~failed)
    store = open_store(settings)
    for first in range(0, len(labelled), 20_000):
        record_feedback(store, [{"request_id": f"bench-{i}", "label": int(rng.random() < 0.2)}
                                for i in labelled[first:first + 20_000]])
    dispose_stores()
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild the workspaces")
    args = parser.parse_args()
    logging.getLogger("opscore.alerts").setLevel(logging.ERROR)  # the log channel would print every alert
    started = time.perf_counter()
    workspaces = {n: build_workspace(OUT / f"alerts-{n}", n, args.fresh) for n in SIZES}
    print(f"workspaces ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    ends = {n: _traffic_end(s)[1] + 1 for n, s in workspaces.items()}
    for settings in workspaces.values():
        rules = configured_rules(settings)
        assert len(rules) == RULES, f"{len(rules)} rules configured, expected {RULES}"
    timings: dict[int, list[float]] = {n: [] for n in SIZES}
    cpu: dict[int, list[float]] = {n: [] for n in SIZES}
    last: dict[int, Any] = {}
    for round_number in range(ROUNDS + 1):
        for n in SIZES:
            began, cpu_began = time.perf_counter(), time.process_time()
            last[n] = evaluate(workspaces[n], now=ends[n] + round_number, sleep=lambda _s: None)
            if round_number:
                timings[n].append(time.perf_counter() - began)
                cpu[n].append(time.process_time() - cpu_began)
    medians = {n: statistics.median(timings[n]) for n in SIZES}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    small, large = SIZES
    ratio = medians[large] / medians[small]
    rows = [[f"{n:,}", last[n].rules, f"{medians[n] * 1000:.0f} ms", f"{min(timings[n]) * 1000:.0f} ms",
             f"{max(timings[n]) * 1000:.0f} ms", f"{statistics.median(cpu[n]) * 1000:.0f} ms",
             last[n].states.get("firing", 0), f"{medians[n] / medians[small]:.2f}"] for n in SIZES]
    table = markdown_table(["logged predictions", "rules", "evaluation (median)", "fastest", "slowest",
                            "CPU (median)", "alerts firing", "× 100,000"], rows)
    body = (
        f"One full evaluation (every rule's signal, the state moves in one transaction, notification to the log "
        f"channel), {ROUNDS} rounds alternating between the workspaces after one uncounted round that opens the "
        f"alerts. Workspaces built through TelemetryWriter and record_feedback: one production version, two days "
        f"of traffic whose last {DRIFTED_HOURS} hours come from a drifted population, {LABELLED_SHARE:.0%} "
        f"labelled, SQLite (WAL). Rules: the defaults plus rules over every signal at windows from 5 minutes to "
        f"3 days. Load average {load:.1f} when the rounds ended.\n\n{table}\n\n"
        f"At {large:,}: **{medians[large] * 1000:.0f} ms** (target < {BUDGET_SECONDS * 1000:.0f} ms); "
        f"{large:,} ÷ {small:,}: **{ratio:.2f}** (target ≤ {RATIO_TARGET}). Latency, errors and throughput "
        f"come from the per-minute rollups, drift and data quality from the feature rollups, each read once "
        f"per window however many rules share it (drift and quality share theirs); only accuracy reads rows: the "
        f"newest {workspaces[large].alert_accuracy_rows:,} labelled predictions of the longest accuracy window, once "
        f"for every accuracy rule. Before that bound the accuracy signal ran the accuracy monitor (every labelled "
        f"row with its features, bootstrap intervals) per rule: 3.3 s per evaluation at 100,000 and growing with "
        f"traffic; wall time here is about twice the CPU time because the 2 cores are shared with other work."
    )
    print(table)
    print(f"ratio {ratio:.2f}; at {large:,} {medians[large] * 1000:.0f} ms")
    write_section("Alerts", body)


if __name__ == "__main__":
    main()
