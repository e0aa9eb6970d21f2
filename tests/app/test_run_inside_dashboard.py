"""A page that Streamlit runs alone (legacy ``pages/`` discovery) reruns through ``dashboard.py``.

The other AppTests keep discovery off, as a long-running server has it; this one leaves it on, as a
fresh process has it, so ``pages/_shared.run_inside_dashboard`` really runs. ``tests/e2e/
test_page_url_first.py`` checks the same in a real browser on a fresh server.
"""

from __future__ import annotations

import pytest
from app_under_test import run_page
from streamlit.runtime.pages_manager import PagesManager


@pytest.mark.legacy_page_discovery
def test_a_page_run_alone_comes_back_inside_the_dashboard(trained, monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    at = run_page("pages/versions.py")
    assert not at.exception
    assert PagesManager.uses_pages_directory is False  # run_inside_dashboard switched discovery off
    assert at.title[0].value == "Versions"
    # The shared sidebar comes from dashboard.py: the model and time window choices and the sign-in.
    assert {"Model version", "Time window"} <= {s.label for s in at.sidebar.selectbox}
    assert any("Viewing as" in m.value for m in at.sidebar.markdown)
