"""Running the dashboard under AppTest: the entrypoint, the pages, who is signed in."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from opscore.access.actors import Actor

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")
OPERATOR = Actor("alice", "operator", "dashboard")
PAGES = ["pages/overview.py", "pages/live.py", "pages/latency.py", "pages/drift.py", "pages/versions.py", "pages/retrain.py",
         "pages/maintenance.py", "pages/deployments.py"]


def run_page(page: str | None = None, actor: Actor | None = None) -> AppTest:
    """Run the dashboard (as ``actor``, default a viewer) and switch to ``page`` (e.g. "pages/versions.py")."""
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    if actor is not None:
        at.session_state["actor"] = actor
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at
