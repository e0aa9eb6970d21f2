"""Models trained elsewhere, registered, then served over HTTP: promote, /predict, rollback."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from opscore.models.registration import register_model
from opscore.models.registry import ledger_entries
from opscore.serving.http_api import create_app
from opscore.store import open_store

AUTH = {"Authorization": "Bearer test-token"}

KINDS = {
    "logistic regression, joblib": ("logistic", "joblib"),
    "pipeline with one-hot encoding, skops": ("pipeline", "skops"),
    "regressor, skops": ("regressor", "skops"),
    "mlflow directory, cloudpickle": ("pipeline", "mlflow-cloudpickle"),
    "mlflow directory, skops": ("regressor", "mlflow-skops"),
}


def _records(own, n: int = 8) -> list[dict]:
    rows = own.sample[own.features].dropna().head(n)
    return rows.astype(object).to_dict(orient="records"), rows


def _expected(own, rows) -> tuple[list, list | None]:
    if own.target == "loan_amount":
        return own.model.predict(rows).tolist(), None
    return own.model.predict(rows).tolist(), own.model.predict_proba(rows).tolist()


def _assert_served(client: TestClient, own, version_id: str) -> None:
    records, rows = _records(own)
    response = client.post("/predict", json={"instances": records})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == version_id
    predictions, probabilities = _expected(own, rows)
    assert np.allclose(body["predictions"], predictions)
    if probabilities is None:
        assert body["probabilities"] is None
    else:
        assert np.allclose(body["probabilities"], probabilities)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_registered_model_promotes_serves_and_rolls_back(workspace, operator, own_model, kind):
    name, save_as = KINDS[kind]
    first, second = own_model(name, 1, save_as), own_model(name, 2, save_as)
    trust = save_as in {"joblib", "mlflow-cloudpickle"}
    register_model(workspace, "a", first.path, first.sample, first.target, actor=operator, trust_pickle=trust)
    register_model(workspace, "b", second.path, second.sample, second.target, actor=operator, trust_pickle=trust,
                   then="candidate")
    with TestClient(create_app(workspace)) as client:
        _assert_served(client, first, "a")
        promoted = client.post("/versions/b/promote", json={"reason": "the team's new fit"}, headers=AUTH)
        assert promoted.status_code == 200, promoted.text
        _assert_served(client, second, "b")
        back = client.post("/rollback", json={"reason": "checking the way back"}, headers=AUTH)
        assert back.status_code == 200, back.text
        _assert_served(client, first, "a")
        missing = client.post("/predict", json={"instances": [{c: 1 for c in first.features[1:]}]})
        assert missing.status_code == 422 and first.features[0] in missing.text
    moves = [(e.action, e.to_version) for e in ledger_entries(open_store(workspace), newest_first=False)]
    assert moves == [("initial", "a"), ("candidate", "b"), ("promote", "b"), ("rollback", "a")]


def test_a_classifier_without_probabilities_answers_null_probabilities(workspace, operator, own_model, tmp_path):
    import skops.io as sio
    from sklearn.svm import LinearSVC

    own = own_model("logistic")
    train = own.sample.iloc[:200]
    model = LinearSVC().fit(train[own.features], train["default"])
    sio.dump(model, tmp_path / "svm.skops")
    register_model(workspace, "svm", tmp_path / "svm.skops", own.sample.iloc[200:], "default", actor=operator)
    records, rows = _records(own)
    with TestClient(create_app(workspace)) as client:
        body = client.post("/predict", json={"instances": records}).json()
    assert body["probabilities"] is None and body["predictions"] == model.predict(rows).tolist()
