"""``opscore dashboard`` starts the same dashboard as ``streamlit run dashboard.py``."""

from __future__ import annotations

import re
import sys
import time

import httpx
import pytest
from dashboard_browser import open_dashboard, running

from tests.local_servers import free_port


def test_opscore_dashboard_serves_the_dashboard(workspace, chromium, tmp_path, monkeypatch):
    monkeypatch.delenv("OPSCORE_OPERATOR_PASSWORD")  # first start: a password is generated and logged once
    port = free_port()
    command = [sys.executable, "-m", "opscore", "dashboard", "--", "--server.headless", "true", "--server.port",
               str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log = tmp_path / "dashboard.log"
    with running(command, f"http://127.0.0.1:{port}/_stcore/health", log, workspace.workspace):
        page = open_dashboard(chromium, f"http://127.0.0.1:{port}")
        page.get_by_text("This workspace has no model yet").wait_for()
        page.get_by_text("First start: the operator password is").wait_for()
        shown = page.get_by_text("First start: the operator password is").inner_text()
    password = shown.split("password is ")[1].split(".")[0].strip()
    assert f"generated operator password: {password}" in log.read_text()
    assert (workspace.secrets_path / "operator_password.json").exists()


def test_on_the_demo_workspace_it_keeps_real_traffic_flowing_until_it_stops(workspace, tmp_path, monkeypatch):
    from opscore.demo.workspace import build_demo
    from tests.conftest import OPERATOR
    from tests.demo.test_live_traffic import api_requests_since

    build_demo(workspace, OPERATOR, scale=0.02)
    monkeypatch.setenv("OPSCORE_DEMO_TRAFFIC_RATE", "10")
    port, started = free_port(), time.time()
    command = [sys.executable, "-m", "opscore", "dashboard", "--", "--server.headless", "true", "--server.port",
               str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log = tmp_path / "dashboard.log"
    with running(command, f"http://127.0.0.1:{port}/_stcore/health", log, workspace.workspace):
        deadline = time.monotonic() + 120
        while api_requests_since(workspace, started) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert api_requests_since(workspace, started) >= 10
    server = re.search(r"live demo traffic at 10 request\(s\)/s through (http://127\.0\.0\.1:\d+)", log.read_text())
    assert server, log.read_text()
    time.sleep(2)
    with pytest.raises(httpx.HTTPError):  # the server went with the dashboard
        httpx.get(f"{server.group(1)}/health", timeout=2)
    settled = api_requests_since(workspace, started)
    time.sleep(1.5)
    assert api_requests_since(workspace, started) == settled
