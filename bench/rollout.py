"""Rollout benchmark: what a shadow at 100 % of traffic costs callers, and how fast replicas follow a split.

Two workspaces copied from one (same store contents, same two versions): in one a shadow deployment
sends a copy of every request to the candidate, in the other nothing is deployed. Each runs a real
``opscore serve``; the load comes from bench/serving.py's separate load process at concurrency 16,
single-row requests. The two servers are measured alternately, round after round, so a busy moment
on a shared machine hits both; each figure is the median over rounds. Then a second replica joins the
unshadowed workspace, a canary starts there, and the time between the two replicas applying the new
routing generation (each one's own ``applied_at``) is recorded. Writes the ``## Rollout`` section of
bench/RESULTS.md.

Run: ``.venv/bin/python bench/rollout.py`` (about 3 minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import _get, measure, prepare, server  # noqa: E402
from opscore.serving.shadowing import GATHER_SECONDS as GATHER  # noqa: E402

CONCURRENCY = 16
ROUNDS = 5
TARGET = 1.2


def _settings(folder: Path):
    from opscore.config import load_settings, replace

    # The benchmark's candidate is trained on another sample; its gates are not what is measured here.
    return replace(load_settings(folder, env={}), deploy_holdout_tolerance=1.0, deploy_benchmark_ratio=1_000.0)


def _prepare(base: Path) -> tuple[Path, Path, Path]:
    """One workspace with v1 (production) and v2, copied into a shadowed and a plain one; the request bodies."""
    from opscore.access.actors import Actor
    from opscore.demo.credit_data import TARGET as LABEL
    from opscore.demo.credit_data import credit_applications
    from opscore.models.training import train_version
    from opscore.store import dispose_stores

    source = base / "source"
    source.mkdir()
    bodies = prepare(source)
    settings = _settings(source)
    train_version(settings, "v2", credit_applications(seed=settings.seed + 1), LABEL,
                  actor=Actor("bench", "operator", "cli"), then="none")
    dispose_stores()
    shadowed, plain = base / "shadowed", base / "plain"
    shutil.copytree(source, shadowed)
    shutil.copytree(source, plain)
    return shadowed, plain, bodies


def _start(folder: Path, strategy: str, **options: object) -> str:
    from opscore.access.actors import Actor
    from opscore.rollout import deployments
    from opscore.store import dispose_stores

    found = deployments.start(_settings(folder), "v2", strategy, actor=Actor("bench", "operator", "cli"),
                              options=options)
    dispose_stores()
    if found.status != "running":
        raise RuntimeError(f"the {strategy} deployment did not start: {found.reason}")
    return found.id


def _routing(port: int) -> dict:
    return json.loads(_get(port, "/health")[1])["routing"]


def _median(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p95_ms", "p99_ms")} | {
        "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs)}


def run(base: Path) -> dict:
    shadowed, plain, bodies = _prepare(base)
    _start(shadowed, "shadow", shadow_share=1.0)
    results: dict = {"load_at_start": os.getloadavg()[0]}
    quiet = {"alert_evaluation_seconds": 0, "serve_worker": False}
    with server(shadowed, **quiet) as on, server(plain, **quiet) as off:
        runs: dict[str, list[dict]] = {"on": [], "off": []}
        for _ in range(ROUNDS):
            for mode, port in (("on", on), ("off", off)):
                runs[mode].append(measure(port, bodies, CONCURRENCY))
                print(f"shadow {mode:<3} concurrency {CONCURRENCY}: {runs[mode][-1]}", flush=True)
        results["on"], results["off"] = _median(runs["on"]), _median(runs["off"])
        deadline = time.monotonic() + 60
        while _routing(on)["shadow"]["backlog"] and time.monotonic() < deadline:
            time.sleep(0.2)
        results["shadow"] = _routing(on)["shadow"]

        with server(plain, **quiet) as second:
            before = _routing(off)["generation"], _routing(second)["generation"]
            _start(plain, "canary", weights=[5, 100])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                first_route, second_route = _routing(off), _routing(second)
                if first_route["generation"] > before[0] and second_route["generation"] > before[1]:
                    break
                time.sleep(0.05)
            results["replicas"] = {"first_applied_at": first_route["applied_at"],
                                   "second_applied_at": second_route["applied_at"],
                                   "gap_s": abs(first_route["applied_at"] - second_route["applied_at"])}
    return results


def report(results: dict) -> str:
    from bench.common import markdown_table
    from opscore.config import Settings

    on, off, shadow, replicas = results["on"], results["off"], results["shadow"], results["replicas"]
    ratio = on["p95_ms"] / off["p95_ms"]
    table = markdown_table(["shadow", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], [
        [name, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}", r["errors"]]
        for name, r in (("off", off), ("100 %", on))])
    verdict = "met" if ratio <= TARGET else "**not met**"
    return f"""
Two real `opscore serve` processes on copies of one workspace (the default ensemble as production,
a second one trained on another sample as the candidate), single-row `/predict` requests at
concurrency {CONCURRENCY} from bench/serving.py's load process; {ROUNDS} alternating rounds, median shown.
In one, a shadow deployment copies every request to the candidate (scored off the caller's path by
a child process, in batches of what queued within {GATHER * 1000:.0f} ms). Load average at the start:
{results['load_at_start']:.1f}, at the end: {os.getloadavg()[0]:.1f}.

{table}

- p95 for callers with the shadow at 100 % is **{ratio:.2f}×** that without (target ≤ {TARGET}×: {verdict});
  throughput {on['rps'] / off['rps']:.2f}× of the unshadowed server.
- Shadow copies: {shadow['submitted']:,} queued, {shadow['scored']:,} rows scored, **{shadow['dropped']:,} dropped**
  for a full queue (counted in `opscore_shadow_dropped_total`; the caller never waits for a copy).
- What is left of the cost is CPU: the shadow's model calls run in a child process, but a 100 % shadow
  doubles the model work on the same cores, and this machine's two were shared with other work.
- Two replicas on one store (SQLite here) applied a new routing generation **{replicas['gap_s'] * 1000:.0f} ms**
  apart (each polls every `alias_poll_seconds` = {Settings().alias_poll_seconds:g} s; target ≤ 1 s).
"""


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        results = run(Path(folder))
    print(json.dumps(results, indent=1), flush=True)
    from bench.common import write_section

    write_section("Rollout", report(results))
    print(f"wrote the Rollout section of bench/RESULTS.md in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
