"""Every page renders without an exception on an empty workspace and on a demo-like one."""

from __future__ import annotations

import json

import pytest
from app_under_test import OPERATOR, PAGES, run_page


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_workspace(workspace, page):
    at = run_page(page)
    assert not at.exception
    assert at.title[0].value  # the page got as far as its heading
    assert not [e.value for e in at.error if "Traceback" in e.value]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("actor", [None, OPERATOR], ids=["viewer", "operator"])
def test_every_page_renders_on_a_demo_workspace(demo_workspace, page, actor):
    at = run_page(page, actor)
    assert not at.exception
    assert not at.error, [e.value for e in at.error]


def test_empty_workspace_offers_the_demo_to_an_operator_only(workspace):
    viewer = run_page()
    assert "no model yet" in viewer.info[0].value
    assert viewer.button(key="build_demo").disabled
    assert any("needs an operator" in c.value for c in viewer.caption)
    operator = run_page(actor=OPERATOR)
    assert not operator.button(key="build_demo").disabled


def test_empty_pages_say_what_is_missing(workspace):
    latency = run_page("pages/latency.py")
    figures = {f.key: f.proto.spec for f in latency.get("plotly_chart")}
    assert list(figures) == ["percentiles", "throughput", "rows", "errors", "refused"]
    assert all("No API traffic logged" in figures[key] for key in ("percentiles", "throughput", "rows", "errors"))
    assert "No request was refused" in figures["refused"]
    live = run_page("pages/live.py")
    assert any("No predictions logged yet" in c.value for c in live.caption)
    assert any("needs a production version" in i.value for i in live.info)


def test_overview_shows_health_at_a_glance_with_links(demo_workspace):
    at = run_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Production"] == "v2" and metrics["Candidate"] == "v3" and metrics["Last retrain"] == "v3"
    assert metrics["Requests / min"] == f"{300 / (24 * 60):,.1f}"
    assert metrics["Error rate"] == "0.00 %" and float(metrics["p95 (ms)"]) > 0
    links = [link.proto.page for link in at.get("page_link")]
    # Each headline figure links to the page that explains it, in tile order: models, then traffic.
    assert links[:6] == ["versions", "versions", "retrain", "live", "latency", "latency"]
    assert len(at.get("plotly_chart")) == 2


def test_latency_page_shows_exact_and_estimated_p95_side_by_side(demo_workspace):
    at = run_page("pages/latency.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "300"
    assert metrics["p95 (estimated)"].endswith(" ms") and metrics["p95 (exact)"].endswith(" ms")
    assert at.dataframe[0].value["version"].tolist() == ["v1", "v2"]


def test_sidebar_choices_persist_across_pages(demo_workspace):
    at = run_page()
    at.selectbox(key="window").set_value("Last hour").run()
    at.selectbox(key="version_filter").set_value("v1").run()
    assert {m.label: m.value for m in at.metric}["Requests / min"] == f"{150 / 60:,.1f}"
    at.switch_page("pages/latency.py").run()
    assert at.selectbox(key="window").value == "Last hour"
    assert at.selectbox(key="version_filter").value == "v1"
    assert {m.label: m.value for m in at.metric}["Requests"] == "150"


def test_traffic_sources_are_shown_apart_and_the_choice_persists(demo_workspace):
    from opscore.demo.credit_data import credit_applications
    from opscore.serving.predictor import score_frame
    from opscore.serving.telemetry_writer import TelemetryWriter

    writer = TelemetryWriter(demo_workspace).start()
    score_frame(demo_workspace, credit_applications(n_rows=40, seed=21).drop(columns="default"), source="batch",
                telemetry=writer)
    assert writer.close()
    at = run_page("pages/latency.py")
    assert at.selectbox(key="source_filter").value == "api"
    assert {m.label: m.value for m in at.metric}["Requests"] == "300"  # the file scored is not API traffic
    at.selectbox(key="source_filter").set_value("batch").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows scored"] == "40" and metrics["Refused"] == "0"
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]
    assert any(title.startswith("Rows scored per second<br><sup>(batch scoring") for title in titles)
    at.switch_page("pages/overview.py").run()
    assert at.selectbox(key="source_filter").value == "batch"
    assert {m.label: m.value for m in at.metric}["Rows scored / min"] == f"{40 / (24 * 60):,.1f}"


@pytest.mark.slow
def test_the_demo_offer_builds_the_demo_workspace_with_progress(workspace):
    at = run_page(actor=OPERATOR)
    at.button(key="build_demo").click().run(timeout=600)
    assert not at.exception and not at.error
    assert "Demo workspace built" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Production"] == "v2" and metrics["Last retrain"] == "v2"


def test_overview_shows_the_five_health_checks_with_their_top_issue(demo_workspace):
    at = run_page()
    assert not at.exception
    tiles = [m.value for m in at.markdown if m.value.startswith("**") and "  \n:material/" in m.value]
    labels = [t.split("**")[1] for t in tiles]
    assert labels == ["Performance", "Data quality", "Model accuracy", "Infrastructure", "Cost efficiency"]
    assert all(t.rsplit("**", 2)[1] in {"healthy", "warning", "critical"} for t in tiles)
    assert any(s.value.startswith("Health: ") for s in at.subheader)
    # The demo-like workspace has 100 labels on v2's traffic, so accuracy is measured, not estimated.
    details = " ".join(m.value for m in at.markdown)
    assert "Model accuracy" in details and "Cost efficiency" in details
