"""Disk use is recorded and compared week to week; cost analysis counts model time per version."""

from __future__ import annotations

import time

import pytest

from opscore.operations.procedures import get_procedure, no_checkpoint
from tests.conftest import log_traffic


def _run(name, settings, **params):
    return get_procedure(name).run(settings, params, no_checkpoint)


def test_the_second_review_reports_growth_since_the_first(any_workspace, demo_frame):
    from opscore.models.training import train_version
    from tests.conftest import OPERATOR

    now = time.time()
    first = _run("infrastructure_review", any_workspace, now=now - 7 * 86_400)
    assert "growth_bytes" not in first.figures and first.recommendations
    train_version(any_workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    second = _run("infrastructure_review", any_workspace, now=now)
    grown = second.figures["model_store_bytes"] - first.figures["model_store_bytes"]
    assert grown > 0 and second.figures["model_store_growth_bytes"] == grown
    assert second.figures["growth_bytes_per_day"] == pytest.approx(second.figures["growth_bytes"] / 7)
    assert second.figures["database_bytes"] > 0


def test_cost_analysis_counts_model_time_and_finds_a_version_outside_production_taking_a_share(served):
    result = _run("cost_analysis", served, host_cost_per_hour=0.5)
    versions = result.figures["versions"]
    assert versions["v1"]["rows"] == 120 and versions["v2"]["rows"] == 80
    assert sum(v["share_of_model_time"] for v in versions.values()) == pytest.approx(1.0)
    assert result.figures["cost"] == pytest.approx(0.5 * 30 * 24)
    if versions["v2"]["share_of_model_time"] > 0.25:
        assert any("v2 is not production" in f.summary for f in result.findings)


def test_cost_analysis_without_outside_traffic_has_no_finding(trained):
    log_traffic(trained, 50)
    result = _run("cost_analysis", trained)
    assert result.findings == [] and "host_cost_per_hour" in result.recommendations[0]
