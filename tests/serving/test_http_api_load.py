"""A real ``opscore serve`` on loopback under concurrent traffic: hot swaps, store outages, bad bodies.

Each test starts the server as a subprocess on a free port, waits for /health and always stops it
(SIGTERM: in-flight requests finish and telemetry is flushed) in a finalizer. Traffic is bounded in
count and time and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from opscore.data.features import validate_records
from opscore.demo.credit_data import credit_applications
from opscore.models.registry import production_periods
from opscore.models.training import train_version
from opscore.serving.predictor import load_version
from opscore.store import dispose_stores, open_store, predictions
from tests.local_servers import demo_rows, free_port

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer test-token"}
pytestmark = pytest.mark.slow




@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> int:
        """Graceful stop (SIGTERM), as an orchestrator does; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def serving(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "opscore", "serve", "--port", str(port)], cwd=tmp_path,
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"opscore serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"opscore serve not ready after 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()




def logged_ids(settings) -> list[str]:
    dispose_stores()
    with open_store(settings).read() as conn:
        return list(conn.execute(select(predictions.c.request_id)).scalars())


def logged_count(settings) -> int:
    dispose_stores()
    with open_store(settings).read() as conn:
        return conn.execute(select(func.count()).select_from(predictions)).scalar_one()


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    body: dict
    row: int


async def traffic(url: str, rows: list[dict], total: int, concurrency: int, spread: float = 0.0) -> list[Answer]:
    """``total`` single-row requests from ``concurrency`` workers; ``spread`` seconds between a worker's requests."""
    answers: list[Answer] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def worker() -> None:
            for i in counter:
                row = i % len(rows)
                started = time.time()
                response = await client.post("/predict", json={"features": rows[row]})
                answers.append(Answer(started, time.time(), response.status_code, response.json(), row))
                if spread:
                    await asyncio.sleep(spread)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 300)
    return answers


def trained_pair(settings) -> None:
    """v1 in production and v2 as the candidate, trained on different samples so their answers differ."""
    train_version(settings, "v1", credit_applications(n_rows=1_500, seed=7), "default", actor=_operator(), then="promote")
    train_version(settings, "v2", credit_applications(n_rows=1_500, seed=8, shift=0.5), "default", actor=_operator(),
                  then="candidate")


def _operator():
    from opscore.access.actors import Actor

    return Actor("tester", "operator", "cli")


def test_hot_swaps_under_load_fail_no_request_and_serve_only_production(workspace, tmp_path):
    trained_pair(workspace)
    rows = demo_rows(200, seed=21)
    moves: list[tuple[str, float]] = []  # (version that took production, when the move had completed)

    async def mover(url: str, done: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=AUTH) as client:
            for round_ in range(10):
                response = await client.post("/versions/v2/promote", json={"reason": f"round {round_}"})
                assert response.status_code == 200, response.text
                moves.append(("v2", time.time()))
                await asyncio.sleep(0.1)
                response = await client.post("/rollback", json={"reason": f"round {round_} back"})
                assert response.status_code == 200, response.text
                moves.append(("v1", time.time()))
                await asyncio.sleep(0.1)
        done.set()

    async def scenario(url: str) -> list[Answer]:
        done = asyncio.Event()
        moving = asyncio.ensure_future(mover(url, done))
        answers = await traffic(url, rows, 2_000, 16, spread=0.02)
        await moving
        return answers

    with serving(tmp_path) as server:
        answers = asyncio.run(scenario(server.url))
        assert server.stop() == 0

    failed = [a for a in answers if a.status != 200]
    assert not failed, failed[:3]
    assert len(moves) == 20
    seen = {a.body["version"] for a in answers}
    assert seen == {"v1", "v2"}

    # Every answer's version held production at some moment while its request was open. A move is
    # ledgered just before it commits and this replica swaps when the promote call returns, so the
    # outgoing version's stretch is taken to end when its replacement's move had completed.
    periods = production_periods(open_store(workspace))
    assert len(periods) == 21
    completed = [when for _, when in moves]
    stretches = [(v, start, completed[i] if end is not None else None) for i, (v, start, end) in enumerate(periods)]
    for answer in answers:
        version = answer.body["version"]
        assert any(v == version and start <= answer.ended and (end is None or end >= answer.started)
                   for v, start, end in stretches), (answer, stretches)

    # Each answer is what its own version says for its own row.
    models = {v: load_version(workspace, v) for v in ("v1", "v2")}
    expected = {v: m.predict_frame(validate_records(m.schema, rows).frame).probabilities for v, m in models.items()}
    for answer in answers:
        assert answer.body["probabilities"][0] == pytest.approx(expected[answer.body["version"]][answer.row], rel=1e-9)

    answered = [rid for a in answers for rid in a.body["request_ids"]]
    assert sorted(logged_ids(workspace)) == sorted(answered)


class Proxy:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            doomed, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [listener, *doomed]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def outage_switch(settings) -> Iterator[tuple[dict[str, str], contextlib.AbstractContextManager]]:
    """(environment for the server, a context manager during which its store is unavailable)."""
    if settings.database_url.startswith("sqlite"):
        path = settings.database_url.split("///", 1)[1]

        @contextlib.contextmanager
        def locked() -> Iterator[None]:
            # Another process holding the write lock: every write waits (and times out) until it lets go.
            holder = sqlite3.connect(path, isolation_level=None, timeout=30)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()

        yield {}, locked()
        return
    url = make_url(settings.database_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))

    @contextlib.contextmanager
    def down() -> Iterator[None]:
        proxy.cut()
        try:
            yield
        finally:
            proxy.restore()

    try:
        yield {"OPSCORE_DB_URL": url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)}, down()
    finally:
        proxy.cut()


def test_a_store_outage_under_traffic_keeps_predictions_answering_and_loses_no_record(any_workspace, tmp_path):
    trained_pair(any_workspace)
    rows = demo_rows(100, seed=21)
    with outage_switch(any_workspace) as (env, outage), serving(tmp_path, env) as server:
        before = asyncio.run(traffic(server.url, rows, 200, 8))
        with outage:
            during = asyncio.run(traffic(server.url, rows, 400, 8, spread=0.01))
            health = httpx.get(server.url + "/health", timeout=30).json()
            assert health["ready"] and health["telemetry"]["backlog"] > 0
        after = asyncio.run(traffic(server.url, rows, 200, 8))
        # Recovered: the backlog drains without a restart.
        deadline = time.monotonic() + 60
        while httpx.get(server.url + "/health", timeout=30).json()["telemetry"]["backlog"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.stop() == 0
    answers = before + during + after
    assert all(a.status == 200 for a in answers)
    answered = [rid for a in answers for rid in a.body["request_ids"]]
    assert sorted(logged_ids(any_workspace)) == sorted(answered)


def _raw_exchange(url: str, head: bytes, body: bytes) -> tuple[int, dict]:
    """Send a request by hand (so a huge Content-Length can be declared without sending it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += sock.recv(65536)
    return int(header.split()[1]), json.loads(rest[:length])


def test_bad_bodies_against_the_real_server_get_4xx_and_are_never_logged(workspace, tmp_path):
    trained_pair(workspace)
    good = demo_rows(1, seed=21)[0]
    without_age = {k: v for k, v in good.items() if k != "age"}
    bodies = {
        "not json": b"<xml>loan</xml>",
        "wrong types": json.dumps({"instances": [dict(good, age=[40], credit_score={"x": 1})]}).encode(),
        "missing columns": json.dumps({"instances": [without_age]}).encode(),
        "nested junk": json.dumps({"instances": [{"a": {"b": {"c": [[[{}]]]}}}]}).encode(),
        "deep nesting": b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "NaN string": json.dumps({"features": dict(good, debt_to_income="NaN")}).encode(),
        "inf string": json.dumps({"features": dict(good, loan_amount="-inf")}).encode(),
        "unicode column names": json.dumps({"features": {"年齢": 40, "revenu_annuel_€": 1, **without_age}},
                                           ensure_ascii=False).encode(),
        "instances is a number": b'{"instances": 1e999}',
    }
    with serving(tmp_path) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for name, body in bodies.items():
                response = client.post("/predict", content=body, headers={"content-type": "application/json"})
                assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
                assert response.json()["detail"], name
            # A million instances, declared up front: refused from the header, before it is sent or parsed.
            row = json.dumps(good).encode()
            declared = 1_000_000 * (len(row) + 1) + 20
            head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {declared}\r\n\r\n").encode()
            status, body = _raw_exchange(server.url, head, b'{"instances": [' + row)
            assert status == 413 and "max_request_bytes" in body["detail"]
            health = client.get("/health")
            assert health.status_code == 200 and health.json()["telemetry"]["submitted"] == 0
            assert client.post("/predict", json={"features": good}).status_code == 200
        assert server.stop() == 0
    assert logged_count(workspace) == 1


def test_a_burst_of_64_is_batched_one_malformed_request_fails_alone(workspace, tmp_path):
    trained_pair(workspace)
    rows = demo_rows(64, seed=5)
    # Distinct markers: each row its own loan amount, so a mixed-up answer cannot pass for a right one.
    for i, row in enumerate(rows):
        row["loan_amount"] = 1_000.0 + 37.0 * i

    async def burst(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            bodies = [{"features": row} for row in rows]
            bodies[40] = {"features": dict(rows[40], credit_score="eight hundred")}
            return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))

    async def burst_with_a_move(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=AUTH) as admin:
            moving = asyncio.ensure_future(admin.post("/versions/v2/promote", json={"reason": "mid-burst"}))
            answers = []
            while not moving.done():
                answers += await burst(url)
            assert moving.result().status_code == 200
            return answers + await burst(url)

    with serving(tmp_path) as server:
        answers = asyncio.run(burst(server.url)) + asyncio.run(burst_with_a_move(server.url))
        metrics = httpx.get(server.url + "/metrics").text
        assert server.stop() == 0

    models = {v: load_version(workspace, v) for v in ("v1", "v2")}
    expected = {v: m.predict_frame(validate_records(m.schema, rows).frame).probabilities for v, m in models.items()}
    for k, response in enumerate(answers):
        i = k % 64
        if i == 40:
            assert response.status_code == 422
            assert response.json()["errors"][0]["column"] == "credit_score"
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["probabilities"][0] == pytest.approx(expected[body["version"]][i], rel=1e-9)
    assert {r.json()["version"] for r in answers if r.status_code == 200} == {"v1", "v2"}
    # Requests really shared model calls.
    calls = float(next(line.split()[1] for line in metrics.splitlines() if line.startswith("opscore_batch_size_count")))
    assert calls < len(answers) - 6
    answered = [rid for r in answers if r.status_code == 200 for rid in r.json()["request_ids"]]
    assert sorted(logged_ids(workspace)) == sorted(answered)
