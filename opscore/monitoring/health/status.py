"""What one health check answers: a status, the issues behind it, what to do, and the figures it read.

Statuses are ordered healthy < warning < critical, so the overall status is the worst of its parts.
A check that had nothing to judge (no traffic, no labels) stays healthy and says why in its issues,
so an idle workspace never reads as a broken one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("healthy", "warning", "critical")


def worst(statuses: Iterable[str]) -> str:
    """The most severe of ``statuses`` (healthy when there are none)."""
    return max(statuses, key=STATUSES.index, default="healthy")


def level(value: float | None, warning: float, critical: float) -> str:
    """healthy below ``warning``, warning from it, critical from ``critical``; no value is healthy."""
    if value is None or not math.isfinite(value):
        return "healthy"
    if value >= critical:
        return "critical"
    return "warning" if value >= warning else "healthy"


def plain(value: Any) -> Any:
    """A figure JSON can carry: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class CheckResult:
    """One check's verdict. ``figures`` are plain JSON values (numbers, strings, None, lists, dicts).

    Issues are listed most severe first (critical, warning, then notes on what was not judged), so
    the first issue is the one to show where there is room for only one.
    """

    status: str = "healthy"
    recommendations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    _issues: list[tuple[int, str]] = field(default_factory=list)

    def raise_to(self, status: str, issue: str, recommendation: str | None = None) -> None:
        """Record a problem: the status becomes at least ``status``."""
        self.status = worst([self.status, status])
        self._issues.append((STATUSES.index(status), issue))
        if recommendation and recommendation not in self.recommendations:
            self.recommendations.append(recommendation)

    def note(self, issue: str) -> None:
        """Say why something was not judged, without changing the status."""
        self._issues.append((-1, issue))

    @property
    def issues(self) -> list[str]:
        return [text for _, text in sorted(self._issues, key=lambda item: -item[0])]

    @property
    def top_issue(self) -> str | None:
        issues = self.issues
        return issues[0] if issues else None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "issues": self.issues, "recommendations": list(self.recommendations),
                "figures": plain(self.figures)}
