"""Imports point downward only: no module of opscore imports from a layer above its own.

Ruff bans the same imports per subpackage (``opscore/*/ruff.toml``); this test also reads imports
inside functions and keeps working if someone edits a ruff file away.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "opscore"
FOUNDATIONS = {"opscore", "opscore.config", "opscore.exceptions", "opscore.store"}
CAPABILITIES = {"data", "models", "serving", "monitoring", "operations", "rollout"}

# What each part may import besides itself and the foundations. Capabilities may lean on each other
# where the loop needs it, in this order only (no cycles).
ALLOWED: dict[str, set[str]] = {
    "foundations": set(),
    "access": set(),
    "data": {"access"},
    "models": {"access", "data"},
    "serving": {"access", "data", "models", "monitoring", "rollout"},
    "monitoring": {"access", "data", "models", "serving"},
    "operations": {"access", "data", "models", "serving", "monitoring"},
    "rollout": {"access", "data", "models", "monitoring", "operations"},
    "demo": {"access", *CAPABILITIES},
    "views": {"access", *CAPABILITIES},
    "cli": {"access", "views", "demo", *CAPABILITIES},
}
# The HTTP shell lives in serving/ but, as a shell, serves the routes of the capabilities above serving.
SHELL_MODULES = {"opscore.serving.http_api": {"operations"}}
THIRD_PARTY_ONLY_IN = {"streamlit": set(), "fastapi": {"opscore.serving.http_api"}}


def part_of(module: str) -> str:
    if module == "opscore.__main__":  # ``python -m opscore`` is the command line
        return "cli"
    if module in FOUNDATIONS:
        return "foundations"
    return module.split(".")[1]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (``from opscore import x`` counts as ``opscore.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "opscore":
                found += [(node.lineno, f"opscore.{alias.name}") for alias in node.names]
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        here = part_of(module)
        for line, target in imported_modules(path):
            top = target.split(".")[0]
            if top in THIRD_PARTY_ONLY_IN and module not in THIRD_PARTY_ONLY_IN[top]:
                problems.append(f"{module}:{line} imports {target}")
            if top != "opscore" or target in FOUNDATIONS:
                continue
            there = part_of(target)
            if there == here and target != "opscore.serving.http_api":
                continue
            if target == "opscore.serving.http_api" and here != "cli":
                problems.append(f"{module}:{line} imports the HTTP shell {target}")
            elif there != here and there not in ALLOWED.get(here, set()) | SHELL_MODULES.get(module, set()):
                problems.append(f"{module}:{line} ({here}) imports {target} ({there})")
    return problems


def test_no_module_imports_from_a_layer_above_it():
    assert violations() == []


def test_the_top_level_holds_only_the_foundations_and_subpackages():
    loose = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py", "config.py", "exceptions.py",
                                                      "store.py"}
    assert loose == set()
    for folder in (p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"{folder.name}/__init__.py should say what lives there and what it may import"


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("models/leak.py", "from opscore.views import plots\n", "imports opscore.views"),
    ("data/leak.py", "def f():\n    from opscore.serving.predictor import load_version\n", "imports opscore.serving"),
    ("models/leak.py", "from opscore import cli\n", "imports opscore.cli"),
    ("serving/leak.py", "import streamlit as st\n", "imports streamlit"),
    ("views/leak.py", "from opscore.serving.http_api import create_app\n", "HTTP shell"),
])
def test_an_upward_import_is_caught(tmp_path, module, source, expected):
    root = tmp_path / "opscore"
    (root / module).parent.mkdir(parents=True)
    (root / module).write_text(source)
    found = violations(root)
    assert len(found) == 1 and expected in found[0]
