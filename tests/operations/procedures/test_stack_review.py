"""The stack review reads the installed metadata: all satisfied here, a planted mismatch found."""

from __future__ import annotations

import datetime as dt

from opscore.operations.procedures import get_procedure, no_checkpoint
from opscore.operations.procedures import stack_review as review


def _run(**params):
    return get_procedure("stack_review").run(None, params, no_checkpoint)


def test_the_installed_stack_satisfies_what_opscore_declares():
    result = _run(now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
    names = {row["package"].lower() for row in result.figures["packages"]}
    assert {"numpy", "pandas", "sqlalchemy", "packaging", "pytest"} <= names
    assert result.figures["unsatisfied"] == 0 and result.findings == []


def test_a_declared_version_the_install_does_not_meet_is_found(monkeypatch):
    monkeypatch.setattr(review.metadata, "requires", lambda name: ["numpy>=999", "surely-not-installed-pkg>=1"])
    summaries = [f.summary for f in _run(now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()).findings]
    assert any(s.startswith("numpy ") and ">=999 is declared" in s for s in summaries)
    assert "surely-not-installed-pkg is declared (>=1) but not installed" in summaries


def test_python_nearing_its_end_of_life_is_found():
    minor = ".".join(__import__("platform").python_version().split(".")[:2])
    end = dt.datetime.fromisoformat(review.PYTHON_END_OF_LIFE[minor]).replace(tzinfo=dt.UTC)
    result = _run(now=(end - dt.timedelta(days=100)).timestamp())
    assert any(f"Python {minor} loses upstream security support" in f.summary for f in result.findings)
