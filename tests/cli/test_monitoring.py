"""``opscore drift``: the JSON contract of DESIGN.md, a readable table, settings, bad input as exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opscore.cli.main import main

CONTRACT_COLUMN_KEYS = {"type", "test", "statistic", "p_value", "threshold", "drifted", "missing_share_reference",
                        "missing_share_current"}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    n = 2_000
    reference = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 0.5, n),
                              "segment": rng.choice(["a", "b", "c"], n)})
    current = reference.copy()
    current["age"] = current["age"] + 8  # a shift of 0.8 sigma
    current.loc[: n // 2, "segment"] = "z"  # a category the reference never had
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_csv(tmp_path / "current.csv", index=False)
    return tmp_path / "reference.csv", tmp_path / "current.csv"


def test_json_output_keeps_the_contract_exactly(workspace, files, capsys):
    reference, current = files
    assert main(["drift", "--reference", str(reference), "--current", str(current), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"dataset_drift", "drift_share", "threshold_share", "columns"}
    assert isinstance(report["dataset_drift"], bool) and report["threshold_share"] == 0.5
    assert set(report["columns"]) == {"age", "income", "segment"}
    for column in report["columns"].values():
        assert set(column) >= CONTRACT_COLUMN_KEYS
        assert column["type"] in {"numeric", "categorical"} and isinstance(column["drifted"], bool)
    assert report["columns"]["age"]["drifted"] and not report["columns"]["income"]["drifted"]
    assert report["columns"]["segment"]["drifted"] and report["columns"]["segment"]["unseen_categories"] == ["z"]
    assert report["drift_share"] == pytest.approx(2 / 3) and report["dataset_drift"] is True


def test_the_table_names_the_verdict_and_each_column(workspace, files, capsys):
    reference, current = files
    assert main(["drift", "--reference", str(reference), "--current", str(current)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DATASET DRIFT: 2 of 3 columns drifted")
    assert "unseen categories z" in out


def test_opscore_toml_chooses_a_columns_test_and_threshold(workspace, files, capsys):
    (workspace.workspace / "opscore.toml").write_text(
        'drift_share = 0.9\n[drift_columns]\nincome = "psi"\nage = {test = "ks", threshold = 0.01}\n')
    reference, current = files
    assert main(["drift", "--reference", str(reference), "--current", str(current), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["columns"]["income"]["test"] == "psi"
    assert report["columns"]["age"]["test"] == "ks"
    assert report["threshold_share"] == 0.9 and report["dataset_drift"] is False


@pytest.mark.parametrize(("toml", "message"), [
    ('[drift_columns]\nage = "nonsense"\n', "nonsense"),
    ('[drift_columns]\nage = {test = "ks", threshold = "low"}\n', "threshold must be a number"),
    ('drift_correction = "holm-ish"\n', "holm-ish"),
    ("drift_columns = 3\n", "drift_columns"),
])
def test_bad_drift_settings_exit_2_naming_them(workspace, files, capsys, toml, message):
    (workspace.workspace / "opscore.toml").write_text(toml)
    reference, current = files
    assert main(["drift", "--reference", str(reference), "--current", str(current)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_files_exit_2_with_one_line(workspace, files, tmp_path, capsys):
    reference, current = files
    (tmp_path / "noise.csv").write_bytes(np.random.default_rng(0).bytes(4096))
    pd.DataFrame({"age": [1.0, 2.0]}).to_csv(tmp_path / "narrow.csv", index=False)
    for args in (["--reference", str(tmp_path / "missing.csv"), "--current", str(current)],
                 ["--reference", str(reference), "--current", str(tmp_path / "noise.csv")],
                 ["--reference", str(reference), "--current", str(tmp_path / "narrow.csv")]):
        assert main(["drift", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("opscore: ") and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, expected", [
    (["drift"], "--window 24h"),
    (["drift", "--reference", "r.csv"], "--current CSV"),
    (["drift", "--window", "24h", "--reference", "r.csv", "--current", "c.csv"], "either --window"),
    (["drift", "--reference", "r.csv", "--current", "c.csv", "--version", "v1"], "--version goes with --window"),
    (["drift", "--window", "a day"], "90m, 24h or 7d"),
])
def test_wrong_combinations_exit_2_with_one_line(workspace, capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_window_with_no_version_in_production_says_so(workspace, capsys):
    assert main(["drift", "--window", "24h"]) == 2
    assert "no version has been in production" in capsys.readouterr().err


def test_window_over_logged_traffic_prints_the_contract_plus_window(served, capsys):
    assert main(["drift", "--window", "1h", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["window"]["rows"] == 120 and body["version"] == "v1"
    assert all(set(column) >= CONTRACT_COLUMN_KEYS for column in body["columns"].values())
    assert main(["drift", "--window", "1h", "--version", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["window"]["rows"] == 80
