"""Bring your own model: register a scikit-learn model trained elsewhere as a version.

The model arrives as a file or an MLflow directory (``model_files`` decides whether it may be
opened at all) with a labelled sample it did not train on. The sample gives the version what a
trained one has: feature schema, holdout metrics, reference profile, input example, fingerprint.
Every check runs before anything is written, so a model that does not fit its data leaves no
version folder and no registry row; then the same steps as training store and register it.
Retraining a registered version refits a clone of it (:func:`refit_estimator`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.data.datasets import check_training_frame, fingerprint, infer_task
from opscore.data.features import FeatureSchema, as_category, incompatibilities, infer_schema, validate_frame
from opscore.data.profile import reference_profile
from opscore.exceptions import BadInputError, PreflightError
from opscore.models import artifacts, model_files, registry
from opscore.models.ensemble import holdout_metrics
from opscore.models.model_files import SIGNATURE_KINDS, ModelFile
from opscore.models.monitor_reference import build_monitor_reference
from opscore.models.registry import VersionInfo
from opscore.models.training import (
    Estimator,
    claim_version_id,
    give_alias,
    input_example,
    positive_scores,
    write_version_files,
)
from opscore.store import Store

REGISTERED = "registered"
REFIT = "refit"


@dataclass(frozen=True)
class RegistrationOutcome:
    version: VersionInfo
    notes: list[str]
    promoted: bool


@dataclass(frozen=True)
class SampleCheck:
    """What the labelled sample says about the model: its inputs, its scores, its metrics."""

    features: pd.DataFrame  # typed exactly as serving types a request
    labels: pd.Series
    task: str
    schema: FeatureSchema
    metrics: dict[str, float]
    scores: np.ndarray | None
    notes: list[str]


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:400]


def _class_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _estimator_kind(model: Any) -> str | None:
    from sklearn.base import is_classifier, is_regressor

    try:
        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    except Exception:  # noqa: BLE001 - an object sklearn cannot tag is simply of unknown kind
        return None
    return None


def _expected_columns(model: Any, loaded: ModelFile, frame: pd.DataFrame, target: str) -> tuple[list[str], list[str]]:
    """The columns the model takes, in its order: signature, else ``feature_names_in_``, else the data's."""
    notes: list[str] = []
    names_in = getattr(model, "feature_names_in_", None)
    names_in = [str(n) for n in names_in] if names_in is not None else None
    signed = [name for name, _ in loaded.signature] if loaded.signature else None
    if signed and names_in and set(signed) != set(names_in):
        raise BadInputError(
            f"the MLflow signature ({', '.join(signed)}) and the model's feature_names_in_ "
            f"({', '.join(names_in)}) disagree; opscore cannot tell which columns the model takes"
        )
    expected = names_in or signed
    if expected is None:
        expected = [str(c) for c in frame.columns if c != target]
        fitted_on = getattr(model, "n_features_in_", None)
        if fitted_on is not None and fitted_on != len(expected):
            raise BadInputError(
                f"the model was fitted on {fitted_on} unnamed feature(s) but the data has {len(expected)} besides "
                f"{target!r}; fit it on a pandas DataFrame so it records its column names"
            )
        notes.append(f"the model records no feature names; columns are passed in the data's order: {', '.join(expected)}")
    if target in expected:
        raise BadInputError(f"the target {target!r} is one of the model's input columns")
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise BadInputError(
            f"the data lacks column(s) the model expects: {', '.join(map(repr, missing))} "
            f"(the model takes {', '.join(expected)})"
        )
    ignored = [str(c) for c in frame.columns if c not in expected and c != target]
    if ignored:
        notes.append(f"column(s) the model does not use are ignored: {', '.join(ignored)}")
    return expected, notes


def _task(model: Any, task: str | None, labels: pd.Series) -> tuple[str, list[str]]:
    kind = _estimator_kind(model)
    if task is not None:
        if task not in {"classification", "regression"}:
            raise BadInputError(f"task must be classification or regression, not {task!r}")
        if kind is not None and kind != task:
            what = "a classifier" if kind == "classification" else "a regressor"
            raise BadInputError(
                f"the model ({type(model).__name__}) is {what}; it cannot be registered for {task} "
                f"(use --task {kind})"
            )
        return task, []
    if kind is not None:
        return kind, []
    guessed = infer_task(labels)
    return guessed, [f"cannot tell whether {type(model).__name__} is a classifier or a regressor; "
                     f"took {guessed} from the target (pass --task to say)"]


def _apply_signature(features: pd.DataFrame, signature: list[tuple[str, str]] | None) -> pd.DataFrame:
    """Give each column the kind the MLflow signature declares (numbers stay numbers, strings text)."""
    if not signature:
        return features
    features = features.copy()
    for name, kind in signature:
        column = features[name]
        if SIGNATURE_KINDS[kind] == "categorical":
            features[name] = column.astype(object).map(as_category)
        elif not pd.api.types.is_numeric_dtype(column):
            converted = pd.to_numeric(column, errors="coerce")
            bad = column[converted.isna() & column.notna()]
            if len(bad):
                raise BadInputError(
                    f"column {name!r}: the MLflow signature says {kind} but the data has {str(bad.iloc[0])[:40]!r}"
                )
            features[name] = converted
    return features


def check_sample(model: Any, loaded: ModelFile, frame: pd.DataFrame, target: str, task: str | None) -> SampleCheck:
    """Everything a registration needs from the sample, refusing a model that does not fit it (nothing written)."""
    if not callable(getattr(model, "predict", None)):
        raise BadInputError(f"the model ({type(model).__name__}) has no predict method; opscore serves fitted "
                            f"scikit-learn estimators and Pipelines")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise BadInputError(f"the model ({type(model).__name__}) is not fitted: {exc}") from exc
    except TypeError:
        pass  # not a scikit-learn estimator; predicting the sample below decides
    if target not in frame.columns:
        raise BadInputError(f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns[:30]))}")
    expected, notes = _expected_columns(model, loaded, frame, target)
    task, task_notes = _task(model, task, frame[target].dropna())
    features, labels, task, data_notes = check_training_frame(frame[[*expected, target]], target, task)
    features = _apply_signature(features, loaded.signature)
    classes = _classes(model) if task == "classification" else None
    schema = infer_schema(features, target, task, classes)
    served = validate_frame(schema, features)
    if served.errors:
        raise BadInputError(f"the data does not pass opscore's own validation: {'; '.join(map(str, served.errors[:3]))}")
    x = served.frame.set_axis(labels.index)
    notes += task_notes + data_notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "X has feature names" and the like: notes say it instead
        notes += _check_predictions(model, x, labels, task, classes)
        try:
            metrics = holdout_metrics(model, x, labels, task)
            scores = positive_scores(model, x, task)
        except Exception as exc:  # noqa: BLE001 - the model is foreign; any failure is a refusal with its reason
            raise BadInputError(f"the model could not be evaluated on the data: {_one_line(exc)}") from exc
    return SampleCheck(x, labels, task, schema, metrics, scores, notes)


def _classes(model: Any) -> list[Any]:
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise BadInputError(f"the model ({type(model).__name__}) has no classes_; a classifier lists its classes")
    return np.asarray(classes).tolist()


def _check_predictions(model: Any, x: pd.DataFrame, labels: pd.Series, task: str, classes: list[Any] | None) -> list[str]:
    try:
        predicted = np.asarray(model.predict(x))
    except Exception as exc:  # noqa: BLE001
        raise BadInputError(f"the model's predict failed on the data: {_one_line(exc)}") from exc
    if predicted.shape != (len(x),):
        raise BadInputError(
            f"the model's predict returned shape {predicted.shape} for {len(x)} rows; opscore serves one prediction per row"
        )
    if task == "regression":
        try:
            values = predicted.astype(float)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"the model's predict returned non-numeric values ({predicted[:3].tolist()}); "
                                f"a regressor predicts numbers") from exc
        if not np.isfinite(values).all():
            raise BadInputError("the model's predict returned NaN or infinite values on the data")
        return []
    assert classes is not None
    unknown = sorted({str(v) for v in labels.unique() if v not in classes})
    if unknown:
        raise BadInputError(
            f"the data's label(s) {', '.join(unknown[:10])} are not among the model's classes {classes[:10]}; "
            f"is {labels.name!r} the target the model was trained for?"
        )
    if not hasattr(model, "predict_proba"):
        return [f"{type(model).__name__} has no predict_proba: /predict answers probabilities null, "
                f"and log loss and ROC-AUC are not computed"]
    try:
        probabilities = np.asarray(model.predict_proba(x))
    except Exception as exc:  # noqa: BLE001
        raise BadInputError(f"the model's predict_proba failed on the data: {_one_line(exc)}") from exc
    if probabilities.shape != (len(x), len(classes)):
        raise BadInputError(f"the model's predict_proba returned shape {probabilities.shape}; "
                            f"expected ({len(x)}, {len(classes)}), one column per class")
    return []


def _json_params(model: Any) -> dict[str, Any]:
    """The estimator's own parameters, JSON-safe (anything else as a short repr)."""
    try:
        raw = model.get_params(deep=False)
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator; nothing to record
        return {}
    safe = (str, int, float, bool, type(None))
    return {str(k): v if isinstance(v, safe) else repr(v)[:200] for k, v in raw.items()}


def _refuse_unpromotable(store: Store, schema: FeatureSchema) -> None:
    production = registry.alias_target(store, "production")
    if production is None:
        return
    problems = incompatibilities(registry.get_version(store, production).feature_schema, schema)
    if problems:
        raise PreflightError(
            f"this model cannot stand in for production {production!r} (as production or as the candidate): "
            f"{'; '.join(problems)}; production's callers do not send what it needs"
        )


def register_model(
    settings: Settings,
    version_id: str,
    model_path: Path,
    frame: pd.DataFrame,
    target: str,
    *,
    actor: Actor,
    task: str | None = None,
    trust: tuple[str, ...] | list[str] = (),
    trust_pickle: bool = False,
    created_by: str = "cli",
    notes: str = "",
    then: str = "promote",
) -> RegistrationOutcome:
    """Register the model at ``model_path`` (a .skops/.joblib/.pkl file or an MLflow directory) as ``version_id``.

    ``frame`` is a labelled sample the model did not train on; ``then`` is ``"promote"``, ``"candidate"``
    or ``"none"`` (the first version of an empty registry takes production whatever it says).
    """
    if then not in {"promote", "candidate", "none"}:
        raise BadInputError(f"then must be promote, candidate or none, not {then!r}")
    with claim_version_id(settings, version_id, actor, "registering a model") as (store, claim):
        loaded = model_files.read_model_file(Path(model_path), trust=trust, trust_pickle=trust_pickle, actor=str(actor))
        sample = check_sample(loaded.model, loaded, frame, target, task)
        if then != "none":  # the pre-flight check of either alias move would refuse it after writing
            _refuse_unpromotable(store, sample.schema)
        provenance = loaded.provenance()
        info = VersionInfo(
            version_id=version_id,
            created_at=time.time(),
            task=sample.task,
            target=target,
            params={"origin": REGISTERED, "task": sample.task, "estimator": _class_name(loaded.model),
                    "estimator_params": _json_params(loaded.model), "source": loaded.source},
            metrics=sample.metrics,
            fingerprint=fingerprint(frame),
            feature_schema=sample.schema,
            artifact_sha256="",
            parent_version=None,
            created_by=created_by,
            notes="; ".join(filter(None, [notes, provenance])),
            training_rows=int(len(sample.features)),
            train_seconds=0.0,
        )
        # No training data comes with the model: the sample's first half fits the drift reference, the
        # second half sets its bounds and calibrates the probabilities.
        half = len(sample.features) // 2
        monitor_reference = build_monitor_reference(sample.schema, sample.features.iloc[:half], sample.features.iloc[half:],
                                                    sample.labels.iloc[half:], loaded.model, settings.seed)
        info = write_version_files(
            settings, info, loaded.model,
            profile=reference_profile(sample.features, sample.schema, sample.scores),
            monitor_reference=monitor_reference,
            example=input_example(sample.features), frame=frame,
            metadata={"source": loaded.source, "metrics_from": "the labelled sample given at registration"},
            artifact_name=loaded.store_name, blob=loaded.blob,
        )
        registry.insert_version(store, info, claim)
    reason = f"{provenance} ({notes})" if notes else provenance
    promoted = give_alias(settings, store, version_id, actor, then, reason,
                          first_reason=f"first version in an empty registry; {provenance}")
    return RegistrationOutcome(registry.get_version(store, version_id), loaded.notes + sample.notes, promoted)


def refit_estimator(settings: Settings, info: VersionInfo) -> Estimator | None:
    """What retraining ``info`` fits: an unfitted clone of a registered model, or None for the ensemble."""
    if info.params.get("origin") not in {REGISTERED, REFIT}:
        return None
    from sklearn.base import clone

    model = registry.load_version_model(settings, info)
    try:
        unfitted = clone(model)
    except Exception as exc:  # noqa: BLE001 - clone refuses objects that are not scikit-learn estimators
        raise BadInputError(
            f"{info.version_id} is a registered model that cannot be cloned ({_one_line(exc)}), so it cannot be "
            f"retrained here; train it where it was built and register the new version"
        ) from exc
    stored = artifacts.artifact_path(settings.model_store_path, info.version_id).name
    # A model that came without pickles stays without them: a refit of a skops version is stored as skops.
    artifact_name = stored if stored == model_files.STORE_NAMES["skops"] else artifacts.ARTIFACT
    source = info.params.get("source", {})
    params = {"origin": REFIT, "task": info.task, "estimator": _class_name(unfitted),
              "estimator_params": _json_params(unfitted),
              "source": {"kind": REFIT, "refit_of": info.version_id, "trusted_types": source.get("trusted_types", []),
                         "registered_from": source.get("registered_from", source.get("kind"))}}
    return Estimator(unfitted, params, artifact_name)
