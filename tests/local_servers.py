"""What several test modules need to run opscore for real on loopback: a free port, the app in a
thread, and request bodies drawn from the demo data set."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from opscore.config import Settings
from opscore.data.features import frame_to_records
from opscore.demo.credit_data import credit_applications
from opscore.serving.http_api import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_rows(n: int, seed: int = 11) -> list[dict]:
    """``n`` loan applications as /predict instances (no target, missing cells as None)."""
    return frame_to_records(credit_applications(n_rows=n, seed=seed).drop(columns=["default"]))


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """The app under uvicorn in a thread on a free loopback port; stopped (and flushed) afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
