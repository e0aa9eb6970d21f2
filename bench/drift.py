"""Drift benchmark: opscore's file drift report against Evidently's DataDriftPreset on the same files.

100,000 x 50 float reference against 100,000 x 50 current with 10 columns shifted by 0.5 std, both
written to parquet under bench/out/drift/. Each side runs as its own subprocess that reads the files,
then times the drift computation and samples its resident memory while it runs. Evidently runs
from its own venv (bench/out/.evidently-venv, created when absent: evidently 0.7 needs pandas < 3),
opscore from this checkout. The two alternate round by round, so a busy moment on a shared machine
hits both. Then 1,000,000 x 50 in process, against the time to sort every column once (the floor
for exact KS or Wasserstein). Writes the ``## Drift`` section of bench/RESULTS.md.

Run: ``.venv/bin/python bench/drift.py`` (about 5 minutes; the first run also builds Evidently's venv).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "drift"
EVIDENTLY_VENV = ROOT / "bench" / "out" / ".evidently-venv"
EVIDENTLY_REQUIREMENTS = ["evidently==0.7.*", "pandas<3", "pyarrow"]
ROWS, BIG_ROWS, COLUMNS = 100_000, 1_000_000, 50
SHIFTED = [f"f{i}" for i in range(0, COLUMNS, 5)]  # 10 of 50
ROUNDS = 5  # alternating rounds at 100,000 rows
BIG_ROUNDS = 3  # in process at 1,000,000 rows


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _ResidentPeak:
    """This process's resident memory just before a block and its highest, sampled every 5 ms, during it."""

    def __enter__(self) -> _ResidentPeak:
        import gc

        gc.collect()
        self.before = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join()
        self.peak = max(self.peak, _rss_mb())

    def figures(self, seconds: float, cpu_seconds: float, drifted: list[str]) -> dict:
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rss_before_mb": self.before, "rss_peak_during_mb": self.peak,
                "drifted": drifted}


# -- the workers (each in its own process; the Evidently one in Evidently's venv) ---------------
def _read() -> tuple:
    import pandas as pd
    import pyarrow

    frames = pd.read_parquet(OUT / "reference.parquet"), pd.read_parquet(OUT / "current.parquet")
    pyarrow.default_memory_pool().release_unused()  # what reading left behind is not either side's report
    return frames


def opscore_worker() -> dict:
    sys.path.insert(0, str(ROOT))
    from opscore.monitoring.file_drift import file_drift

    reference, current = _read()
    with _ResidentPeak() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        report = file_drift(reference, current)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return memory.figures(seconds, cpu_seconds, report.drifted_columns)


def evidently_worker() -> dict:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference, current = _read()
    with _ResidentPeak() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            p_value_test = "p_value" in config["method"]
            value, threshold = metric["value"], config["threshold"]
            if (value < threshold) if p_value_test else (value >= threshold):
                drifted.append(config["column"])
    return memory.figures(seconds, cpu_seconds, drifted)


# -- the driver ---------------------------------------------------------------------------------
def frames(rows: int, seed: int) -> tuple:
    """Float columns of varied scale; current equals reference in law except SHIFTED, moved 0.5 std."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(COLUMNS)]
    scales, centres = rng.uniform(0.1, 100, COLUMNS), rng.uniform(-1000, 1000, COLUMNS)
    reference = pd.DataFrame(rng.normal(size=(rows, COLUMNS)) * scales + centres, columns=names)
    moved = np.array([0.5 if name in SHIFTED else 0.0 for name in names])
    current = pd.DataFrame((rng.normal(size=(rows, COLUMNS)) + moved) * scales + centres, columns=names)
    return reference, current


def _evidently_python() -> tuple[Path | None, str]:
    """Evidently's interpreter (building its venv when absent), or None and the exact error."""
    python = EVIDENTLY_VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import evidently"], capture_output=True).returncode == 0:
        return python, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True, capture_output=True, text=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        return None, f"`{' '.join(error.cmd)}` failed: {(error.stderr or error.stdout).strip().splitlines()[-1]}"
    return python, ""


def _run_worker(python: Path, side: str) -> dict:
    done = subprocess.run([str(python), __file__, "--worker", side], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{side} worker failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _in_process_big() -> dict:
    import numpy as np

    from opscore.monitoring.file_drift import file_drift

    reference, current = frames(BIG_ROWS, seed=2)
    sort_times, drift_times = [], []
    for _ in range(BIG_ROUNDS):
        started = time.perf_counter()
        for frame in (reference, current):
            for name in frame.columns:
                np.sort(frame[name].to_numpy())
        sort_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = file_drift(reference, current)
        drift_times.append(time.perf_counter() - started)
    return {"sort": statistics.median(sort_times), "drift": statistics.median(drift_times), "drifted": report.drifted_columns}


def _names(columns: list[str]) -> str:
    return ", ".join(columns) if columns else "none"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.common import markdown_table, write_section

    load_at_start = os.getloadavg()[0]
    OUT.mkdir(parents=True, exist_ok=True)
    reference, current = frames(ROWS, seed=1)
    reference.to_parquet(OUT / "reference.parquet")
    current.to_parquet(OUT / "current.parquet")
    del reference, current

    evidently, evidently_error = _evidently_python()
    runs: dict[str, list[dict]] = {"opscore": [], "evidently": []}
    for _ in range(ROUNDS):
        runs["opscore"].append(_run_worker(Path(sys.executable), "opscore"))
        if evidently is not None:
            runs["evidently"].append(_run_worker(evidently, "evidently"))
    big = _in_process_big()
    load_at_end = os.getloadavg()[0]

    def summary(side: str) -> dict:
        results = runs[side]
        return {"seconds": statistics.median(r["seconds"] for r in results),
                "cpu": statistics.median(r["cpu_seconds"] for r in results),
                "process": max(r["rss_peak_during_mb"] for r in results),
                "before": statistics.median(r["rss_before_mb"] for r in results),
                "added": max(r["rss_peak_during_mb"] - r["rss_before_mb"] for r in results),
                "drifted": results[-1]["drifted"],
                "stable": all(r["drifted"] == results[-1]["drifted"] for r in results)}

    def row(label: str, figures: dict, digits: int) -> list:
        return [label, f"{figures['seconds']:.{digits}f} s", f"{figures['cpu']:.{digits}f} s", f"{figures['added']:.0f} MB",
                f"{figures['process']:.0f} MB", f"{figures['before']:.0f} MB", _names(figures["drifted"])]

    ours = summary("opscore")
    rows = [row("opscore `file_drift`", ours, 3)]
    lines = []
    if evidently is not None:
        theirs = summary("evidently")
        rows.insert(0, row("Evidently 0.7 `DataDriftPreset` (baseline)", theirs, 2))
        speedup, cpu_ratio = theirs["seconds"] / ours["seconds"], theirs["cpu"] / ours["cpu"]
        added = ours["added"] / theirs["added"]
        process = ours["process"] / theirs["process"]
        lines += [
            f"- **{speedup:.0f}×** faster than Evidently (target ≥ 50×): {ours['seconds']:.3f} s against {theirs['seconds']:.2f} s; "
            f"in CPU time, which other work on the machine disturbs less, {cpu_ratio:.0f}×.",
            f"- Memory the report adds: **{added:.2f}** of Evidently's (target ≤ 0.33): {ours['added']:.0f} MB against "
            f"{theirs['added']:.0f} MB. Whole process at its peak during the report: {process:.2f} of Evidently's "
            f"({ours['process']:.0f} against {theirs['process']:.0f} MB), of which {ours['before']:.0f} and "
            f"{theirs['before']:.0f} MB were there before it: interpreter, imports and the two frames (80 MB).",
            f"- Same drifted columns: **{'yes' if ours['drifted'] == theirs['drifted'] else 'no'}** "
            f"(shifted: {_names(SHIFTED)}); verdicts identical in every round: "
            f"{'yes' if ours['stable'] and theirs['stable'] else 'no'}.",
        ]
    else:
        lines.append(f"- Evidently could not be installed, so it was not measured: {evidently_error}")
    lines.append(
        f"- 1,000,000 × 50 against 1,000,000 × 50, in process: **{big['drift']:.2f} s** (target < 5 s), "
        f"{big['drift'] / big['sort']:.1f}× the {big['sort']:.2f} s it takes to sort every column once; "
        f"drifted: {_names(big['drifted'])}."
    )

    body = (
        f"100,000 × 50 float reference against 100,000 × 50 current, columns of varied scale, 10 shifted by "
        f"0.5 std; both read from parquet by a fresh process per run, {ROUNDS} alternating rounds: median time, "
        f"largest memory. Time is the report alone (CPU time: all its threads). Memory is resident set size, sampled every 5 ms during the report: "
        f"added is its highest less the size just before the report (data loaded, reader's pool released). "
        f"Load average (other work on the machine included): {load_at_start:.1f} at the start, {load_at_end:.1f} at the end.\n\n"
        + markdown_table(["report", "time", "CPU time", "memory added", "process peak", "process before", "drifted columns"], rows)
        + "\n\n" + "\n".join(lines) + "\n\n"
        "opscore reads each column once (finite values sorted once), runs Evidently's default test per column "
        "(normed Wasserstein here: 100,000 reference rows) and builds no plots; Wasserstein on two sorted "
        "samples is one linear pass with no sort of the pooled sample."
    )
    print(body)
    write_section("Drift", body, keep_subsections=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["opscore", "evidently"])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(opscore_worker() if args.worker == "opscore" else evidently_worker()))
    else:
        main()
