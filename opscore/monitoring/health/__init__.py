"""The five health checks of a serving workspace and the report that puts them side by side.

One plain function, :func:`health_report`, runs them all: the CLI, the HTTP service, the Overview page
and the maintenance queue's daily procedure call the same thing and read the same JSON.
"""

from opscore.monitoring.health.report import CHECKS, HealthReport, health_report
from opscore.monitoring.health.status import CheckResult, worst

__all__ = ["CHECKS", "CheckResult", "HealthReport", "health_report", "worst"]
