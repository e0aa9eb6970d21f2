"""A real model made slow on purpose: a latency regression simulated inside the model, as a deployment meets it."""

from __future__ import annotations

import time
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin


class SlowModel(ClassifierMixin, BaseEstimator):
    """Answers exactly as ``inner`` does, after sleeping ``delay`` seconds per call."""

    def __init__(self, inner: Any = None, delay: float = 0.05) -> None:
        self.inner = inner
        self.delay = delay

    @property
    def classes_(self) -> Any:
        return self.inner.classes_

    @property
    def feature_names_in_(self) -> Any:
        return self.inner.feature_names_in_

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, x: Any, y: Any) -> SlowModel:
        self.inner.fit(x, y)
        return self

    def predict(self, x: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.predict(x)

    def predict_proba(self, x: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.predict_proba(x)
