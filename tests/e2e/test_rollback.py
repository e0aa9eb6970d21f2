"""One-click rollback in a real browser, seen by a real ``opscore serve`` on the same workspace."""

from __future__ import annotations

import sys
import threading
import time

import httpx
from dashboard_browser import ROOT, go_to, open_dashboard, running, sign_in

from opscore.access.actors import Actor
from opscore.demo.credit_data import credit_applications
from opscore.models import registry
from opscore.models.training import train_version
from opscore.store import open_store
from tests.local_servers import free_port

OPERATOR = Actor("fixture", "operator", "cli")


def test_rollback_in_the_browser_reaches_the_serving_process_within_a_second(workspace, dashboard_url, chromium,
                                                                              tmp_path):
    train_version(workspace, "v1", credit_applications(n_rows=600, seed=1), "default", actor=OPERATOR, then="promote")
    train_version(workspace, "v2", credit_applications(n_rows=600, seed=2), "default", actor=OPERATOR, then="promote")
    port = free_port()
    serve = [sys.executable, "-m", "opscore", "serve", "--port", str(port)]
    row = credit_applications(n_rows=1, seed=3).drop(columns="default").iloc[0].to_dict()
    answers: list[tuple[float, str]] = []
    stop = threading.Event()

    def keep_predicting() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while not stop.is_set():
                sent = time.time()
                response = client.post("/predict", json={"features": row})
                response.raise_for_status()
                answers.append((sent, response.json()["version"]))
                time.sleep(0.02)

    with running(serve, f"http://127.0.0.1:{port}/health", tmp_path / "serve.log", ROOT):
        poller = threading.Thread(target=keep_predicting, daemon=True)
        poller.start()
        page = open_dashboard(chromium, dashboard_url)
        sign_in(page)
        go_to(page, "Versions")
        page.get_by_role("button", name="Roll back to v1").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Roll back production: v2 → v1").wait_for()
        dialog.get_by_text("schema compatible").wait_for()
        dialog.get_by_label("Reason (recorded in the ledger)").fill("p95 doubled after v2")
        dialog.get_by_role("button", name="Confirm").click()
        page.get_by_text("Serving replicas pick it up within a second").wait_for()
        entry = registry.ledger_entries(open_store(workspace))[0]
        while time.time() < entry.at + 1.5:
            time.sleep(0.05)
        stop.set()
        poller.join(timeout=10)

    assert (entry.action, entry.to_version, entry.actor, entry.reason) == (
        "rollback", "v1", "dashboard:alice", "p95 doubled after v2")
    before = [version for sent, version in answers if sent < entry.at - 0.5]
    after = [version for sent, version in answers if sent > entry.at + 1.0]
    assert before and set(before) == {"v2"}
    # Every request sent more than a second after the move was answered by the rolled-back version.
    assert after and set(after) == {"v1"}
