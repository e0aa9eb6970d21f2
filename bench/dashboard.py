"""Dashboard benchmark: every page renders in under 2 s with 1,000,000 logged predictions.

Two workspaces are built the same way (two versions, real predictions from the models, a week of
traffic, 10 % of it labelled): one with 1,000 logged predictions (the baseline) and one with
1,000,000. Each page is rendered through AppTest, exactly as the tests do, with the caches cleared
first (cold: what the first person to open the page waits) and again right after (warm: served
from ``st.cache_data``). Times are medians of three rounds; the ratio is against the baseline
workspace in the same run.

Run: ``.venv/bin/python bench/dashboard.py [--rows 1000000] [--fresh]``. Workspaces are kept in
``bench/out/`` (git-ignored) and reused when they already hold the asked number of predictions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from bench.common import markdown_table, write_section  # noqa: E402
from opscore.access.actors import Actor
from opscore.config import Settings, load_settings, replace  # noqa: E402
from opscore.data.features import validate_frame  # noqa: E402
from opscore.demo.credit_data import credit_applications  # noqa: E402
from opscore.models.registry import promote  # noqa: E402
from opscore.models.training import train_version  # noqa: E402
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import load_version  # noqa: E402
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter
from opscore.store import dispose_stores, open_store, predictions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = str(ROOT / "dashboard.py")
OUT = Path(__file__).with_name("out")
# title -> (page, time window); None keeps the default window (last 24 hours).
PAGES = {"Overview": ("pages/overview.py", None), "Live predictions": ("pages/live.py", None),
         "Latency": ("pages/latency.py", None), "Latency, last 7 days": ("pages/latency.py", "Last 7 days"),
         "Drift": ("pages/drift.py", None),
         "Versions": ("pages/versions.py", None), "Retrain": ("pages/retrain.py", None),
         "Maintenance": ("pages/maintenance.py", None)}
BUDGET_SECONDS = 2.0
OPERATOR = Actor("bench", "operator", "dashboard")
DAYS = 7
DISTINCT_ROWS = 5_000
LABELLED_SHARE = 0.1


def _settings(folder: Path) -> Settings:
    env = {"OPSCORE_WORKSPACE": str(folder), "OPSCORE_OPERATOR_PASSWORD": "bench", "OPSCORE_FOREST_TREES": "30",
           "OPSCORE_BOOSTING_ROUNDS": "50"}
    return replace(load_settings(folder, env=env), telemetry_buffer=250_000, telemetry_batch=10_000)


def _logged(settings: Settings) -> int:
    with open_store(settings).read() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar() or 0)


def build_workspace(folder: Path, rows: int, fresh: bool) -> Settings:
    """Two versions and ``rows`` predictions over a week (v1 then v2 in production), 10 % labelled."""
    settings = _settings(folder)
    if not fresh and (folder / "metrics" / "opscore.db").exists() and _logged(settings) == rows:
        return settings
    dispose_stores()
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    settings = _settings(folder)
    builder = Actor("bench", "operator", "cli")
    train_version(settings, "v1", credit_applications(n_rows=3_000, seed=1), "default", actor=builder, then="promote")
    train_version(settings, "v2", credit_applications(n_rows=3_000, seed=2), "default", actor=builder, then="none")
    promote(settings, "v2", builder, "better holdout ROC-AUC")
    traffic = credit_applications(n_rows=DISTINCT_ROWS, seed=9).drop(columns="default")
    scored = {}
    for version_id in ("v1", "v2"):
        loaded = load_version(settings, version_id)
        valid = validate_frame(loaded.schema, traffic)
        scores = loaded.predict_frame(valid.frame)
        features = valid.frame.astype(object).where(valid.frame.notna(), None).to_dict(orient="records")
        scored[version_id] = (features, scores.predictions, scores.positive_probability())
    rng = np.random.default_rng(7)
    now = time.time()
    at = np.sort(now - rng.random(rows) * DAYS * 86_400)
    switch = now - 0.4 * DAYS * 86_400
    latency = rng.lognormal(np.log(9.0), 0.4, rows)
    failed = rng.random(rows) < 0.003
    writer = TelemetryWriter(settings).start()
    chunk = 100_000
    for first in range(0, rows, chunk):
        batch = []
        for i in range(first, min(first + chunk, rows)):
            version_id = "v1" if at[i] < switch else "v2"
            features, predicted, probability = scored[version_id]
            k = i % DISTINCT_ROWS
            batch.append(PredictionRecord(
                f"bench-{i}", float(at[i]), version_id, "api", float(latency[i]), "error" if failed[i] else "ok",
                features[k], None if failed[i] else predicted[k], None if failed[i] else probability[k],
                "model call failed" if failed[i] else None))
        writer.submit_many(batch)
        writer.flush(timeout=600)
        print(f"  logged {min(first + chunk, rows):,} / {rows:,}", file=sys.stderr, flush=True)
    writer.close(timeout=600)
    labelled = np.flatnonzero((rng.random(rows) < LABELLED_SHARE) & ~failed)
    store = open_store(settings)
    for first in range(0, len(labelled), 20_000):
        record_feedback(store, [{"request_id": f"bench-{i}", "label": int(rng.random() < 0.2)}
                                for i in labelled[first:first + 20_000]])
    dispose_stores()
    return settings


def _declared_pages_only() -> None:
    # AppTest builds a new PagesManager per run, which would switch the legacy pages/ discovery back
    # on; a real session keeps it off after the first st.navigation call (see tests/app/conftest.py).
    original = PagesManager.__init__

    def init(self: PagesManager, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init  # type: ignore[method-assign]


def time_page(settings: Settings, page: str, window: str | None) -> tuple[float, float]:
    """(cold, warm) seconds to render ``page`` as an operator; the first includes empty caches."""
    os.environ["OPSCORE_WORKSPACE"] = str(settings.workspace)
    os.environ["OPSCORE_OPERATOR_PASSWORD"] = "bench"
    dispose_stores()
    at = AppTest.from_file(DASHBOARD, default_timeout=120)
    at.session_state["actor"] = OPERATOR
    if window is not None:
        at.session_state["window"] = window
    at.run()  # imports and the entrypoint, off the clock
    st.cache_data.clear()
    st.cache_resource.clear()
    started = time.perf_counter()
    at.switch_page(page).run()
    cold = time.perf_counter() - started
    started = time.perf_counter()
    at.run()
    warm = time.perf_counter() - started
    if at.exception or at.error:
        raise RuntimeError(f"{page} failed: {[e.value for e in at.exception] + [e.value for e in at.error]}")
    return cold, warm


def measure(settings: Settings, rounds: int = 3) -> dict[str, tuple[float, float]]:
    out = {}
    for title, (page, window) in PAGES.items():
        runs = [time_page(settings, page, window) for _ in range(rounds)]
        out[title] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="rebuild the workspaces")
    args = parser.parse_args()
    _declared_pages_only()
    started = time.perf_counter()
    small = build_workspace(OUT / "dashboard-1000", 1_000, args.fresh)
    large = build_workspace(OUT / f"dashboard-{args.rows}", args.rows, args.fresh)
    print(f"workspaces ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    baseline = measure(small)
    loaded = measure(large)
    rows = []
    for title in PAGES:
        (base_cold, _), (cold, warm) = baseline[title], loaded[title]
        rows.append([title, f"{base_cold * 1000:.0f} ms", f"{cold * 1000:.0f} ms", f"{cold / base_cold:.2f}",
                     f"{warm * 1000:.0f} ms", "yes" if cold < BUDGET_SECONDS else "**no**"])
    table = markdown_table(
        ["page", "1,000 predictions, cold (baseline)", f"{args.rows:,} predictions, cold", "× baseline",
         f"{args.rows:,}, warm (cached)", f"cold under {BUDGET_SECONDS:g} s"], rows)
    body = (
        f"Each page rendered through AppTest as an operator, median of 3 rounds; cold = caches cleared first, "
        f"warm = the rerun right after (st.cache_data). Workspaces: two versions, a week of traffic with "
        f"production moving from v1 to v2, {LABELLED_SHARE:.0%} labelled, SQLite (WAL); the default time window "
        f"(last 24 h) unless the row says otherwise.\n\n{table}\n\n"
        "Pages read the per-minute latency rollups, never all raw rows: the live feed reads the newest "
        f"{large.live_window:,} rows of the chosen traffic source through the (source, at) index, the exact p95 "
        "on Latency reads the window's raw rows only below 200,000 rows (above, it is computed on request), "
        "Versions sums each version's rollups in SQL and reads only its last 7 days for the p95, and Retrain "
        "counts labelled rows with one query."
    )
    print(table)
    write_section("Dashboard", body)


if __name__ == "__main__":
    main()
