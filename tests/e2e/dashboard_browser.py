"""Real processes and a real browser: free ports, servers that start and stop, Chromium pages."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
OPERATOR_PASSWORD = "test-operator"  # what the workspace fixture exports




def wait_until_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running(command: list[str], ready_url: str, log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    """Start ``command`` (environment inherited: the workspace fixture exported OPSCORE_*), wait, stop."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        wait_until_ready(ready_url, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def open_dashboard(browser, url: str, height: int = 1000):
    page = browser.new_page(viewport={"width": 1440, "height": height})
    page.goto(url)
    page.wait_for_selector("[data-testid='stAppViewContainer']")
    page.get_by_role("heading", name="Overview").wait_for()
    return page


def sign_in(page, name: str = "alice", password: str = OPERATOR_PASSWORD) -> None:
    page.get_by_role("button", name="Operator sign-in").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Operator password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {name}").wait_for()


def go_to(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for()
