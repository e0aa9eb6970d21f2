"""The serving commands' wiring: ``dashboard`` hands every argument to streamlit, ``serve`` checks its port."""

from __future__ import annotations

import os
import sys

import pytest

from opscore.cli import main as cli


class Exec(BaseException):
    """Raised instead of replacing the test process (past the CLI's own error handling)."""


@pytest.fixture
def exec_calls(monkeypatch):
    calls: list[list[str]] = []

    def fake_execv(path: str, args: list[str]) -> None:
        calls.append(args)
        raise Exec

    monkeypatch.setattr(os, "execv", fake_execv)
    return calls


@pytest.mark.parametrize("argv, passed", [
    ([], []),
    (["--server.port", "8555", "--server.headless", "true"], ["--server.port", "8555", "--server.headless", "true"]),
    (["--", "--theme.base", "dark"], ["--theme.base", "dark"]),
    (["--help"], ["--help"]),
])
def test_dashboard_runs_streamlit_on_the_repo_dashboard_with_every_argument(workspace, exec_calls, argv, passed):
    with pytest.raises(Exec):
        cli.main(["dashboard", *argv])
    [args] = exec_calls
    assert args[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert args[4].endswith("dashboard.py") and os.path.isfile(args[4])
    assert args[5:] == passed


def test_serve_refuses_an_impossible_port(workspace, capsys):
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert "--port must be 1-65535" in capsys.readouterr().err
