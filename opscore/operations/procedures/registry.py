"""The procedure registry: a maintenance task names a procedure and its parameters, never code.

A procedure is a function ``(settings, params, checkpoint) -> ProcedureResult`` registered once at
import with :func:`procedure`. The worker calls it with a checkpoint, which the procedure calls
between its steps: a cancelled task raises :class:`TaskCancelled` there, so it stops at the next step
instead of running on. What a procedure finds comes back as figures, findings and recommendations;
a finding that names a follow-up type makes the queue open a task of that type, its priority taken
from the finding's severity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from opscore.config import Settings
from opscore.exceptions import BadInputError

# Severities of findings are the priorities of the tasks they open, most urgent first.
SEVERITIES = ("critical", "high", "medium", "low")
TASK_TYPES = ("preventive", "corrective", "adaptive", "perfective")
MAINTENANCE_SETS = ("daily", "weekly", "monthly", "quarterly")


class TaskCancelled(Exception):
    """Raised at a checkpoint of a task an operator cancelled while it ran."""


class TaskSkipped(Exception):
    """Raised by a procedure that finds nothing to do (no backup to drill, no labelled traffic): not a failure."""


class Checkpoint(Protocol):
    """Called by a procedure between steps; raises ``TaskCancelled`` when the task was cancelled."""

    def __call__(self, note: str = "", progress: float | None = None) -> None: ...


def no_checkpoint(note: str = "", progress: float | None = None) -> None:
    """The checkpoint of a procedure run outside the queue (a test, a direct call): never cancels."""
    return None


@dataclass(frozen=True)
class Finding:
    """Something a procedure found; ``follow_up`` ("corrective" or "adaptive") asks for a task."""

    summary: str
    severity: str = "medium"
    follow_up: str | None = None
    follow_up_procedure: str | None = None
    follow_up_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if self.follow_up is not None and self.follow_up not in TASK_TYPES:
            raise ValueError(f"follow_up must be one of {', '.join(TASK_TYPES)}, got {self.follow_up!r}")


@dataclass(frozen=True)
class ProcedureResult:
    """What a procedure found: figures to show, findings to act on, recommendations to read."""

    figures: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": self.figures,
            "findings": [asdict(finding) for finding in self.findings],
            "recommendations": list(self.recommendations),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcedureResult:
        return cls(
            figures=dict(data.get("figures", {})),
            findings=[Finding(**finding) for finding in data.get("findings", [])],
            recommendations=list(data.get("recommendations", [])),
        )


@dataclass(frozen=True)
class Procedure:
    """A registered procedure: its name, what a task running it is called, and where it belongs."""

    name: str
    title: str
    run: Callable[[Settings, dict[str, Any], Checkpoint], ProcedureResult]
    maintenance_set: str | None
    task_type: str
    estimated_seconds: float


_PROCEDURES: dict[str, Procedure] = {}


def procedure(
    name: str,
    *,
    title: str,
    maintenance_set: str | None = None,
    task_type: str = "preventive",
    estimated_seconds: float = 5.0,
) -> Callable[[Callable[[Settings, dict[str, Any], Checkpoint], ProcedureResult]], Procedure]:
    """Register the decorated function as procedure ``name`` (in ``maintenance_set``, if any)."""
    if maintenance_set is not None and maintenance_set not in MAINTENANCE_SETS:
        raise ValueError(f"maintenance_set must be one of {', '.join(MAINTENANCE_SETS)}, got {maintenance_set!r}")
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")

    def register(run: Callable[[Settings, dict[str, Any], Checkpoint], ProcedureResult]) -> Procedure:
        if name in _PROCEDURES:
            raise ValueError(f"a procedure named '{name}' is already registered")
        _PROCEDURES[name] = Procedure(name, title, run, maintenance_set, task_type, estimated_seconds)
        return _PROCEDURES[name]

    return register


def get_procedure(name: str) -> Procedure:
    """The procedure called ``name``; an unknown name is the caller's to fix."""
    try:
        return _PROCEDURES[name]
    except KeyError:
        raise BadInputError(
            f"unknown procedure '{name}'; available: {', '.join(sorted(_PROCEDURES)) or 'none'}"
        ) from None


def procedures_in(maintenance_set: str) -> list[Procedure]:
    """The procedures of one maintenance set, in the order they were registered."""
    if maintenance_set not in MAINTENANCE_SETS:
        raise BadInputError(f"maintenance set must be one of {', '.join(MAINTENANCE_SETS)}, got '{maintenance_set}'")
    return [p for p in _PROCEDURES.values() if p.maintenance_set == maintenance_set]


def available_procedures() -> list[str]:
    return sorted(_PROCEDURES)
