"""A page URL as the very first request of a fresh dashboard still runs through ``dashboard.py``.

Streamlit turns its legacy ``pages/`` auto-discovery off only after the first ``st.navigation`` call
of the process, so a fresh server asked for ``/versions`` first would run that page file alone: no
sidebar, no sign-in. ``pages/_shared.run_inside_dashboard`` reruns through the entrypoint; it leans
on a Streamlit internal, and this test is what tells a Streamlit upgrade broke it.
"""

from __future__ import annotations


def test_opening_a_page_url_first_shows_the_page_inside_the_dashboard(trained, dashboard_url, chromium):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{dashboard_url}/versions")  # the first request the fresh server sees for a page
    page.wait_for_selector("[data-testid='stAppViewContainer']")
    page.get_by_role("heading", name="Versions").first.wait_for()
    nav = page.get_by_test_id("stSidebarNav")
    nav.wait_for()
    for title in ("Overview", "Live predictions", "Latency", "Versions", "Retrain"):
        assert nav.get_by_role("link", name=title).count() == 1, f"sidebar lacks {title}"
    # The shared sidebar (time window, sign-in) comes from dashboard.py, not from the page file.
    page.get_by_role("button", name="Operator sign-in").wait_for()
    assert page.get_by_text("v1").first.is_visible()
    page.close()
