"""Quarterly technology stack review: what is installed against what opscore declares, and the Python under it.

Read from the installed package's own metadata (``importlib.metadata``), so it reviews what really
runs, not a checkout that may differ: each declared requirement (and those of installed extras)
against the installed version, and the Python version against ``Requires-Python`` and the end of its
upstream support (dates from PEP 602's annual cycle: five years per minor release).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as metadata
import platform
import time
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from opscore.config import Settings
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure

# End of upstream security support, from the release schedules (PEP 664, 693, 719, 745).
PYTHON_END_OF_LIFE = {"3.11": "2027-10-31", "3.12": "2028-10-31", "3.13": "2029-10-31", "3.14": "2030-10-31"}


def declared_requirements(distribution: str = "opscore") -> list[Requirement]:
    """The distribution's requirements that apply here: the core ones and those of extras that are installed."""
    found = []
    for line in metadata.requires(distribution) or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None:
            found.append(requirement)
            continue
        extras = [e for e in ("postgres", "dev") if requirement.marker.evaluate({"extra": e})]
        if extras and _installed(requirement.name) is not None:
            found.append(requirement)
    return found


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_rows(requirements: list[Requirement]) -> list[dict[str, Any]]:
    rows = {}
    for requirement in requirements:
        installed = _installed(requirement.name)
        ok = installed is not None and requirement.specifier.contains(Version(installed), prereleases=True)
        rows[requirement.name.lower()] = {"package": requirement.name, "declared": str(requirement.specifier) or "any",
                                          "installed": installed, "satisfied": ok}
    return sorted(rows.values(), key=lambda r: r["package"].lower())


@procedure("stack_review", title="Technology stack review: installed against declared packages, Python",
           maintenance_set="quarterly", estimated_seconds=5)
def stack_review(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    checkpoint("reading package metadata", 0.0)
    rows = package_rows(declared_requirements(params.get("distribution", "opscore")))
    python = platform.python_version()
    minor = ".".join(python.split(".")[:2])
    requires = metadata.metadata(params.get("distribution", "opscore")).get("Requires-Python") or ""
    findings = []
    for row in rows:
        if row["installed"] is None:
            findings.append(Finding(f"{row['package']} is declared ({row['declared']}) but not installed", "high",
                                    follow_up="corrective"))
        elif not row["satisfied"]:
            findings.append(Finding(f"{row['package']} {row['installed']} is installed but {row['declared']} is "
                                    f"declared", "high", follow_up="corrective"))
    if requires and not SpecifierSet(requires).contains(python):
        findings.append(Finding(f"Python {python} is outside the declared {requires}", "critical", follow_up="corrective"))
    end = PYTHON_END_OF_LIFE.get(minor)
    days_left = None
    if end is not None:
        days_left = (dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC).timestamp() - now) / 86_400
        if days_left < 365:
            findings.append(Finding(f"Python {minor} loses upstream security support on {end} "
                                    f"({max(days_left, 0):.0f} days): plan the move to a newer Python",
                                    "medium" if days_left > 0 else "high", follow_up="adaptive"))
    return ProcedureResult({"python": python, "requires_python": requires, "python_end_of_life": end,
                            "python_support_days_left": days_left, "packages": rows,
                            "unsatisfied": sum(not r["satisfied"] for r in rows)}, findings)
