"""Every page in a real browser on the demo workspace: no exception on screen, a screenshot of each.

The pictures land in ``screenshots/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import pytest
from dashboard_browser import ROOT, go_to, open_dashboard, sign_in
from playwright.sync_api import expect

from opscore.access.actors import Actor

SCREENSHOTS = ROOT / "screenshots"
# page title -> what must be on screen before the picture is taken
PAGES = {
    "Overview": "Recent changes",
    "Live predictions": "Score one record",
    "Latency": "Per version in this window",
    "Drift": "Drifted columns",
    "Versions": "Ledger",
    "Retrain": "How it works",
    "Maintenance": "Maturity scorecard",
}


def full_height_screenshot(page, name: str) -> None:
    """Streamlit scrolls inside its main container, so grow the viewport to the content first."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": min(max(height + 40, 900), 6000)})
    page.wait_for_timeout(800)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def assert_no_exception_on_screen(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.fixture
def demo_workspace(workspace):
    from opscore.demo.workspace import build_demo

    build_demo(workspace, Actor("screenshots", "operator", "cli"))
    return workspace


@pytest.mark.slow
def test_every_page_on_the_demo_workspace(demo_workspace, dashboard_url, chromium):
    page = open_dashboard(chromium, dashboard_url)
    sign_in(page)
    for title, landmark in PAGES.items():
        page.set_viewport_size({"width": 1440, "height": 1000})
        go_to(page, title)
        page.get_by_text(landmark).first.wait_for()
        if title in {"Overview", "Latency", "Live predictions", "Drift", "Maintenance"}:
            page.locator(".js-plotly-plot").first.wait_for()
        page.wait_for_timeout(1500)  # let the charts finish drawing
        assert_no_exception_on_screen(page)
        full_height_screenshot(page, title.lower().replace(" ", "-"))
    page.set_viewport_size({"width": 1440, "height": 1000})
    go_to(page, "Versions")
    page.get_by_role("button", name="Roll back to").click()
    page.get_by_role("dialog").get_by_text("schema compatible").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "versions-rollback-dialog.png"))


def test_the_empty_workspace_offers_the_demo(workspace, dashboard_url, chromium):
    page = open_dashboard(chromium, dashboard_url)
    page.get_by_text("This workspace has no model yet").wait_for()
    build = page.get_by_role("button", name="Build the demo workspace")
    expect(build).to_be_disabled()
    sign_in(page)
    expect(build).to_be_enabled()  # retries while the page reruns after the sign-in
    assert_no_exception_on_screen(page)
    full_height_screenshot(page, "overview-empty-workspace")


@pytest.mark.slow
def test_overview_health_section_shows_whole_at_1280(demo_workspace, dashboard_url, chromium):
    page = open_dashboard(chromium, dashboard_url)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_text("Health details: every issue and what to do").wait_for()
    for label in ("Performance", "Data quality", "Model accuracy", "Infrastructure", "Cost efficiency"):
        expect(page.get_by_text(label, exact=True).first).to_be_visible()
    assert_no_exception_on_screen(page)
    page.get_by_text("Health details: every issue and what to do").scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview-health-1280.png"))


@pytest.mark.slow
def test_drift_page_shows_whole_at_1280(demo_workspace, dashboard_url, chromium):
    page = open_dashboard(chromium, dashboard_url)
    page.set_viewport_size({"width": 1280, "height": 800})
    go_to(page, "Drift")
    page.get_by_text("Drifted columns").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_timeout(1500)
    assert_no_exception_on_screen(page)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "drift-1280.png"))
    full_height_screenshot(page, "drift-full")


@pytest.mark.slow
def test_maintenance_page_shows_whole_at_1280(demo_workspace, dashboard_url, chromium):
    page = open_dashboard(chromium, dashboard_url)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page)
    go_to(page, "Maintenance")
    page.get_by_role("heading", name="Latest health report").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_timeout(1500)
    assert_no_exception_on_screen(page)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "maintenance-1280.png"))
    full_height_screenshot(page, "maintenance-full")
