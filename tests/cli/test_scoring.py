"""``opscore predict``: batch scoring a CSV through the real command line entry point."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select

from opscore.cli.main import main
from opscore.demo.credit_data import TARGET, credit_applications
from opscore.store import open_store, predictions


def logged_count(settings) -> int:
    with open_store(settings).read() as conn:
        return conn.execute(select(func.count()).select_from(predictions).where(predictions.c.source == "batch")).scalar_one()


@pytest.fixture
def applications(trained, tmp_path):
    frame = credit_applications(n_rows=40, seed=31).drop(columns=[TARGET]).astype({"credit_score": object})
    frame.loc[4, "credit_score"] = "excellent"
    path = tmp_path / "applications.csv"
    frame.to_csv(path, index=False)
    return path


def test_predict_writes_scored_rows_errors_and_logs_them(trained, applications, tmp_path, capsys):
    errors = tmp_path / "problems.csv"
    assert main(["predict", "--input", str(applications), "--errors", str(errors), "--quiet"]) == 0
    out, err = capsys.readouterr()
    output = tmp_path / "applications.predictions.csv"
    assert "scored 39 row(s), 1 failed, version v1" in out and str(output) in out
    assert "row 4, column 'credit_score'" in err

    scored = pd.read_csv(output)
    assert len(scored) == 40
    assert {"prediction", "version", "error", "probability_0", "probability_1"} <= set(scored.columns)
    assert scored["error"].notna().sum() == 1 and "credit_score" in scored.loc[4, "error"]
    assert scored.drop(index=4)["prediction"].isin([0, 1]).all() and pd.isna(scored.loc[4, "prediction"])
    problems = pd.read_csv(errors)
    assert problems[["row", "line", "column"]].values.tolist() == [[4, 6, "credit_score"]]
    assert logged_count(trained) == 39, "the writer was flushed before the command returned"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_predict_to_a_named_output(trained, applications, tmp_path):
    target = tmp_path / "out" / "scored.csv"
    assert main(["predict", "--input", str(applications), "--output", str(target), "--quiet"]) == 0
    assert len(pd.read_csv(target)) == 40


def test_predict_refuses_missing_columns_with_exit_2(trained, tmp_path, capsys):
    path = tmp_path / "partial.csv"
    credit_applications(n_rows=10, seed=2).drop(columns=[TARGET, "loan_amount"]).to_csv(path, index=False)
    assert main(["predict", "--input", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'loan_amount'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "partial.predictions.csv").exists()
    assert logged_count(trained) == 0


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("missing.csv", None, "no such file"),
    ("empty.csv", b"", "empty"),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
])
def test_predict_refuses_unreadable_input_with_exit_2(trained, tmp_path, capsys, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["predict", "--input", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1


def test_predict_will_not_overwrite_its_input(trained, applications, capsys):
    before = applications.read_bytes()
    assert main(["predict", "--input", str(applications), "--output", str(applications), "--quiet"]) == 2
    assert "input file" in capsys.readouterr().err
    assert applications.read_bytes() == before
