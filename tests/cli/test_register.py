"""``opscore register`` as a user runs it: exit 0 with the version, exit 2 with a one-line reason."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from opscore.cli.main import main
from opscore.models import registry
from opscore.store import open_store


def register_args(own, version_id: str, csv: Path, *extra: str) -> list[str]:
    return ["register", "--version-id", version_id, "--model", str(own.path), "--data", str(csv),
            "--target", own.target, *extra]


def refused(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


@pytest.fixture
def sample_csv(tmp_path):
    def write(own) -> Path:
        path = tmp_path / f"sample-{own.path.stem}.csv"
        own.sample.to_csv(path, index=False)
        return path
    return write


def test_register_from_the_shell_then_promote_and_roll_back(workspace, own_model, sample_csv):
    own = own_model("pipeline")
    csv = sample_csv(own)
    first = subprocess.run([sys.executable, "-m", "opscore", *register_args(own, "p1", csv)], capture_output=True,
                           text=True, env=os.environ.copy(), timeout=300)
    assert first.returncode == 0, first.stderr
    assert "registered p1 (classification, sklearn.pipeline.Pipeline, evaluated on 400 rows)" in first.stdout
    assert "p1 is production" in first.stdout and "roc_auc" in first.stdout
    second = own_model("pipeline", 2)
    assert main(register_args(second, "p2", sample_csv(second), "--candidate", "--notes", "weaker C")) == 0
    assert main(["promote", "p2", "--reason", "try it"]) == 0
    assert main(["rollback", "--reason", "back"]) == 0
    store = open_store(workspace)
    assert registry.alias_target(store, "production") == "p1"
    assert registry.get_version(store, "p2").notes == "weaker C; registered from a skops file"


def test_register_refusals_exit_2_with_one_line(workspace, own_model, sample_csv, capsys, tmp_path):
    own = own_model("logistic", save_as="joblib")
    csv = sample_csv(own)
    assert "--trust-pickle" in refused(capsys, register_args(own, "lr1", csv))
    narrow = tmp_path / "narrow.csv"
    own.sample.drop(columns=["credit_score"]).to_csv(narrow, index=False)
    assert "lacks column(s) the model expects: 'credit_score'" in refused(
        capsys, register_args(own, "lr1", narrow, "--trust-pickle"))
    assert "is a classifier" in refused(capsys, register_args(own, "lr1", csv, "--trust-pickle", "--task", "regression"))
    assert "malformed" in refused(capsys, register_args(own, "../x", csv, "--trust-pickle"))
    assert "no such file" in refused(capsys, register_args(own, "lr1", tmp_path / "none.csv", "--trust-pickle"))
    assert not registry.version_exists(open_store(workspace), "lr1")
    assert not (workspace.model_store_path / "lr1").exists()

    assert main(register_args(own, "lr1", csv, "--trust-pickle")) == 0
    out = capsys.readouterr()
    assert "lr1 is production" in out.out
    assert "already exists" in refused(capsys, register_args(own, "lr1", csv, "--trust-pickle"))
    versions = {v["version_id"]: v for v in json.loads(_stdout(capsys, ["versions", "--json"]))}
    assert "trusted by cli:" in versions["lr1"]["notes"]


def _stdout(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


class _Marker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_an_untrusted_pickle_is_never_opened_by_the_cli(workspace, own_model, sample_csv, capsys, tmp_path):
    own = own_model("logistic")
    marker = tmp_path / "code-ran"
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_Marker(marker)))
    err = refused(capsys, ["register", "--version-id", "x1", "--model", str(evil), "--data", str(sample_csv(own)),
                           "--target", "default"])
    assert "can run any code" in err and not marker.exists()


def test_trust_names_the_foreign_types_a_skops_file_may_build(workspace, own_model, sample_csv, capsys, tmp_path):
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    own = own_model("logistic")
    model = make_pipeline(FunctionTransformer(func=_signed_log), own.model)  # the team's own function, before the model
    model.fit(own.sample[own.features], own.sample["default"])
    path = tmp_path / "logged.skops"
    sio.dump(model, path)
    args = ["register", "--version-id", "f1", "--model", str(path), "--data", str(sample_csv(own)), "--target", "default"]
    name = f"{__name__}._signed_log"
    err = refused(capsys, args)
    assert f"outside scikit-learn, numpy and scipy: {name};" in err and "--trust TYPE" in err
    assert main([*args, "--trust", name]) == 0
    version = registry.get_version(open_store(workspace), "f1")
    assert version.params["source"]["trusted_types"] == [name]
    assert "types trusted by cli:" in version.notes and name in version.notes
    assert registry.preflight(workspace, "f1").ok  # the store reloads it under the recorded trust


def _signed_log(x):
    import numpy as np

    return np.sign(x) * np.log1p(np.abs(x))
