"""The Deployments page's builders: the analysis chart against its limit, the progress line."""

from __future__ import annotations

from opscore.rollout.deployments import Deployment
from opscore.views.deployments import VERDICT_COLOURS, analysis_figure, progress_line

OPTIONS = {"p95_ratio": 1.5, "p95_slack_ms": 10.0, "interval_seconds": 60, "failed_checks": 3}


def _deployment(analyses):
    return Deployment("d-1", "v2", "v1", "canary", "running", "production", 1, [5, 25, 50, 100], OPTIONS, 1, "tester",
                      1000.0, 1000.0, 1060.0, None, {}, "", analyses=analyses)


def _analysis(at, candidate, production, verdict, weight=5.0):
    return {"at": at, "step": 0, "weight": weight, "passed": verdict == "pass", "verdict": verdict, "problems": [],
            "candidate": {"p95_ms": candidate}, "production": {"p95_ms": production}}


def test_the_analysis_chart_draws_each_check_against_its_limit():
    figure = analysis_figure(_deployment([_analysis(1060, 30.0, 40.0, "pass"), _analysis(1120, 90.0, 20.0, "fail")]))
    production, limit, candidate = figure.data
    assert list(production.y) == [40.0, 20.0]
    assert list(limit.y) == [60.0, 30.0]  # 1.5 x 40, and 20 + 10 ms (the larger of the two)
    assert list(candidate.y) == [30.0, 90.0]
    assert list(candidate.marker.color) == [VERDICT_COLOURS["pass"], VERDICT_COLOURS["fail"]]


def test_no_analysis_with_traffic_is_an_empty_chart_that_says_so():
    figure = analysis_figure(_deployment([{**_analysis(1060, None, None, "wait")}]))
    assert not figure.data and "No analysis" in figure.layout.annotations[0].text


def test_the_progress_line_says_step_weight_and_time_to_promotion():
    line = progress_line(_deployment([]), now=1090.0)
    assert "step 2 of 4 at 25 %" in line and "promotion in 150 s" in line and "1 of 3 failed checks" in line
