"""The spine's command line, as a user runs it: exit codes, messages, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from opscore.cli.main import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opscore", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=os.environ.copy())


def store_contents(settings) -> list[str]:
    root = settings.model_store_path
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.name != ".staging") + sorted(
        p.name for p in (root / ".staging").glob("*")
    )


def test_train_rollback_ledger_from_the_shell(workspace):
    assert run_cli("train", "--version-id", "v1").returncode == 0
    second = run_cli("train", "--version-id", "v2")
    assert second.returncode == 0 and "v2 is production" in second.stdout
    rollback = run_cli("rollback", "--reason", "check")
    assert rollback.returncode == 0, rollback.stderr
    assert "v2 -> v1" in rollback.stdout
    ledger = json.loads(run_cli("ledger", "--json").stdout)
    assert [(e["action"], e["to_version"], e["reason"]) for e in ledger[:2]] == [
        ("rollback", "v1", "check"),
        ("promote", "v2", "trained by cli:" + ledger[1]["actor"].split(":", 1)[1]),
    ]
    assert all(e["actor"] and e["at"] > 0 for e in ledger)
    versions = json.loads(run_cli("versions", "--json").stdout)
    assert {v["version_id"]: v["aliases"] for v in versions} == {"v1": ["production"], "v2": []}
    assert "roc_auc" in versions[0]["metrics"]


def test_existing_version_id_exits_2_and_overwrites_nothing(workspace, capsys):
    assert main(["train", "--version-id", "v1", "--quiet"]) == 0
    artifact = workspace.model_store_path / "v1" / "model.joblib"
    before = artifact.read_bytes()
    capsys.readouterr()
    assert main(["train", "--version-id", "v1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err
    assert artifact.read_bytes() == before


@pytest.mark.parametrize("version_id", ["../escape", "a/b", "..", "x" * 65, "bad id"])
def test_malformed_version_id_exits_2(workspace, capsys, version_id):
    assert main(["train", "--version-id", version_id, "--quiet"]) == 2
    assert "malformed" in capsys.readouterr().err
    assert store_contents(workspace) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_DATA = {
    "missing target": (b"a,b\n1,2\n3,4\n", "target column 'default' not found"),
    "empty file": (b"", "is empty"),
    "not csv": (b'{"json": "document",\n "rows": [1, 2, 3]}\n', "not a CSV file: it looks like JSON"),
    "header only": (b"x,default\n", "header but no data rows"),
    "one class": (b"x,default\n" + b"".join(f"{i},1\n".encode() for i in range(40)), "single class"),
    "all-NaN feature": (b"x,y,default\n" + b"".join(f"{i},,{i % 2}\n".encode() for i in range(40)),
                        "no values at all: y"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_training_data_exits_2_naming_the_problem(workspace, tmp_path, capsys, case):
    data, expected = BAD_DATA[case]
    path = _write(tmp_path / "train.csv", data)
    assert main(["train", "--version-id", "bad", "--data", str(path), "--target", "default", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert main(["versions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert [n for n in store_contents(workspace) if n not in {".datasets"}] == []


def test_ten_megabytes_of_random_bytes_exit_2(workspace, tmp_path, capsys):
    path = _write(tmp_path / "noise.csv", np.random.default_rng(0).bytes(10 * 1024 * 1024))
    assert main(["train", "--version-id", "noise", "--data", str(path), "--target", "default", "--quiet"]) == 2
    err = capsys.readouterr().err  # read once: a second read is always empty
    assert "not a CSV" in err or "UTF-8" in err
    assert store_contents(workspace) == []


def test_data_without_target_flag_and_missing_file(workspace, tmp_path, capsys):
    assert main(["train", "--version-id", "x", "--data", str(tmp_path / "absent.csv"), "--target", "y"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--version-id", "x", "--data", str(tmp_path / "absent.csv")]) == 2
    assert "--target" in capsys.readouterr().err


def test_regression_from_a_csv(workspace, tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    rows = "\n".join(f"{a:.4f},{'ab'[i % 2]},{3 * a + rng.normal(0, 0.1):.4f}" for i, a in enumerate(x))
    path = _write(tmp_path / "reg.csv", f"x,group,y\n{rows}\n".encode())
    assert main(["train", "--version-id", "r1", "--data", str(path), "--target", "y", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "regression" in out and "r2" in out
    r2 = float(out.split("r2")[1].split()[0])
    assert r2 > 0.9


def test_promote_and_rollback_without_history_exit_2(workspace, capsys):
    assert main(["rollback", "--reason", "x"]) == 2
    assert "nothing is in production" in capsys.readouterr().err
    assert main(["promote", "ghost", "--reason", "x"]) == 2
    assert "no version 'ghost'" in capsys.readouterr().err


def test_promote_and_rollback_refuse_when_production_is_not_what_they_expect(trained, capsys):
    from opscore.models.registry import alias_target, ledger_entries
    from opscore.store import open_store

    assert main(["promote", "v2", "--reason", "better", "--expect", "v2"]) == 2
    assert "production moved to 'v1' meanwhile (expected 'v2'); nothing changed" in capsys.readouterr().err
    assert main(["promote", "v2", "--reason", "better", "--expect", "v1"]) == 0
    assert main(["rollback", "--reason", "bad", "--expect", "v1"]) == 2
    assert "production moved to 'v2' meanwhile" in capsys.readouterr().err
    assert main(["rollback", "--reason", "bad", "--expect", "v2"]) == 0
    store = open_store(trained)
    assert alias_target(store) == "v1"
    assert [e.action for e in ledger_entries(store, alias="production")] == ["rollback", "promote", "initial"]


def test_retrain_from_the_shell_registers_a_candidate_and_leaves_production(trained, capsys):
    assert main(["retrain", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "registered candidate v3 from 1,500 rows of v1's training data" in out
    assert "opscore promote v3" in out
    assert main(["versions", "--json"]) == 0
    aliases = {v["version_id"]: v["aliases"] for v in json.loads(capsys.readouterr().out)}
    assert aliases["v1"] == ["production"] and aliases["v3"] == ["candidate"]


def test_retrain_from_an_unknown_version_exits_2_naming_it(trained, capsys):
    assert main(["retrain", "--from", "nope", "--quiet"]) == 2
    assert "nope" in capsys.readouterr().err


def test_retrain_on_an_empty_registry_exits_2_with_the_reason(workspace, capsys):
    assert main(["retrain", "--quiet"]) == 2
    assert "no production version yet" in capsys.readouterr().err
