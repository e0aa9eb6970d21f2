"""Serving benchmark: throughput and latency of ``opscore serve`` with micro-batching on and off.

One workspace, one model (the default ensemble on the demo data). Each configuration runs as a real
``opscore serve`` subprocess; the load comes from a separate, lightweight process (plain asyncio
streams with keep-alive, about 0.2 ms of CPU per request, so it does not starve the server on two
cores). Configurations that are compared run alternately, round after round, so a busy moment on a
shared machine hits both; each cell is the median over rounds. Also runs bench/telemetry.py's
ingestion and rollup-query benchmarks and writes the ``## Serving`` section of bench/RESULTS.md.

Run: ``.venv/bin/python bench/serving.py`` (about 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONCURRENCY = (1, 4, 16, 64)
SECONDS = 4.0  # measured per run, after WARMUP
WARMUP = 1.0
ROUNDS = 3
TELEMETRY_ROUNDS = 5
SWEEP_ROUNDS = 2
SWEEP = {"batch_max_size": (16, 64, 256), "batch_max_wait_ms": (0.0, 2.0, 10.0, 20.0)}


# -- the load generator (runs in its own process; standard library only) -----------------------
async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _load(port: int, requests: list[bytes], concurrency: int, seconds: float, warmup: float) -> dict:
    latencies: list[float] = []
    errors = 0
    begin = time.perf_counter()
    measure_from, stop_at = begin + warmup, begin + warmup + seconds

    async def worker(offset: int) -> None:
        # Requests answered inside the window count (a closed loop's throughput even while a slow
        # configuration is still filling up), each with its own latency.
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i, done = offset, begin
        while done < stop_at:
            sent = time.perf_counter()
            status = await _exchange(reader, writer, requests[i % len(requests)])
            done = time.perf_counter()
            if measure_from <= done < stop_at:
                latencies.append(done - sent)
                errors += status != 200
            i += concurrency
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    latencies.sort()
    count = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] * 1000

    return {"requests": count, "errors": errors, "rps": count / seconds, "p50_ms": pct(0.50),
            "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


def load_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    bodies = json.loads(Path(args.bodies).read_text())
    requests = [(f"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode() for body in bodies]
    print(json.dumps(asyncio.run(_load(args.port, requests, args.concurrency, args.seconds, WARMUP))))


# -- the orchestration ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    import httpx

    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    return response.status_code, response.text


@contextlib.contextmanager
def server(workspace: Path, **settings: object) -> Iterator[int]:
    """``opscore serve`` on a free port with OPSCORE_* settings; stopped gracefully afterwards."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCORE_")}
    env |= {"OPSCORE_WORKSPACE": str(workspace), "OPSCORE_ADMIN_TOKEN": "bench"}
    env |= {f"OPSCORE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()}
    log = workspace / f"serve-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "opscore", "serve", "--port", str(port)], cwd=workspace,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"opscore serve exited:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if _get(port, "/health")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("opscore serve did not become ready in 120 s")
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        process.wait(60)


def _batch_counts(port: int) -> tuple[float, float]:
    text = _get(port, "/metrics")[1]
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith(("opscore_batch_size_sum", "opscore_batch_size_count"))}
    return values.get("opscore_batch_size_sum", 0.0), values.get("opscore_batch_size_count", 0.0)


def measure(port: int, bodies: Path, concurrency: int) -> dict:
    rows_before, calls_before = _batch_counts(port)
    done = subprocess.run([sys.executable, __file__, "--load", "--port", str(port), "--bodies", str(bodies),
                           "--concurrency", str(concurrency)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    rows_after, calls_after = _batch_counts(port)
    calls = calls_after - calls_before
    result["rows_per_call"] = (rows_after - rows_before) / calls if calls else None
    return result


def _median(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms")
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)
    out["requests"] = sum(r["requests"] for r in runs)
    per_call = [r["rows_per_call"] for r in runs if r.get("rows_per_call")]
    out["rows_per_call"] = statistics.median(per_call) if per_call else None
    return out


def prepare(folder: Path) -> Path:
    """Train the benchmark's one model and write the request bodies; returns the bodies file."""
    from opscore.access.actors import Actor
    from opscore.config import load_settings
    from opscore.demo.credit_data import TARGET, credit_applications
    from opscore.models.training import train_version

    settings = load_settings(folder, env={})
    train_version(settings, "v1", credit_applications(seed=settings.seed), TARGET,
                  actor=Actor("bench", "operator", "cli"), then="promote")
    frame = credit_applications(n_rows=2_000, seed=99).drop(columns=[TARGET])
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    bodies = folder / "bodies.json"
    bodies.write_text(json.dumps([json.dumps({"instances": [row]}) for row in rows]))
    return bodies


def run_serving(folder: Path, bodies: Path) -> dict:
    from opscore.config import Settings

    defaults = Settings()
    results: dict = {"batching": {}, "telemetry": {}, "sweep": {}, "load_at_start": os.getloadavg()[0],
                     "defaults": {"batch_max_size": defaults.batch_max_size,
                                  "batch_max_wait_ms": defaults.batch_max_wait_ms}}
    with server(folder, batching=True) as on, server(folder, batching=False) as off:
        runs: dict = {(mode, c): [] for mode in ("on", "off") for c in CONCURRENCY}
        for _ in range(ROUNDS):
            for c in CONCURRENCY:
                for mode, port in (("on", on), ("off", off)):
                    runs[mode, c].append(measure(port, bodies, c))
                    print(f"batching {mode:<3} concurrency {c:>2}: {runs[mode, c][-1]}", flush=True)
        results["batching"] = {f"{mode}@{c}": _median(r) for (mode, c), r in runs.items()}
    with server(folder, batching=True, telemetry=True) as logged, server(folder, batching=True, telemetry=False) as bare:
        runs = {"on": [], "off": []}
        for _ in range(TELEMETRY_ROUNDS):
            for mode, port in (("on", logged), ("off", bare)):
                runs[mode].append(measure(port, bodies, 64))
                print(f"telemetry {mode:<3} concurrency 64: {runs[mode][-1]}", flush=True)
        results["telemetry"] = {mode: _median(r) for mode, r in runs.items()}
    with contextlib.ExitStack() as stack:
        ports = {f"{name}={value:g}": stack.enter_context(server(folder, batching=True, **{name: value}))
                 for name, values in SWEEP.items() for value in values}
        runs = {label: [] for label in ports}
        for _ in range(SWEEP_ROUNDS):
            for label, port in ports.items():
                runs[label].append(measure(port, bodies, 64))
                print(f"{label} concurrency 64: {runs[label][-1]}", flush=True)
        results["sweep"] = {label: _median(r) for label, r in runs.items()}
    return results


def report(serving: dict, telemetry: dict | None) -> str:
    from bench.common import markdown_table

    b = serving["batching"]
    rows = []
    for c in CONCURRENCY:
        on, off = b[f"on@{c}"], b[f"off@{c}"]
        rows.append([c, f"{off['rps']:.0f}", f"{on['rps']:.0f}", f"**{on['rps'] / off['rps']:.1f}×**",
                     f"{off['p50_ms']:.1f} / {off['p95_ms']:.1f} / {off['p99_ms']:.1f}",
                     f"{on['p50_ms']:.1f} / {on['p95_ms']:.1f} / {on['p99_ms']:.1f}",
                     f"{on['rows_per_call']:.1f}" if on["rows_per_call"] else "-",
                     on["errors"] + off["errors"]])
    table = markdown_table(["concurrency", "off: req/s", "on: req/s", "on ÷ off", "off: p50 / p95 / p99 ms",
                            "on: p50 / p95 / p99 ms", "rows per model call (on)", "errors"], rows)
    t_on, t_off = serving["telemetry"]["on"], serving["telemetry"]["off"]
    high, low = b["on@64"], b["off@64"]
    one_on, one_off = b["on@1"], b["off@1"]
    defaults = serving["defaults"]
    sweep = markdown_table(["setting (others at defaults)", "req/s", "p50 ms", "p95 ms", "rows per call"], [
        [name, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
         f"{r['rows_per_call']:.1f}" if r["rows_per_call"] else "-"] for name, r in serving["sweep"].items()])
    load = f"{os.getloadavg()[0]:.1f}"
    text = f"""
One model (the default ensemble, trained on the 6,000-row demo set), single-row `/predict` requests
over keep-alive connections from a separate load process; each server is a real `opscore serve`.
Batching on/off runs alternate, {ROUNDS} rounds of {SECONDS:.0f} s (after {WARMUP:g} s warm-up) per cell, median shown;
telemetry on (every prediction logged to SQLite) unless stated. Load average (other work on the
machine included): {serving['load_at_start']:.1f} at the start, {load} at the end.

{table}

- Concurrency 64: batching gives **{high['rps'] / low['rps']:.1f}×** the throughput of per-request prediction
  (target ≥ 10×) at p95 **{high['p95_ms']:.0f} ms** (target ≤ 100 ms).
- Concurrency 1: p50 with batching is **{one_on['p50_ms'] / one_off['p50_ms']:.2f}×** that without (target ≤ 1.1×):
  a lone request is never held back.
- Telemetry at concurrency 64 (batching on, {TELEMETRY_ROUNDS} alternating rounds): logging every prediction
  keeps **{t_on['rps'] / t_off['rps']:.2f}** of the throughput without logging (target ≥ 0.90):
  {t_on['rps']:.0f} vs {t_off['rps']:.0f} req/s, p95 {t_on['p95_ms']:.1f} vs {t_off['p95_ms']:.1f} ms.

Choosing the batching defaults (concurrency 64, {SWEEP_ROUNDS} alternating rounds, median):

{sweep}

Defaults chosen: `batch_max_size = {defaults['batch_max_size']}`, `batch_max_wait_ms = {defaults['batch_max_wait_ms']:g}`.
A batch waits only while more requests are expected: some are still being read, or fewer have come
than the previous batch held. Without the wait, concurrency 64 settles into two half-full batches
that alternate; with it they merge into full ones (fewer, larger model calls: more throughput and a
shorter tail), while at concurrency 1 nothing ever waits. The size caps how long one call may take.
Two measures found on the way matter as much: model calls run with one OpenMP thread (two threads
per call on two busy cores made a one-row call 5× slower), and the long-lived heap is frozen out of
the garbage collector after start-up (full collections of 110-160 ms were the whole p95 tail); it is
thawed, collected once and frozen again at each swap, so a model let go of is not kept for good.
"""
    if telemetry:
        ingestion, query = telemetry["ingestion"], telemetry["rollup_query"]
        sizes = query["sizes"]
        text += f"""
Telemetry store (bench/telemetry.py, same run): the writer ingests **{ingestion['writer_per_s']:,.0f}** records/s
({ingestion['ratio']:.2f} of raw `executemany`); p95 per minute over 24 h from rollups takes """
        text += ", ".join(f"{s['rollup_query_ms']:.0f} ms at {int(n):,}" for n, s in sorted(sizes.items(), key=lambda x: int(x[0])))
        text += f" predictions ({query['ratio_large_to_small']:.2f}× from the smallest to the largest).\n"
    return text


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        bodies = prepare(Path(folder))
        serving = run_serving(Path(folder), bodies)
    telemetry = None
    try:
        from bench import telemetry as telemetry_bench
    except ImportError:
        telemetry_bench = None
    if telemetry_bench is not None:
        telemetry = {"ingestion": telemetry_bench.bench_ingestion(),
                     "rollup_query": telemetry_bench.bench_rollup_query(repeats=5)}
        print(json.dumps(telemetry, indent=1, default=str), flush=True)
    from bench.common import write_section

    write_section("Serving", report(serving, telemetry))
    print(f"wrote the Serving section of bench/RESULTS.md in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--load"]:
        load_main(sys.argv[2:])
    else:
        main()
