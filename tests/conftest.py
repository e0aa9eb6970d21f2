"""Shared fixtures: a throw-away workspace per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from opscore.access.actors import Actor
from opscore.config import Settings, load_settings
from opscore.demo.credit_data import credit_applications
from opscore.store import dispose_stores

PG_URL = os.environ.get("OPSCORE_TEST_PG_URL", "")
OPERATOR = Actor("tester", "operator", "cli")


def _fresh_pg_schema_url() -> str:
    """A PostgreSQL database of its own for one test (created, dropped afterwards)."""
    name = f"opscore_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A SQLite workspace in tmp_path, also exported through OPSCORE_* for subprocesses."""
    yield from _workspace(tmp_path, monkeypatch, "")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_workspace(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The same test on SQLite and on PostgreSQL (skipped without OPSCORE_TEST_PG_URL)."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("OPSCORE_TEST_PG_URL is not set; .ci/run starts PostgreSQL and sets it")
        url = _fresh_pg_schema_url()
        try:
            yield from _workspace(tmp_path, monkeypatch, url)
        finally:
            dispose_stores()
            _drop_pg(url)
    else:
        yield from _workspace(tmp_path, monkeypatch, "")


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Settings]:
    for key in list(os.environ):
        if key.startswith("OPSCORE_") and key != "OPSCORE_TEST_PG_URL":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OPSCORE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("OPSCORE_OPERATOR_PASSWORD", "test-operator")
    monkeypatch.setenv("OPSCORE_ADMIN_TOKEN", "test-token")
    # The same ensemble, smaller: tests exercise the code path, not the model's quality.
    monkeypatch.setenv("OPSCORE_FOREST_TREES", "20")
    monkeypatch.setenv("OPSCORE_BOOSTING_ROUNDS", "30")
    if db_url:
        monkeypatch.setenv("OPSCORE_DB_URL", db_url)
    monkeypatch.chdir(tmp_path)
    dispose_stores()
    yield load_settings()
    dispose_stores()


@pytest.fixture(scope="session")
def demo_frame():
    """A smaller demo data set: fast to train, same shape as the real one."""
    return credit_applications(n_rows=1_500, seed=7)


@pytest.fixture
def operator() -> Actor:
    return OPERATOR


@pytest.fixture
def trained(workspace: Settings, demo_frame) -> Settings:
    """A workspace with v1 (production) and v2 (candidate), trained on the demo data."""
    from opscore.models.training import train_version

    train_version(workspace, "v1", demo_frame, "default", actor=OPERATOR, then="promote")
    train_version(workspace, "v2", credit_applications(n_rows=1_500, seed=8), "default", actor=OPERATOR, then="candidate")
    return workspace


def log_traffic(settings: Settings, rows: int, version: str | None = None, seed: int = 5) -> None:
    """Score demo rows through the real predictor and wait until telemetry has logged them."""
    from opscore.serving.predictor import load_version, score_frame
    from opscore.serving.telemetry_writer import TelemetryWriter

    frame = credit_applications(n_rows=rows, seed=seed).drop(columns="default")
    writer = TelemetryWriter(settings).start()
    loaded = load_version(settings, version) if version else None
    score_frame(settings, frame, source="api", telemetry=writer, loaded=loaded)
    assert writer.close()


@pytest.fixture
def served(trained: Settings) -> Settings:
    """v1 production with 120 logged predictions, v2 candidate with 80 (as shadow traffic would log them)."""
    log_traffic(trained, 120)
    log_traffic(trained, 80, version="v2", seed=6)
    return trained


# Models "trained elsewhere" for the bring-your-own-model tests: real scikit-learn fits on the demo
# data, saved the way their owners would save them (skops, joblib, an MLflow model directory).
OWN_NUMERIC = ["age", "loan_amount", "credit_score", "debt_to_income", "delinquencies_2y"]
OWN_CATEGORICAL = ["employment_type", "home_ownership"]


@dataclass(frozen=True)
class OwnModel:
    """A fitted model on disk, the object itself, and a labelled sample it did not train on."""

    path: Path
    model: object
    sample: pd.DataFrame
    target: str
    features: list[str]


def _own_estimator(kind: str, variant: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if kind == "logistic":
        return LogisticRegression(C=[1.0, 0.001][variant - 1], max_iter=2_000), OWN_NUMERIC, "default"
    if kind == "regressor":
        return (HistGradientBoostingRegressor(max_iter=[40, 5][variant - 1], random_state=0),
                ["age", "credit_score", "debt_to_income", "loan_term_months"], "loan_amount")
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), OWN_NUMERIC),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("encode", OneHotEncoder(handle_unknown="ignore"))]), OWN_CATEGORICAL),
    ])
    model = Pipeline([("preprocess", preprocess), ("model", LogisticRegression(C=[1.0, 0.001][variant - 1], max_iter=2_000))])
    return model, OWN_NUMERIC + OWN_CATEGORICAL, "default"


def write_mlflow_dir(folder: Path, model: object, features: pd.DataFrame, serialization: str = "cloudpickle") -> Path:
    """An MLflow sklearn-flavor model directory as ``mlflow.sklearn.save_model`` lays it out (mlflow not needed)."""
    import pickle

    import skops.io as sio
    import yaml

    folder.mkdir(parents=True)
    if serialization == "skops":
        file_name = "model.skops"
        sio.dump(model, folder / file_name)
    else:
        file_name = "model.pkl"
        pickler = pytest.importorskip("cloudpickle") if serialization == "cloudpickle" else pickle
        (folder / file_name).write_bytes(pickler.dumps(model))
    types = {"float64": "double", "int64": "long"}
    signature = [{"type": types.get(str(features[c].dtype), "string"), "name": c, "required": True} for c in features.columns]
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                                "loader_module": "mlflow.sklearn", "model_path": file_name,
                                "predict_fn": "predict", "python_version": "3.11.7"},
            "sklearn": {"code": None, "pickled_model": file_name, "serialization_format": serialization,
                        "sklearn_version": "1.9.1"},
        },
        "mlflow_version": "2.19.0",
        "model_size_bytes": (folder / file_name).stat().st_size,
        "model_uuid": "0f3c2a8e5b7d4e1f9a6b3c2d1e0f4a5b",
        "run_id": "8c1d9f3e2b4a4c6d8e0f1a2b3c4d5e6f",
        "signature": {"inputs": json.dumps(signature), "outputs": '[{"type": "long", "required": true}]', "params": None},
        "utc_time_created": "2026-11-20 09:14:02.123456",
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    return folder


def make_own_model(folder: Path, kind: str, variant: int = 1, save_as: str = "skops") -> OwnModel:
    """Fit ``kind`` (logistic, pipeline, regressor) on demo data and save it as skops, joblib or an MLflow dir."""
    import joblib
    import skops.io as sio

    model, features, target = _own_estimator(kind, variant)
    train = credit_applications(n_rows=1_500, seed=1)
    sample = credit_applications(n_rows=400, seed=2)
    if kind == "logistic":  # a bare linear model takes no missing values
        train, sample = train.dropna(subset=features), sample.dropna(subset=features)
    model.fit(train[features], train[target])
    folder.mkdir(parents=True, exist_ok=True)
    if save_as == "skops":
        path = folder / f"{kind}-{variant}.skops"
        sio.dump(model, path)
    elif save_as == "joblib":
        path = folder / f"{kind}-{variant}.joblib"
        joblib.dump(model, path)
    else:
        path = write_mlflow_dir(folder / f"{kind}-{variant}-mlflow", model, train[features],
                                serialization=save_as.removeprefix("mlflow-") or "cloudpickle")
    return OwnModel(path, model, sample.reset_index(drop=True), target, features)


@pytest.fixture
def own_model(tmp_path: Path):
    """``own_model(kind, variant=1, save_as="skops"|"joblib"|"mlflow-cloudpickle"|"mlflow-pickle"|"mlflow-skops")``."""
    return lambda kind, variant=1, save_as="skops": make_own_model(tmp_path / "elsewhere", kind, variant, save_as)
