"""Fixtures for the real-browser tests: the dashboard under ``streamlit run``, and Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_browser import CHROMIUM, LAUNCH_ARGS, ROOT, running

from tests.local_servers import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def dashboard_url(workspace, tmp_path: Path) -> Iterator[str]:
    """``streamlit run dashboard.py`` on a free port, on the test's workspace."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.headless", "true",
               "--server.port", str(port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with running(command, f"http://127.0.0.1:{port}/_stcore/health", tmp_path / "dashboard.log", ROOT):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install` here)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()
