"""Statuses order as healthy < warning < critical; issues list the most severe first."""

import json
import math

import numpy as np

from opscore.monitoring.health.status import CheckResult, level, plain, worst


def test_worst_is_the_most_severe_status():
    assert worst(["healthy", "critical", "warning"]) == "critical"
    assert worst(["healthy", "warning"]) == "warning"
    assert worst([]) == "healthy"


def test_level_crosses_its_lines_at_them():
    assert level(79.9, 80, 95) == "healthy"
    assert level(80, 80, 95) == "warning"
    assert level(95, 80, 95) == "critical"
    assert level(None, 80, 95) == "healthy"
    assert level(math.nan, 80, 95) == "healthy"


def test_issues_come_most_severe_first_and_notes_leave_the_status_alone():
    result = CheckResult()
    result.note("nothing to judge here")
    assert result.status == "healthy"
    result.raise_to("warning", "slow", "look")
    result.raise_to("critical", "down", "fix")
    result.raise_to("warning", "slower", "look")
    assert result.status == "critical"
    assert result.issues == ["down", "slow", "slower", "nothing to judge here"]
    assert result.top_issue == "down"
    assert result.recommendations == ["look", "fix"]


def test_figures_are_plain_json():
    result = CheckResult(figures={"a": np.float64(1.5), "b": math.nan, "c": [np.int64(2), math.inf], "d": {1: None}})
    out = result.to_dict()
    assert json.dumps(out, allow_nan=False)
    assert out["figures"] == {"a": 1.5, "b": None, "c": [2, None], "d": {"1": None}}
    assert plain("text") == "text"
