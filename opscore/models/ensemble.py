"""The model: one scikit-learn Pipeline (preprocessing + a soft-voting ensemble) and its metrics.

Gradient boosting, a random forest and a linear model disagree in different places, so their
averaged probabilities are better calibrated than any one of them; the ColumnTransformer handles
numeric and categorical columns and missing values inside the artifact, so serving needs no
separate preprocessing code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from opscore.data.features import FeatureSchema


def ensemble_params(task: str, seed: int, trees: int = 100, rounds: int = 200) -> dict[str, Any]:
    """The hyper-parameters recorded with each version."""
    return {
        "task": task,
        "seed": seed,
        "members": ["hist_gradient_boosting", "random_forest", "logistic_regression" if task == "classification" else "ridge"],
        "voting": "soft" if task == "classification" else "mean",
        "hist_gradient_boosting": {"max_iter": rounds, "learning_rate": 0.1},
        "random_forest": {"n_estimators": trees, "min_samples_leaf": 2},
        "linear": {"C": 1.0} if task == "classification" else {"alpha": 1.0},
    }


def build_pipeline(schema: FeatureSchema, seed: int, trees: int = 100, rounds: int = 200) -> Pipeline:
    numeric = [f.name for f in schema.features if f.kind == "numeric"]
    categorical = [f.name for f in schema.features if f.kind == "categorical"]
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    if schema.task == "classification":
        model: Any = VotingClassifier(
            [
                ("hist_gradient_boosting", HistGradientBoostingClassifier(max_iter=rounds, random_state=seed)),
                ("random_forest", RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)),
                ("logistic_regression", LogisticRegression(C=1.0, max_iter=2_000)),
            ],
            voting="soft",
        )
    else:
        model = VotingRegressor(
            [
                ("hist_gradient_boosting", HistGradientBoostingRegressor(max_iter=rounds, random_state=seed)),
                ("random_forest", RandomForestRegressor(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)),
                ("ridge", Ridge(alpha=1.0)),
            ]
        )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def holdout_metrics(pipeline: Pipeline, features: pd.DataFrame, target: pd.Series, task: str) -> dict[str, float]:
    """Accuracy, F1, ROC-AUC and log loss (classification) or MAE, RMSE and R² (regression).

    A classifier without ``predict_proba`` (a registered model may have none) gets accuracy and F1 only.
    """
    if task == "regression":
        predicted = pipeline.predict(features)
        return {
            "mae": float(mean_absolute_error(target, predicted)),
            "rmse": float(root_mean_squared_error(target, predicted)),
            "r2": float(r2_score(target, predicted)),
        }
    classes = pipeline.classes_
    binary = len(classes) == 2
    probabilities = pipeline.predict_proba(features) if hasattr(pipeline, "predict_proba") else None
    predicted = pipeline.predict(features) if probabilities is None else classes[np.argmax(probabilities, axis=1)]
    metrics = {
        "accuracy": float(accuracy_score(target, predicted)),
        "f1": float(f1_score(target, predicted, average="binary" if binary else "macro", pos_label=classes[-1] if binary else 1)),
    }
    if probabilities is None:
        return metrics
    metrics["log_loss"] = float(log_loss(target, probabilities, labels=classes))
    try:
        if binary:
            metrics["roc_auc"] = float(roc_auc_score(target == classes[1], probabilities[:, 1]))
        else:
            metrics["roc_auc"] = float(roc_auc_score(target, probabilities, multi_class="ovr", labels=classes))
    except ValueError:
        pass  # the holdout lacks a class; ROC-AUC is undefined, the other metrics stand
    return metrics
