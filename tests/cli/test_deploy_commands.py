"""``opscore deploy``: start, status, pause, resume, promote and abort; bad input is exit code 2 and one line."""

from __future__ import annotations

import json

import pytest

from opscore.cli.main import main
from opscore.models import registry
from opscore.store import open_store


@pytest.fixture
def deployable(trained):
    # The fixture's v2 scores a few points below v1 on its holdout; these tests drive the commands, not the gate.
    (trained.workspace / "opscore.toml").write_text("deploy_holdout_tolerance = 0.2\ndeploy_benchmark_ratio = 10.0\n")
    return trained


def test_deploy_commands(deployable, capsys):
    assert main(["deploy", "status"]) == 0
    assert "no deployment is active" in capsys.readouterr().out

    assert main(["deploy", "start", "v2", "--strategy", "canary", "--weights", "10,50,100",
                 "--option", "interval_seconds=30", "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["weights"] == [10, 50, 100] and started["options"]["interval_seconds"] == 30
    assert started["seconds_to_promotion"] == pytest.approx(90, abs=5)

    assert main(["deploy", "status"]) == 0
    out = capsys.readouterr().out
    assert f"deployment {started['id']}: canary of v2 against v1, running" in out and "step 1/3 at 10 %" in out
    assert main(["deploy", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["active"]["id"] == started["id"]

    assert main(["deploy", "pause"]) == 0 and ", paused" in capsys.readouterr().out
    assert main(["deploy", "pause"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["deploy", "resume"]) == 0
    capsys.readouterr()
    assert main(["deploy", "promote", started["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "promoted"
    assert registry.alias_target(open_store(deployable), "production") == "v2"
    assert main(["deploy", "abort"]) == 2
    assert "no deployment is active" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["deploy", "start", "v2", "--strategy", "canary", "--weights", "50,10,100"], "weights must rise"),
    (["deploy", "start", "v2", "--strategy", "canary", "--option", "interval_seconds"], "expected NAME=VALUE"),
    (["deploy", "start", "v2", "--strategy", "canary", "--option", "speed=3"], "unknown deployment option"),
    (["deploy", "start", "v9", "--strategy", "shadow"], "no version 'v9'"),
    (["deploy", "status", "d-missing"], "no deployment 'd-missing'"),
])
def test_bad_input_is_one_line_and_exit_2(deployable, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_failed_gate_exits_1_with_the_reason(deployable, capsys):
    (deployable.workspace / "opscore.toml").write_text("deploy_holdout_tolerance = 0.0\n")
    assert main(["deploy", "start", "v2", "--strategy", "shadow"]) == 1
    assert "testing failed: holdout" in capsys.readouterr().out
