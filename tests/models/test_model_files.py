"""Reading models trained elsewhere: skops type checks, pickles refused unopened, MLflow directories."""

from __future__ import annotations

import builtins
import io
import pathlib
import pickle

import numpy as np
import pytest
import skops.io as sio
import yaml
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from opscore.exceptions import BadInputError, IntegrityError
from opscore.models import artifacts, model_files


class _TouchOnLoad:
    """Unpickling this creates ``marker``: the proof a pickle was (or was not) opened."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class ClipOutliers(TransformerMixin, BaseEstimator):
    """A team's own transformer: the kind of type a skops file may carry from outside scikit-learn."""

    def __init__(self, limit: float = 3.0) -> None:
        self.limit = limit

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return np.clip(x, -self.limit, self.limit)


FOREIGN = f"{__name__}.ClipOutliers"


def _untrusted_skops(path: pathlib.Path) -> pathlib.Path:
    """A real model whose skops file builds a type outside scikit-learn, numpy and scipy."""
    model = make_pipeline(ClipOutliers(limit=30.0), LogisticRegression())
    model.fit(np.arange(40, dtype=float).reshape(20, 2), [0, 1] * 10)
    sio.dump(model, path)
    return path


@pytest.fixture
def no_opening(monkeypatch):
    """Fail the test if anything opens or reads ``guarded`` paths."""
    guarded: set[str] = set()
    real_open, real_read = builtins.open, pathlib.Path.read_bytes

    def spy_open(file, *args, **kwargs):
        if str(file) in guarded:
            pytest.fail(f"{file} was opened")
        return real_open(file, *args, **kwargs)

    def spy_read(self):
        if str(self) in guarded:
            pytest.fail(f"{self} was read")
        return real_read(self)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(pathlib.Path, "read_bytes", spy_read)
    monkeypatch.setattr(model_files, "load_pickle", lambda *a, **k: pytest.fail("load_pickle was called"))
    return guarded


def test_a_skops_model_of_scikit_learn_types_loads_and_keeps_its_bytes(own_model):
    own = own_model("pipeline")
    loaded = model_files.read_model_file(own.path, actor="cli:ann")
    frame = own.sample[own.features]
    assert np.allclose(loaded.model.predict_proba(frame), own.model.predict_proba(frame))
    assert loaded.store_name == "model.skops" and loaded.blob == own.path.read_bytes()
    assert loaded.source["sha256"] == artifacts.sha256_bytes(own.path.read_bytes())
    assert loaded.source["trusted_types"] == [] and loaded.source["trusted_pickle_by"] is None
    assert loaded.provenance() == "registered from a skops file"


def test_a_skops_file_with_a_foreign_type_is_refused_by_that_types_name(tmp_path):
    path = _untrusted_skops(tmp_path / "weighted.skops")
    with pytest.raises(BadInputError, match=rf"outside scikit-learn, numpy and scipy: {FOREIGN};.*--trust"):
        model_files.read_model_file(path)
    with pytest.raises(BadInputError, match=FOREIGN):
        model_files.read_model_file(path, trust=["collections.Counter"])
    loaded = model_files.read_model_file(path, trust=[FOREIGN, "collections.Counter"], actor="cli:ann")
    assert loaded.model[0].limit == 30.0
    assert loaded.trusted_types == [FOREIGN]  # only what the file uses is recorded
    assert f"types trusted by cli:ann: {FOREIGN}" in loaded.provenance()


def test_a_joblib_file_is_refused_before_it_is_opened(tmp_path, no_opening):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(_TouchOnLoad(marker)))
    no_opening.add(str(path))
    with pytest.raises(BadInputError, match=r"can run any code.*--trust-pickle"):
        model_files.read_model_file(path)
    assert not marker.exists()


def test_a_trusted_pickle_is_opened_and_the_trust_is_recorded(tmp_path, own_model):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_TouchOnLoad(marker)))
    model_files.read_model_file(evil, trust_pickle=True)
    assert marker.exists()  # the marker works: opening the file does run its code
    own = own_model("logistic", save_as="joblib")
    loaded = model_files.read_model_file(own.path, trust_pickle=True, actor="cli:ann")
    assert loaded.store_name == "model.joblib" and loaded.source["trusted_pickle_by"] == "cli:ann"
    assert loaded.provenance() == "registered from a pickle (joblib file), trusted by cli:ann"


def test_an_mlflow_directory_is_read_without_mlflow(own_model):
    own = own_model("pipeline", save_as="mlflow-pickle")
    loaded = model_files.read_model_file(own.path, trust_pickle=True, actor="cli:ann")
    frame = own.sample[own.features]
    assert np.allclose(loaded.model.predict_proba(frame), own.model.predict_proba(frame))
    assert loaded.signature == [(c, "double") for c in own.features[:5]] + [(c, "string") for c in own.features[5:]]
    mlflow = loaded.source["mlflow"]
    assert mlflow["run_id"] == "8c1d9f3e2b4a4c6d8e0f1a2b3c4d5e6f" and mlflow["artifact_path"] == "model"
    assert mlflow["model_uri"] == "runs:/8c1d9f3e2b4a4c6d8e0f1a2b3c4d5e6f/model"
    assert loaded.store_name == "model.pkl" and loaded.blob == (own.path / "model.pkl").read_bytes()
    assert loaded.provenance() == "registered from a pickle (MLflow sklearn model, pickle), trusted by cli:ann"


def test_an_mlflow_pickle_is_refused_unopened_without_trust(tmp_path, no_opening):
    folder = tmp_path / "mlflow-model"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    (folder / "model.pkl").write_bytes(pickle.dumps(_TouchOnLoad(marker)))
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": {"pickled_model": "model.pkl",
                                                                             "serialization_format": "cloudpickle"}}}))
    no_opening.add(str(folder / "model.pkl"))
    with pytest.raises(BadInputError, match="MLflow sklearn model saved as a cloudpickle.*--trust-pickle"):
        model_files.read_model_file(folder)
    assert not marker.exists()


def test_an_mlflow_skops_model_needs_no_pickle_trust(own_model):
    own = own_model("regressor", save_as="mlflow-skops")
    loaded = model_files.read_model_file(own.path)
    assert loaded.store_name == "model.skops" and loaded.source["format"] == "skops"
    assert loaded.source["mlflow"]["serialization_format"] == "skops"


@pytest.mark.parametrize("mlmodel, message", [
    ({"flavors": {"python_function": {}}}, "no sklearn flavor"),
    ({"flavors": {"sklearn": {"pickled_model": "../outside.pkl"}}}, "points outside its directory"),
    ({"flavors": {"sklearn": {"pickled_model": "model.pkl", "serialization_format": "marshal"}}},
     "unknown serialization_format"),
    ({"flavors": {"sklearn": {"pickled_model": "model.pkl"}},
      "signature": {"inputs": '[{"name": "when", "type": "datetime"}]'}}, r"when \(datetime\)"),
    ({"flavors": {"sklearn": {"pickled_model": "model.pkl"}}, "signature": {"inputs": "[{"}}, "not valid JSON"),
    ("- just a list", "no 'flavors' mapping"),
])
def test_malformed_mlflow_directories_are_refused_with_the_reason(tmp_path, mlmodel, message):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"not opened")
    (folder / "MLmodel").write_text(mlmodel if isinstance(mlmodel, str) else yaml.safe_dump(mlmodel))
    with pytest.raises(BadInputError, match=message):
        model_files.read_model_file(folder, trust_pickle=True)


def test_a_tensor_signature_names_no_columns():
    mlmodel = {"signature": {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]'}}
    assert model_files.mlflow_signature(mlmodel) is None


@pytest.mark.parametrize("name, content, message", [
    ("model.onnx", b"x", "unknown model file type '.onnx'"),
    ("missing.skops", None, "no such file"),
    ("broken.skops", b"not a zip file", "not a skops file"),
    ("folder", "dir", "not an MLflow model: it has no MLmodel file"),
])
def test_what_is_not_a_model_file_is_refused(tmp_path, name, content, message):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        model_files.read_model_file(path)


def test_the_store_rechecks_skops_types_against_what_was_trusted(tmp_path):
    blob = _untrusted_skops(tmp_path / "weighted.skops").read_bytes()
    digest = artifacts.write_version(tmp_path / "store", "w1", None, {}, artifact_name="model.skops", blob=blob)
    assert digest == artifacts.sha256_bytes(blob)
    with pytest.raises(IntegrityError, match=FOREIGN):
        artifacts.load_model(tmp_path / "store", "w1", digest)
    model = artifacts.load_model(tmp_path / "store", "w1", digest, [FOREIGN])
    assert model[0].limit == 30.0


def test_the_store_picks_the_format_by_file_name_and_refuses_two(tmp_path):
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    digest = artifacts.write_version(tmp_path, "s1", model, {}, artifact_name="model.skops")
    assert sio.get_untrusted_types(data=(tmp_path / "s1" / "model.skops").read_bytes()) == []
    assert (tmp_path / "s1" / "model.sha256").read_text() == f"{digest}  model.skops\n"
    assert artifacts.load_model(tmp_path, "s1", digest).predict([[3.0]]).tolist() == [1]
    (tmp_path / "s1" / "model.joblib").write_bytes(io.BytesIO(b"x").getvalue())
    with pytest.raises(IntegrityError, match="more than one artifact"):
        artifacts.load_model(tmp_path, "s1", digest)
