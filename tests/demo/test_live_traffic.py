"""`opscore dashboard` on the demo workspace keeps real traffic flowing, and only there."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from opscore.config import replace
from opscore.demo.live_traffic import demo_live_traffic, is_demo_workspace
from opscore.demo.workspace import build_demo
from opscore.store import open_store, predictions
from tests.conftest import OPERATOR


def api_requests_since(settings, since: float) -> int:
    query = select(func.count()).select_from(predictions).where(predictions.c.source == "api", predictions.c.at >= since)
    with open_store(settings).read() as conn:
        return int(conn.execute(query).scalar_one())


def test_the_demo_workspace_gets_live_requests_through_a_real_server_until_the_block_ends(workspace):
    build_demo(workspace, OPERATOR, scale=0.02, maintenance_days=0)
    assert is_demo_workspace(workspace)
    started = time.time()
    with demo_live_traffic(replace(workspace, demo_traffic_rate=20.0), 20.0) as traffic:
        assert traffic is not None and traffic.url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 120
        while api_requests_since(workspace, started) < 20 and time.monotonic() < deadline:
            time.sleep(0.5)
        processes = list(traffic.processes)
    assert api_requests_since(workspace, started) >= 20
    assert len(processes) == 2 and all(p.returncode is not None for p in processes)
    settled = api_requests_since(workspace, started)
    time.sleep(1.5)
    assert api_requests_since(workspace, started) == settled  # nothing is sent once the dashboard is gone


def test_a_workspace_the_demo_did_not_build_gets_no_traffic(trained):
    assert not is_demo_workspace(trained)
    with demo_live_traffic(trained, 20.0) as traffic:
        assert traffic is None


def test_rate_zero_turns_it_off(workspace):
    build_demo(workspace, OPERATOR, scale=0.02, maintenance_days=0)
    with demo_live_traffic(workspace, 0.0) as traffic:
        assert traffic is None
