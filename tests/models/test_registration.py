"""Registering models trained elsewhere: the version record, refusals that write nothing, retraining."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from opscore.data.features import validate_records
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import BadInputError, PreflightError
from opscore.models import artifacts, registry
from opscore.models.registration import register_model
from opscore.models.retraining import retrain
from opscore.serving.predictor import load_version
from opscore.store import open_store


def register(settings, version_id, own, actor, **kwargs):
    return register_model(settings, version_id, own.path, own.sample, own.target, actor=actor, **kwargs)


def assert_nothing_written(settings, version_id):
    store = open_store(settings)
    assert not registry.version_exists(store, version_id)
    assert not (settings.model_store_path / version_id).exists()
    staging = settings.model_store_path / artifacts.STAGING
    assert not staging.exists() or list(staging.iterdir()) == []
    assert registry.ledger_entries(store) == []


def test_a_logistic_regression_gets_everything_a_trained_version_has(workspace, operator, own_model):
    own = own_model("logistic", save_as="joblib")
    outcome = register(workspace, "lr1", own, operator, trust_pickle=True)
    version = outcome.version
    assert outcome.promoted and version.aliases == ("production",)
    assert version.task == "classification" and version.feature_schema.names == own.features
    assert all(spec.kind == "numeric" for spec in version.feature_schema.features)
    assert version.feature_schema.classes == [0, 1]
    sample = own.sample
    assert version.training_rows == len(sample)
    # Metrics are the model's own scores on the sample, as scikit-learn computes them.
    probabilities = own.model.predict_proba(sample[own.features])[:, 1]
    assert version.metrics["accuracy"] == pytest.approx(accuracy_score(sample["default"], own.model.predict(sample[own.features])))
    assert version.metrics["roc_auc"] == pytest.approx(roc_auc_score(sample["default"], probabilities))
    # The stored artifact is the file as it came; the version records who trusted the pickle.
    assert (workspace.model_store_path / "lr1" / "model.joblib").read_bytes() == own.path.read_bytes()
    assert version.artifact_sha256 == artifacts.sha256_bytes(own.path.read_bytes())
    assert version.params["origin"] == "registered"
    assert version.params["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert version.params["source"]["trusted_pickle_by"] == str(operator)
    assert f"registered from a pickle (joblib file), trusted by {operator}" in version.notes
    entry = registry.ledger_entries(open_store(workspace))[0]
    assert entry.action == "initial" and "trusted by" in entry.reason
    profile = artifacts.read_document(workspace.model_store_path, "lr1", "reference_profile.json")
    assert set(profile["columns"]) == set(own.features) and profile["prediction"]["n"] == len(sample)
    example = artifacts.read_document(workspace.model_store_path, "lr1", "input_example.json")
    assert len(example) == 5 and set(example[0]) == set(own.features)
    assert registry.preflight(workspace, "lr1").ok
    assert artifacts.read_dataset(workspace.model_store_path, version.fingerprint).shape == sample.shape


def test_a_pipeline_with_one_hot_encoding_keeps_its_categorical_columns(workspace, operator, own_model):
    own = own_model("pipeline")
    version = register(workspace, "p1", own, operator).version
    kinds = {spec.name: spec.kind for spec in version.feature_schema.features}
    assert kinds == {**{c: "numeric" for c in own.features[:5]}, "employment_type": "categorical",
                     "home_ownership": "categorical"}
    assert "salaried" in version.feature_schema.spec("employment_type").categories
    assert (workspace.model_store_path / "p1" / "model.skops").exists()
    assert version.params["source"]["trusted_pickle_by"] is None
    loaded = load_version(workspace, "p1")
    rows = own.sample[own.features].head(20)
    records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    served = loaded.predict_frame(validate_records(version.feature_schema, records).frame)
    assert np.allclose(served.probabilities, own.model.predict_proba(rows))


def test_a_regressor_is_registered_for_regression_without_being_told(workspace, operator, own_model):
    own = own_model("regressor")
    outcome = register(workspace, "r1", own, operator)
    version = outcome.version
    assert version.task == "regression" and version.target == "loan_amount"
    expected = own.model.predict(own.sample[own.features])
    assert version.metrics["r2"] == pytest.approx(r2_score(own.sample["loan_amount"], expected))
    assert any("default" in note and "ignored" in note for note in outcome.notes)


def test_an_mlflow_directory_keeps_its_run_and_signature(workspace, operator, own_model):
    own = own_model("pipeline", save_as="mlflow-cloudpickle")
    version = register(workspace, "m1", own, operator, trust_pickle=True).version
    assert version.feature_schema.names == own.features
    mlflow = version.params["source"]["mlflow"]
    assert mlflow["run_id"] == "8c1d9f3e2b4a4c6d8e0f1a2b3c4d5e6f"
    assert mlflow["model_uri"] == "runs:/8c1d9f3e2b4a4c6d8e0f1a2b3c4d5e6f/model"
    assert "MLflow sklearn model, cloudpickle" in version.notes
    assert (workspace.model_store_path / "m1" / "model.pkl").read_bytes() == (own.path / "model.pkl").read_bytes()
    metadata = artifacts.read_document(workspace.model_store_path, "m1", "metadata.json")
    assert metadata["source"]["mlflow"]["artifact_path"] == "model"


def _edit_signature(folder, edit) -> None:
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["signature"]["inputs"] = json.dumps(edit(json.loads(mlmodel["signature"]["inputs"])))
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def test_an_mlflow_signature_is_what_callers_send(workspace, operator, own_model):
    own = own_model("pipeline", save_as="mlflow-pickle")
    # The team's signature says callers send delinquencies_2y as text: it is validated and profiled as text.
    _edit_signature(own.path, lambda inputs: [dict(i, type="string") if i["name"] == "delinquencies_2y" else i
                                              for i in inputs])
    version = register(workspace, "m1", own, operator, trust_pickle=True).version
    assert version.feature_schema.spec("delinquencies_2y").kind == "categorical"
    profile = artifacts.read_document(workspace.model_store_path, "m1", "reference_profile.json")
    assert profile["columns"]["delinquencies_2y"]["kind"] == "categorical"
    _edit_signature(own.path, lambda inputs: [i for i in inputs if i["name"] != "age"])
    with pytest.raises(BadInputError, match="signature .* and the model's feature_names_in_ .* disagree"):
        register(workspace, "m2", own, operator, trust_pickle=True, then="candidate")
    assert not (workspace.model_store_path / "m2").exists()


def _unseen_category(own):
    sample = own.sample.copy()
    sample.loc[3, "employment_type"] = "astronaut"
    return sample


def _strict_encoder(tmp_path):
    """A pipeline whose encoder refuses categories it never saw: its predict fails on new ones."""
    train = credit_applications(n_rows=600, seed=1).dropna()
    model = Pipeline([("encode", ColumnTransformer([("c", OneHotEncoder(handle_unknown="error"), ["employment_type"])],
                                                   remainder="passthrough")),
                      ("model", LogisticRegression(max_iter=2_000))])
    model.fit(train[["employment_type", "credit_score"]], train["default"])
    path = tmp_path / "strict.skops"
    sio.dump(model, path)
    return path


def _two_outputs(tmp_path):
    train = credit_applications(n_rows=600, seed=1).dropna()
    model = LinearRegression().fit(train[["age", "credit_score"]], train[["loan_amount", "debt_to_income"]])
    path = tmp_path / "two.skops"
    sio.dump(model, path)
    return path


REFUSALS = {
    "predict fails": (lambda own, tmp: (_strict_encoder(tmp), _unseen_category(own), "default", {}),
                      r"predict failed on the data: ValueError: Found unknown categories \['astronaut'"),
    "missing column": (lambda own, tmp: (own.path, own.sample.drop(columns=["credit_score"]), "default", {}),
                       r"the data lacks column\(s\) the model expects: 'credit_score'"),
    "target is unknown": (lambda own, tmp: (own.path, own.sample, "defaulted", {}), "target column 'defaulted' not found"),
    "wrong output shape": (lambda own, tmp: (_two_outputs(tmp), own.sample, "loan_amount", {}),
                           r"returned shape \(400, 2\) for 400 rows"),
    "regressor as classifier": (lambda own, tmp: (_two_outputs(tmp), own.sample, "default", {"task": "classification"}),
                                "is a regressor; it cannot be registered for classification"),
    "classifier as regressor": (lambda own, tmp: (own.path, own.sample, "loan_term_months", {"task": "regression"}),
                                "is a classifier; it cannot be registered for regression"),
    "labels it does not know": (lambda own, tmp: (own.path, own.sample.assign(default=own.sample["default"].map({0: "no", 1: "yes"})),
                                                  "default", {}), r"label\(s\) no, yes are not among the model's classes"),
    "not a model": (lambda own, tmp: (_dump(tmp / "dict.skops", {"weights": [1, 2]}), own.sample, "default", {}),
                    "has no predict method"),
    "unfitted": (lambda own, tmp: (_dump(tmp / "unfitted.skops", LogisticRegression()), own.sample, "default", {}),
                 "is not fitted"),
    "pickle without trust": (lambda own, tmp: (_joblib(tmp / "m.joblib", own.model), own.sample, "default", {}),
                             "--trust-pickle"),
}


def _dump(path, obj):
    sio.dump(obj, path)
    return path


def _joblib(path, obj):
    joblib.dump(obj, path)
    return path


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_model_that_does_not_fit_its_data_is_refused_and_nothing_is_written(workspace, operator, own_model, tmp_path, case):
    build, message = REFUSALS[case]
    path, sample, target, kwargs = build(own_model("pipeline"), tmp_path)
    with pytest.raises(BadInputError, match=message):
        register_model(workspace, "bad", path, sample, target, actor=operator, **kwargs)
    assert_nothing_written(workspace, "bad")


def test_a_classifier_without_probabilities_is_registered_and_says_what_is_missing(workspace, operator, own_model, tmp_path):
    own = own_model("logistic")
    train = credit_applications(n_rows=1_500, seed=1).dropna(subset=own.features)
    model = LinearSVC().fit(train[own.features], train["default"])
    outcome = register_model(workspace, "svm", _dump(tmp_path / "svm.skops", model), own.sample, "default", actor=operator)
    assert set(outcome.version.metrics) == {"accuracy", "f1"}
    assert any("no predict_proba" in note for note in outcome.notes)
    scores = load_version(workspace, "svm").predict_frame(own.sample[own.features].head(3).astype(float))
    assert scores.probabilities is None and scores.predictions == model.predict(own.sample[own.features].head(3)).tolist()


def test_a_model_production_callers_could_not_use_is_refused_before_writing(workspace, operator, own_model):
    register(workspace, "lr1", own_model("logistic"), operator)
    for then in ("promote", "candidate"):
        with pytest.raises(PreflightError, match="cannot stand in for production 'lr1'.*new required column 'employment_type'"):
            register(workspace, "p1", own_model("pipeline"), operator, then=then)
        assert not registry.version_exists(open_store(workspace), "p1")
        assert not (workspace.model_store_path / "p1").exists()
    kept = register(workspace, "p1", own_model("pipeline"), operator, then="none")
    assert kept.version.aliases == () and not kept.promoted


def test_retraining_a_registered_model_refits_a_clone_of_it(workspace, operator, own_model):
    own = own_model("pipeline")
    register(workspace, "p1", own, operator)
    extra = credit_applications(n_rows=300, seed=9)
    outcome = retrain(workspace, "p1", extra_frame=extra, actor=operator, version_id="p2")
    version = outcome.candidate
    assert version.params["origin"] == "refit" and version.params["source"]["refit_of"] == "p1"
    assert version.training_rows == len(own.sample) + len(extra)
    assert (workspace.model_store_path / "p2" / "model.skops").exists()  # still no pickle in the store
    refit = load_version(workspace, "p2").model
    assert type(refit) is Pipeline and type(refit[-1]) is LogisticRegression and refit[-1].C == own.model[-1].C
    assert refit is not own.model and not np.allclose(refit[-1].coef_, own.model[-1].coef_)
    again = retrain(workspace, "p2", actor=operator, version_id="p3").candidate
    assert again.params["origin"] == "refit" and type(load_version(workspace, "p3").model[-1]) is LogisticRegression


class Rules:
    """A hand-written scorer someone pickled: it predicts, but scikit-learn cannot clone it."""

    classes_ = np.array([0, 1])

    def predict(self, frame):
        return (frame["credit_score"].to_numpy() < 620).astype(int)

    def predict_proba(self, frame):
        risky = self.predict(frame).astype(float)
        return np.column_stack([1 - risky, risky])


def test_retraining_a_model_that_cannot_be_cloned_is_refused(workspace, operator, own_model, tmp_path):
    own = own_model("logistic")
    path = _joblib(tmp_path / "rules.joblib", Rules())
    outcome = register_model(workspace, "rules", path, own.sample, "default", actor=operator, task="classification",
                             trust_pickle=True)
    assert outcome.version.task == "classification"
    with pytest.raises(BadInputError, match="cannot be cloned"):
        retrain(workspace, "rules", actor=operator, version_id="rules2")
    assert not registry.version_exists(open_store(workspace), "rules2")


def test_the_version_record_round_trips_through_the_registry(workspace, operator, own_model):
    own = own_model("pipeline", save_as="mlflow-skops")
    register(workspace, "m1", own, operator)
    as_json = json.loads(json.dumps(registry.get_version(open_store(workspace), "m1").to_dict()))
    assert as_json["features"] == own.features and as_json["created_by"] == "cli"
    assert pd.Series(as_json["metrics"]).between(0, 1).all()
