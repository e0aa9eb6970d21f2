"""``opscore alerts``: list, evaluate, ack and silence, with exit code 2 and one line for bad input."""

from __future__ import annotations

import json

import pytest

from opscore.cli.main import main
from opscore.config import Settings
from opscore.operations import alerts
from tests.operations.test_alerts import T0, log_minutes, slow_settings


def test_alerts_commands(workspace: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace.workspace / "opscore.toml").write_text(
        'alert_group_wait_seconds = 0\n[[alert_rules]]\nname = "quiet"\nexpr = "requests_per_minute < 1000"\n'
        'window = "1m"\n')
    log_minutes(workspace, {0: 20})
    assert main(["alerts", "evaluate", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["rules"] > 10 and isinstance(evaluated["changes"], list)

    settings = slow_settings(workspace)
    log_minutes(settings, {m: 8000 for m in range(1, 4)})
    for minute in range(1, 4):
        alerts.evaluate(settings, now=T0 + (minute + 1) * 60, sleep=lambda _s: None)
    assert main(["alerts", "list", "--state", "firing", "--json"]) == 0
    firing = json.loads(capsys.readouterr().out)
    slow = next(a for a in firing if a["rule"] == "p95_latency")
    assert main(["alerts", "list"]) == 0 and "p95_latency" in capsys.readouterr().out

    assert main(["alerts", "ack", str(slow["id"])]) == 0
    assert f"alert #{slow['id']} (p95_latency) acknowledged by cli:" in capsys.readouterr().out
    assert main(["alerts", "ack", str(slow["id"])]) == 2
    assert "was acknowledged by" in capsys.readouterr().err

    assert main(["alerts", "silence", "--matcher", "rule=cpu", "--author", "ana", "--comment", "host upgrade",
                 "--until", "2h"]) == 0
    assert "rule=cpu" in capsys.readouterr().out and alerts.list_silences(workspace)[0]["author"] == "ana"
    assert main(["alerts", "silence", "--matcher", "rule", "--author", "ana", "--comment", "x", "--until", "2h"]) == 2
    err = capsys.readouterr().err
    assert "key=value" in err and len(err.strip().splitlines()) == 1
    assert main(["alerts", "silence", "--matcher", "rule=cpu", "--author", "ana", "--comment", "x",
                 "--until", "someday"]) == 2
    assert "until" in capsys.readouterr().err
    assert main(["alerts", "silence", "--matcher", "rule=cpu", "--author", "ana", "--comment", "x",
                 "--until", "2001-01-01T00:00"]) == 2
    assert "in the future" in capsys.readouterr().err
