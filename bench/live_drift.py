"""Live drift benchmarks: a 24 h drift report costs the same at 100,000 and at 1,000,000 predictions.

- Live drift: ``live_drift`` over the last 24 h on a workspace with 100,000 and one with 1,000,000
  predictions logged in those 24 h. Both are built through the real write path: a trained version
  scores real rows, every record goes through :class:`TelemetryWriter`, which writes the raw rows
  and, in the same transaction, the latency and per-feature rollups; 10 % are labelled through
  ``record_feedback``. The last 6 hours come from a shifted population (a drift episode). Sizes
  alternate round by round; each figure is the median.
- The Drift page on both workspaces, cold (caches cleared), through AppTest as bench/dashboard.py
  renders every page.
- Serving cost of the feature rollups: throughput at concurrency 64 of two real ``opscore serve``
  processes, ``feature_rollups`` on and off, alternating rounds (bench/serving.py's helpers).

Run: ``.venv/bin/python bench/live_drift.py [--skip-serving] [--skip-page]`` (about 10 minutes).
Workspaces are kept in ``bench/out/live-drift-N`` (git-ignored) and reused when they hold N
predictions and were built within the hour. Writes the ``### Live drift`` part of the ``## Drift`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.common import machine, markdown_table, write_subsection  # noqa: E402
from opscore.access.actors import Actor  # noqa: E402
from opscore.config import Settings, load_settings, replace  # noqa: E402
from opscore.data.features import validate_frame  # noqa: E402
from opscore.demo.credit_data import TARGET, credit_applications  # noqa: E402
from opscore.models.training import train_version  # noqa: E402
from opscore.monitoring.live_drift import live_drift  # noqa: E402
from opscore.serving.feedback import record_feedback  # noqa: E402
from opscore.serving.predictor import load_version  # noqa: E402
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter  # noqa: E402
from opscore.store import dispose_stores, feature_rollups, open_store, predictions  # noqa: E402

OUT = ROOT / "bench" / "out"
SIZES = (100_000, 1_000_000)
WINDOW = 86_400.0
DRIFT_HOURS = 6
DISTINCT_ROWS = 5_000
LABELLED_SHARE = 0.1
ROUNDS = 15
PAGE_ROUNDS = 3
SERVING_ROUNDS = 9
RATIO_TARGET, MS_TARGET, PAGE_TARGET_S, SERVING_TARGET = 1.5, 300.0, 2.0, 0.9


def _settings(folder: Path) -> Settings:
    env = {"OPSCORE_WORKSPACE": str(folder), "OPSCORE_OPERATOR_PASSWORD": "bench", "OPSCORE_FOREST_TREES": "30",
           "OPSCORE_BOOSTING_ROUNDS": "50"}
    return replace(load_settings(folder, env=env), telemetry_buffer=250_000, telemetry_batch=10_000)


def _logged(settings: Settings) -> int:
    with open_store(settings).read() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar() or 0)


def _scored(settings: Settings, shift: float, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    loaded = load_version(settings, "v1")
    traffic = credit_applications(n_rows=DISTINCT_ROWS, seed=seed, shift=shift).drop(columns=TARGET)
    valid = validate_frame(loaded.schema, traffic)
    scores = loaded.predict_frame(valid.frame)
    features = valid.frame.astype(object).where(valid.frame.notna(), None).to_dict(orient="records")
    return features, scores.predictions, scores.positive_probability()


def build_workspace(folder: Path, rows: int, end: float) -> tuple[Settings, float]:
    """One version in production and ``rows`` predictions in the 24 h before ``end``; returns (settings, seconds)."""
    settings = _settings(folder)
    marker = folder / "end"
    # Reused only while its traffic still fills the page's "last 24 hours" (built within the hour).
    if marker.exists() and end - float(marker.read_text()) < 3600 and _logged(settings) == rows:
        return settings, 0.0
    dispose_stores()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    settings = _settings(folder)
    started = time.perf_counter()
    train_version(settings, "v1", credit_applications(n_rows=3_000, seed=1), TARGET,
                  actor=Actor("bench", "operator", "cli"), then="promote")
    calm, drifted = _scored(settings, 0.0, 9), _scored(settings, 0.8, 10)
    rng = np.random.default_rng(rows)
    at = np.sort(end - rng.random(rows) * WINDOW)
    latency = rng.lognormal(np.log(9.0), 0.4, rows)
    episode = end - DRIFT_HOURS * 3600
    writer = TelemetryWriter(settings).start()
    chunk = 100_000
    for first in range(0, rows, chunk):
        batch = []
        for i in range(first, min(first + chunk, rows)):
            features, predicted, probability = drifted if at[i] >= episode else calm
            k = i % DISTINCT_ROWS
            batch.append(PredictionRecord(f"bench-{i}", float(at[i]), "v1", "api", float(latency[i]), "ok",
                                          features[k], predicted[k], probability[k]))
        writer.submit_many(batch)
        writer.flush(timeout=900)
        print(f"  {rows:,}: logged {min(first + chunk, rows):,}", file=sys.stderr, flush=True)
    writer.close(timeout=900)
    assert writer.stats.written == rows and writer.stats.dropped == 0, writer.stats
    labelled = np.flatnonzero(rng.random(rows) < LABELLED_SHARE)
    store = open_store(settings)
    for first in range(0, len(labelled), 20_000):
        record_feedback(store, [{"request_id": f"bench-{i}", "label": int(rng.random() < 0.2)}
                                for i in labelled[first:first + 20_000]])
    (folder / "end").write_text(repr(end))
    seconds = time.perf_counter() - started
    dispose_stores()
    return settings, seconds


def _rollup_rows(settings: Settings) -> int:
    with open_store(settings).read() as conn:
        return int(conn.execute(select(func.count()).select_from(feature_rollups)).scalar() or 0)


def bench_live_drift(workspaces: dict[int, tuple[Settings, float]], rounds: int = ROUNDS) -> dict:
    """Median time of live_drift over 24 h per size, sizes alternating round by round."""
    timings: dict[int, list[float]] = {n: [] for n in workspaces}
    drifted: dict[int, list[str]] = {}
    window_rows: dict[int, int] = {}
    for settings, end in workspaces.values():
        live_drift(settings, end - WINDOW, end)  # store opened and files cached, off the clock
    for _ in range(rounds):
        for n, (settings, end) in workspaces.items():
            started = time.perf_counter()
            report = live_drift(settings, end - WINDOW, end)
            timings[n].append(time.perf_counter() - started)
            drifted[n], window_rows[n] = report.report.drifted_columns, report.rows
    out = {n: {"ms": statistics.median(t) * 1000, "min_ms": min(t) * 1000, "max_ms": max(t) * 1000,
               "drifted": drifted[n], "rows": window_rows[n], "rollup_rows": _rollup_rows(workspaces[n][0])}
           for n, t in timings.items()}
    small, large = min(out), max(out)
    return {"sizes": out, "ratio": out[large]["ms"] / out[small]["ms"]}


def bench_page(workspaces: dict[int, tuple[Settings, float]], rounds: int = PAGE_ROUNDS) -> dict:
    """Cold and warm render of the Drift page per size (bench/dashboard.py's way), sizes alternating."""
    from bench import dashboard

    dashboard._declared_pages_only()
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in workspaces}
    for _ in range(rounds):
        for n, (settings, _) in workspaces.items():
            runs[n].append(dashboard.time_page(settings, "pages/drift.py", None))
    return {n: {"cold_s": statistics.median(r[0] for r in rs), "warm_s": statistics.median(r[1] for r in rs)}
            for n, rs in runs.items()}


def bench_serving_cost(rounds: int = SERVING_ROUNDS) -> dict:
    """Requests/s at concurrency 64, feature rollups on against off, two real servers, alternating."""
    from bench import serving

    with tempfile.TemporaryDirectory() as folder:
        bodies = serving.prepare(Path(folder))
        runs: dict[str, list[dict]] = {"on": [], "off": []}
        with serving.server(Path(folder), batching=True, feature_rollups=True) as on, \
                serving.server(Path(folder), batching=True, feature_rollups=False) as off:
            for _ in range(rounds):
                for mode, port in (("on", on), ("off", off)):
                    runs[mode].append(serving.measure(port, bodies, 64))
                    print(f"feature rollups {mode:<3} concurrency 64: {runs[mode][-1]}", file=sys.stderr, flush=True)
    result = {mode: serving._median(r) for mode, r in runs.items()}
    result["ratio"] = result["on"]["rps"] / result["off"]["rps"]
    result["ratios"] = [a["rps"] / b["rps"] for a, b in zip(runs["on"], runs["off"], strict=True)]
    return result


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report(live: dict, build: dict[int, float], page: dict | None, cost: dict | None, load: tuple[float, float]) -> str:
    sizes = live["sizes"]
    large = max(sizes)
    rows = [[f"{n:,}", f"{s['rows']:,}", f"{s['rollup_rows']:,}", f"{s['ms']:.1f} ms",
             f"{s['min_ms']:.1f} / {s['max_ms']:.1f} ms", ", ".join(s["drifted"]) or "none"]
            for n, s in sorted(sizes.items())]
    text = (
        f"_{machine()}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end._\n\n"
        f"`live_drift` over the last 24 h, production's version against its reference profile, on two "
        f"workspaces built through the real write path (a trained version scores real rows; every record goes "
        f"through `TelemetryWriter`, which writes the raw row and, in the same transaction, the latency and "
        f"per-feature rollups; {LABELLED_SHARE:.0%} labelled), the last {DRIFT_HOURS} h from a shifted "
        f"population. {ROUNDS} rounds, sizes alternating, median shown (after one untimed call per workspace). "
        f"SQLite (WAL).\n\n"
        + markdown_table(["predictions in 24 h", "rows in the report", "feature rollup rows", "live drift (median)",
                          "fastest / slowest", "drifted columns"], rows)
        + "\n\n"
        f"- Time at 1,000,000 ÷ at 100,000: **{live['ratio']:.2f}** (target ≤ {RATIO_TARGET}): "
        f"{_yes(live['ratio'] <= RATIO_TARGET)}.\n"
        f"- At 1,000,000: **{sizes[large]['ms']:.0f} ms** (target < {MS_TARGET:.0f} ms): "
        f"{_yes(sizes[large]['ms'] < MS_TARGET)}.\n"
        f"- Building the workspaces (training, scoring, logging through the writer, labels): "
        + ", ".join(f"{seconds:.0f} s for {n:,}" for n, seconds in sorted(build.items()) if seconds)
        + (" (reused from an earlier run)" if not all(build.values()) else "") + ".\n"
    )
    if page is not None:
        page_rows = [[f"{n:,}", f"{p['cold_s'] * 1000:.0f} ms", f"{p['warm_s'] * 1000:.0f} ms",
                      _yes(p["cold_s"] < PAGE_TARGET_S)] for n, p in sorted(page.items())]
        text += (
            f"\nThe Drift page (default window, the last 24 h) on the same workspaces, rendered through AppTest as "
            f"an operator the way bench/dashboard.py renders every page, median of {PAGE_ROUNDS} rounds; cold = "
            f"caches cleared first, warm = the rerun right after:\n\n"
            + markdown_table(["predictions in 24 h", "cold", "warm (cached)", f"cold under {PAGE_TARGET_S:g} s"],
                             page_rows) + "\n"
        )
    if cost is not None:
        on, off = cost["on"], cost["off"]
        text += (
            f"\nServing cost of the feature rollups: two real `opscore serve` processes on one workspace (the "
            f"default ensemble, telemetry and batching on), `feature_rollups` on and off, single-row `/predict` "
            f"at concurrency 64 from a separate load process (bench/serving.py's), {SERVING_ROUNDS} alternating "
            f"rounds, median:\n\n"
            + markdown_table(["feature rollups", "req/s", "p50 ms", "p95 ms", "errors"], [
                ["off (baseline)", f"{off['rps']:.0f}", f"{off['p50_ms']:.1f}", f"{off['p95_ms']:.1f}", off["errors"]],
                ["on", f"{on['rps']:.0f}", f"{on['p50_ms']:.1f}", f"{on['p95_ms']:.1f}", on["errors"]]])
            + f"\n\n- On ÷ off (medians): **{cost['ratio']:.2f}** (target ≥ {SERVING_TARGET}): "
            f"{_yes(cost['ratio'] >= SERVING_TARGET)}; median of the rounds' own ratios "
            f"{statistics.median(cost['ratios']):.2f}; per round: {', '.join(f'{r:.2f}' for r in cost['ratios'])}.\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the results, leave RESULTS.md alone")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    end = (time.time() // 300) * 300
    workspaces, build = {}, {}
    for n in SIZES:
        folder = OUT / f"live-drift-{n}"
        settings, seconds = build_workspace(folder, n, end)
        workspaces[n] = (settings, float((folder / "end").read_text()))
        build[n] = seconds
    live = bench_live_drift(workspaces)
    print(live, file=sys.stderr, flush=True)
    page = None if args.skip_page else bench_page(workspaces)
    print(page, file=sys.stderr, flush=True)
    cost = None if args.skip_serving else bench_serving_cost()
    print(cost, file=sys.stderr, flush=True)
    body = report(live, build, page, cost, (load_start, os.getloadavg()[0]))
    print(body)
    if not args.no_write:
        write_subsection("Drift", "Live drift", body)


if __name__ == "__main__":
    main()
