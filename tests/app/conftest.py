"""Dashboard fixtures: clean Streamlit caches, and a demo-like workspace built once and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from opscore.access import credentials
from opscore.access.actors import Actor
from opscore.config import Settings, load_settings
from opscore.demo.credit_data import credit_applications
from opscore.models.registry import promote
from opscore.models.training import train_version
from opscore.serving.feedback import record_feedback
from opscore.serving.predictor import load_version, score_frame
from opscore.serving.telemetry_queries import recent_predictions
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import dispose_stores, open_store

BUILDER = Actor("fixture", "operator", "cli")


@pytest.fixture(autouse=True)
def clear_streamlit_caches() -> None:
    """Caches live in the process, so one test's workspace must not leak into the next."""
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(autouse=True)
def fresh_sign_in_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sign-in throttle counts failures per process; each test starts with none."""
    monkeypatch.setattr(credentials, "SIGN_IN_THROTTLE", credentials.SignInThrottle())


@pytest.fixture(autouse=True)
def navigation_stays_declared(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep ``st.navigation`` in charge on every AppTest run, as in a real session.

    A server process switches the legacy ``pages/`` auto-discovery off at its first ``st.navigation``
    call, for good. AppTest builds a new PagesManager per run, which switches it back on because
    ``pages/`` exists; each rerun would then start with the page file alone and rerun through
    ``dashboard.py`` (see ``pages/_shared.run_inside_dashboard``), losing the click that caused it.
    Tests marked ``legacy_page_discovery`` run without this, to exercise that rerun itself.
    """
    if request.node.get_closest_marker("legacy_page_discovery"):
        return
    original = PagesManager.__init__

    def declared_pages_only(self: PagesManager, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", declared_pages_only)


def _build_demo_like(root: Path) -> None:
    """v1 then v2 in production (so v1 is the rollback target), v3 the candidate, real logged traffic."""
    settings = load_settings(root, env={"OPSCORE_WORKSPACE": str(root), "OPSCORE_FOREST_TREES": "10",
                                        "OPSCORE_BOOSTING_ROUNDS": "20", "OPSCORE_OPERATOR_PASSWORD": "x"})
    train_version(settings, "v1", credit_applications(n_rows=800, seed=1), "default", actor=BUILDER, then="promote")
    train_version(settings, "v2", credit_applications(n_rows=800, seed=2), "default", actor=BUILDER, then="none")
    promote(settings, "v2", BUILDER, "better holdout ROC-AUC")
    train_version(settings, "v3", credit_applications(n_rows=800, seed=3), "default", actor=BUILDER,
                  then="candidate", parent_version="v2")
    writer = TelemetryWriter(settings).start()
    traffic = credit_applications(n_rows=300, seed=9).drop(columns="default")
    score_frame(settings, traffic.iloc[:150], source="api", telemetry=writer, loaded=load_version(settings, "v1"))
    score_frame(settings, traffic.iloc[150:], source="api", telemetry=writer)
    writer.close()
    logged = recent_predictions(open_store(settings), limit=100)
    record_feedback(open_store(settings), [{"request_id": r, "label": i % 2} for i, r in
                                           enumerate(logged["request_id"])])
    dispose_stores()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo-template")
    _build_demo_like(root)
    return root


@pytest.fixture
def demo_workspace(workspace: Settings, demo_template: Path) -> Settings:
    """A private copy of the demo-like workspace (three versions, 300 logged predictions, 100 labels)."""
    dispose_stores()
    for folder in ("metrics", "model_store"):
        shutil.copytree(demo_template / folder, workspace.workspace / folder, dirs_exist_ok=True)
    return workspace
