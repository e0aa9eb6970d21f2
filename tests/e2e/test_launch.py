"""``opscore dashboard`` starts the same dashboard as ``streamlit run dashboard.py``."""

from __future__ import annotations

import sys

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
