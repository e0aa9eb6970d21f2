"""``opscore health``: the report's JSON, the summary, and a bad window as exit code 2."""

import json

from opscore.cli.main import main
from opscore.monitoring.health import CHECKS


def test_json_is_the_report_contract(served, capsys):
    assert main(["health", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"overall", "checked_at", "checks"}
    assert list(out["checks"]) == list(CHECKS)
    assert out["checks"]["performance"]["figures"]["rows"] == 200


def test_the_summary_names_every_check(served, capsys):
    assert main(["health", "--window", "1h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("overall: ")
    for name in CHECKS:
        assert name in out


def test_a_bad_window_exits_2_with_one_line(workspace, capsys):
    assert main(["health", "--window", "soon"]) == 2
    err = capsys.readouterr().err
    assert "window 'soon'" in err and err.count("\n") == 1
