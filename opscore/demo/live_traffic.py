"""Live traffic while someone watches the demo: a real server and a slow stream of real requests.

The demo workspace holds a day of history; without new traffic the Live page and every monitor stand
still. ``opscore dashboard`` on a workspace the demo built starts ``opscore serve`` on a free loopback
port (with automatic retraining on, see :func:`serve_environment`) and ``opscore simulate`` at a
gentle rate against it (labels follow through ``/feedback``), both
as child processes so they never slow the dashboard, and stops them when the dashboard stops. A
workspace the demo did not build gets no traffic from here: its production is somebody's real one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx

from opscore.access.private_files import secrets_dir
from opscore.config import Settings
from opscore.demo.workspace import MARKER_FILE

# A week: longer than anyone watches; the dashboard's end stops it well before.
_FOREVER_SECONDS = 7 * 24 * 3600
_STARTUP_SECONDS = 120.0


def is_demo_workspace(settings: Settings) -> bool:
    """True when ``opscore demo`` built this workspace (its marker sits beside the secrets)."""
    return (secrets_dir(settings) / MARKER_FILE).is_file()


def serve_environment(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The demo server's environment: automatic retraining on, so the drift episode's alert retrains a
    candidate while someone watches, unless the workspace's settings or the environment say otherwise."""
    env = dict(base)
    toml_path = settings.workspace / "opscore.toml"
    chosen = "OPSCORE_ALERT_AUTO_RETRAIN" in env or (
        toml_path.is_file() and "alert_auto_retrain" in tomllib.loads(toml_path.read_text()))
    if not chosen:
        env["OPSCORE_ALERT_AUTO_RETRAIN"] = "true"
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def end_with_parent() -> None:
    """In the child: ask Linux to stop this process if the dashboard dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LiveTraffic:
    """The server and the simulator, started together and stopped together."""

    def __init__(self, settings: Settings, rate: float, log_path: Path) -> None:
        self.settings, self.rate, self.log_path = settings, rate, log_path
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.processes: list[subprocess.Popen] = []
        self._log = log_path.open("ab")
        self._stopping = threading.Event()
        self._starter = threading.Thread(target=self._start, name="opscore-demo-traffic", daemon=True)

    def _spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "opscore", *args], stdin=subprocess.DEVNULL,
                                   stdout=self._log, stderr=self._log, cwd=self.settings.workspace, env=env,
                                   preexec_fn=end_with_parent if sys.platform == "linux" else None)
        self.processes.append(process)
        return process

    def start(self) -> LiveTraffic:
        self._spawn("serve", "--port", self.url.rsplit(":", 1)[1], env=serve_environment(self.settings, dict(os.environ)))
        self._starter.start()
        return self

    def _start(self) -> None:
        # The simulator checks the server once, so it starts only when the server answers.
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not self._stopping.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self._spawn("simulate", "--url", self.url, "--rate", str(self.rate), "--duration",
                                str(_FOREVER_SECONDS), "--label-delay", "20", "--quiet")
                    # Linux sends a child's death signal when the thread that started it ends: stay until stop().
                    self._stopping.wait()
                    return
            self._stopping.wait(0.5)

    def stop(self) -> None:
        self._stopping.set()
        self._starter.join(5)
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._log.close()


@contextlib.contextmanager
def demo_live_traffic(settings: Settings, rate: float) -> Iterator[LiveTraffic | None]:
    """Real traffic against the demo workspace for as long as the block runs (None: not a demo, or rate 0)."""
    if rate <= 0 or not is_demo_workspace(settings):
        yield None
        return
    traffic = LiveTraffic(settings, rate, secrets_dir(settings) / "demo_traffic.log").start()
    try:
        yield traffic
    finally:
        traffic.stop()
