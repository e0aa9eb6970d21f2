"""The README's promises that a machine can check: two Quickstart commands, CI runs the same tests,
every dependency is explained and really used."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ") and line.strip()]


def test_quickstart_has_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "opscore dashboard" in commands[0] and "opscore demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    last_command = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")][-1]
    assert last_command.strip() == quickstart_commands()[1]


def test_every_dependency_is_explained():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    table = README.split("## Why each dependency is here", 1)[1]
    for requirement in names:
        name = re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0].lower()
        assert name in table.lower(), f"README does not say why {name} is a dependency"


# How a dependency shows it is used when no ``import`` names it.
USED_WITHOUT_IMPORT = {
    "scikit-learn": r"^\s*(import|from) sklearn\b",
    "pyarrow": r'engine="pyarrow"',
    "psycopg": r"postgresql\+psycopg",
    "pyyaml": r"^\s*(import|from) yaml\b",
    "pytest-timeout": r"^timeout = ",
    "pytest-xdist": r"pytest -n \d+",
    "ruff": r"\bruff\b.*check",
}


def _sources(*places: str) -> str:
    texts = []
    for place in places:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        texts += [f.read_text() for f in files if ".venv" not in f.parts]
    return "\n".join(texts)


def test_every_dependency_is_used_where_it_is_declared_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _sources("opscore", "pages", "dashboard.py")
    development = _sources("tests", "pyproject.toml", "bench", ".ci/run") + runtime
    for requirements, code in ((project["dependencies"], runtime),
                               (project["optional-dependencies"]["dev"], development),
                               (project["optional-dependencies"]["postgres"], development)):
        for requirement in requirements:
            name = re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0].lower()
            module = name.replace("-", "_")
            pattern = USED_WITHOUT_IMPORT.get(name, rf"^\s*(import|from) {module}\b")
            assert re.search(pattern, code, re.M), f"{name} is declared but nothing uses it"
