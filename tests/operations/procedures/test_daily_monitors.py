"""The daily monitors turn the health report and data quality into findings the queue can follow up."""

from __future__ import annotations

import time

from opscore.monitoring.health import health_report
from opscore.operations.procedures import get_procedure, no_checkpoint


def test_health_checks_carry_the_report_and_its_issues(served):
    result = get_procedure("health_checks").run(served, {}, no_checkpoint)
    expected = health_report(served).to_dict()
    assert set(result.figures["checks"]) == set(expected["checks"]) and result.figures["overall"] == expected["overall"]
    issues = sum(len(c["issues"]) for c in expected["checks"].values() if c["status"] in {"critical", "warning"})
    assert len(result.findings) == issues


def test_data_quality_reports_production_rows(served):
    # Quality is summed over whole minutes: the window ends after the minute the traffic was logged in.
    result = get_procedure("data_quality").run(served, {"now": time.time() + 120}, no_checkpoint)
    assert result.figures["version"] == "v1" and result.figures["rows"] == 120
