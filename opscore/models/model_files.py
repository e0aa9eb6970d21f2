"""Reading a model trained elsewhere without running code nobody agreed to trust.

A skops file lists every type it will build before anything is built, so it is checked first:
types from scikit-learn, numpy and scipy are trusted, anything else is refused by name unless the
operator names it too. A joblib or pickle file can run any code the moment it is unpickled, so it
is refused *before it is opened* unless the operator says they trust its origin. An MLflow model
directory (sklearn flavor) is read from its ``MLmodel`` YAML without importing mlflow; its model
file follows the same two rules. The model store's own artifacts are read back through
:func:`load_artifact` with the same skops check.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opscore.exceptions import BadInputError

TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")
PICKLE_FORMATS = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
# Where each kind of model lives in a version folder; the file name says how to read it back.
STORE_NAMES = {"skops": "model.skops", "joblib": "model.joblib", "pickle": "model.pkl"}
MAX_MLMODEL_BYTES = 1_000_000
# MLflow column types opscore can serve: numbers are numeric features, strings categorical ones.
SIGNATURE_KINDS = {"double": "numeric", "float": "numeric", "long": "numeric", "integer": "numeric",
                   "string": "categorical"}


@dataclass(frozen=True)
class ModelFile:
    """A model read from outside, the exact bytes the model store keeps, and where it came from."""

    model: Any
    store_name: str
    blob: bytes
    source: dict[str, Any]
    signature: list[tuple[str, str]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def trusted_types(self) -> list[str]:
        return list(self.source.get("trusted_types", []))

    def provenance(self) -> str:
        """One line for the version notes and the ledger: what it was, and who trusted what."""
        fmt = self.source["format"]
        what = f"MLflow sklearn model, {fmt}" if self.source["kind"] == "mlflow" else f"{fmt} file"
        if self.source.get("trusted_pickle_by"):
            text = f"registered from a pickle ({what}), trusted by {self.source['trusted_pickle_by']}"
        else:
            text = f"registered from a {what}" if self.source["kind"] != "mlflow" else f"registered from an {what}"
        if self.trusted_types:
            text += f"; types trusted by {self.source['trusted_by']}: {', '.join(self.trusted_types)}"
        return text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _outside_trusted_packages(names: Iterable[str]) -> list[str]:
    return sorted({n for n in names if n.split(".", 1)[0] not in TRUSTED_PACKAGES})


def skops_types(blob: bytes, name: str = "the skops file") -> list[str]:
    """Every type a skops file would build beyond skops' own always-safe set (read without building any)."""
    import skops.io as sio

    try:
        return sio.get_untrusted_types(data=blob)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{name} is not a skops file: {_one_line(exc)}") from exc


def untrusted_skops_types(blob: bytes, trust: Sequence[str] = (), name: str = "the skops file") -> list[str]:
    """The types ``blob`` would build that are neither scikit-learn/numpy/scipy nor in ``trust``."""
    return [t for t in _outside_trusted_packages(skops_types(blob, name)) if t not in set(trust)]


def load_skops(blob: bytes, trust: Sequence[str] = (), name: str = "the skops file") -> Any:
    """Build the object in a skops file, refusing (by name) every type nobody trusted."""
    import skops.io as sio

    found = skops_types(blob, name)
    refused = [t for t in _outside_trusted_packages(found) if t not in set(trust)]
    if refused:
        raise BadInputError(
            f"{name} references type(s) outside scikit-learn, numpy and scipy: {', '.join(refused)}; "
            f"if you trust them, name each with --trust TYPE"
        )
    try:
        return sio.loads(blob, trusted=found)
    except Exception as exc:  # noqa: BLE001 - whatever the file does wrong, the answer is the same refusal
        raise BadInputError(f"{name} could not be loaded: {_one_line(exc)}") from exc


def dump_skops(model: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(model, compression=zipfile.ZIP_DEFLATED)


def load_pickle(blob: bytes, name: str = "the pickle") -> Any:
    """Unpickle (joblib reads plain pickles too). Callers decide first whether the bytes are trusted."""
    import joblib

    try:
        return joblib.load(io.BytesIO(blob))
    except Exception as exc:  # noqa: BLE001 - a foreign file can fail in any way; say how
        raise BadInputError(f"{name} could not be loaded: {_one_line(exc)}") from exc


def load_artifact(blob: bytes, store_name: str, trusted_types: Sequence[str] = ()) -> Any:
    """Read a model store artifact by its file name (skops checked against what was trusted at registration)."""
    if store_name == STORE_NAMES["skops"]:
        return load_skops(blob, trusted_types, store_name)
    if store_name in (STORE_NAMES["joblib"], STORE_NAMES["pickle"]):
        return load_pickle(blob, store_name)
    raise BadInputError(f"unknown artifact {store_name!r}; expected one of {', '.join(STORE_NAMES.values())}")


def _refuse_pickle(path: Path, what: str) -> BadInputError:
    return BadInputError(
        f"{path} is {what}: loading it can run any code it contains, so opscore does not open it; "
        f"if you trust where it came from pass --trust-pickle, or save the model with skops.io.dump and register the .skops file"
    )


def _read_skops(path: Path, trust: Sequence[str], actor: str, kind: str = "skops") -> tuple[Any, bytes, dict[str, Any]]:
    blob = path.read_bytes()
    model = load_skops(blob, trust, str(path))
    used = [t for t in _outside_trusted_packages(skops_types(blob)) if t in set(trust)]
    source: dict[str, Any] = {"kind": kind, "format": "skops", "path": str(path.resolve()), "sha256": _sha256(blob),
                              "trusted_types": used, "trusted_pickle_by": None}
    if used:
        source["trusted_by"] = actor
    return model, blob, source


def read_model_file(path: Path, *, trust: Sequence[str] = (), trust_pickle: bool = False,
                    actor: str = "") -> ModelFile:
    """Read a ``.skops``, ``.joblib``/``.pkl`` file or an MLflow model directory, under the trust rules above.

    ``actor`` is recorded as whoever trusted a pickle or extra types.
    """
    path = Path(path)
    if path.is_dir():
        return read_mlflow_model(path, trust=trust, trust_pickle=trust_pickle, actor=actor)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix == ".skops":
        model, blob, source = _read_skops(path, trust, actor)
        return ModelFile(model, STORE_NAMES["skops"], blob, source)
    if suffix in PICKLE_FORMATS:
        kind = PICKLE_FORMATS[suffix]
        if not trust_pickle:
            raise _refuse_pickle(path, f"a {kind} file")
        blob = path.read_bytes()
        model = load_pickle(blob, str(path))
        source = {"kind": kind, "format": kind, "path": str(path.resolve()), "sha256": _sha256(blob),
                  "trusted_types": [], "trusted_pickle_by": actor or "an unnamed operator"}
        return ModelFile(model, STORE_NAMES[kind], blob, source)
    raise BadInputError(
        f"{path}: unknown model file type {suffix or '(no suffix)'!r}; register a .skops file, a .joblib/.pkl file "
        f"(with --trust-pickle) or an MLflow model directory"
    )


def read_mlmodel(folder: Path) -> dict[str, Any]:
    """The parsed ``MLmodel`` of an MLflow model directory (plain YAML; no mlflow import)."""
    import yaml

    path = folder / "MLmodel"
    if not path.is_file():
        raise BadInputError(f"{folder} is a directory but not an MLflow model: it has no MLmodel file")
    if path.stat().st_size > MAX_MLMODEL_BYTES:
        raise BadInputError(f"{path} is larger than {MAX_MLMODEL_BYTES // 1000} kB; not an MLmodel file")
    try:
        document = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path} is not valid YAML: {_one_line(exc)}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("flavors"), dict):
        raise BadInputError(f"{path} has no 'flavors' mapping; not an MLflow model")
    return document


def mlflow_signature(mlmodel: dict[str, Any], where: str = "MLmodel") -> list[tuple[str, str]] | None:
    """``signature.inputs`` as (column, MLflow type) pairs, or None when the model has no column signature."""
    signature = mlmodel.get("signature") or {}
    raw = signature.get("inputs") if isinstance(signature, dict) else None
    if not raw:
        return None
    try:
        inputs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{where}: signature.inputs is not valid JSON: {_one_line(exc)}") from exc
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise BadInputError(f"{where}: signature.inputs must be a list of {{name, type}} objects")
    if not all("name" in i for i in inputs):
        return None  # a tensor signature names no columns; the model's own feature names are used instead
    unsupported = [f"{i['name']} ({i.get('type')})" for i in inputs if i.get("type") not in SIGNATURE_KINDS]
    if unsupported:
        raise BadInputError(
            f"{where}: signature input(s) of a type opscore cannot serve: {', '.join(unsupported)}; "
            f"supported types are {', '.join(SIGNATURE_KINDS)}"
        )
    return [(str(i["name"]), str(i["type"])) for i in inputs]


def _mlflow_provenance(mlmodel: dict[str, Any], flavor: dict[str, Any]) -> dict[str, Any]:
    run_id, artifact_path, model_id = mlmodel.get("run_id"), mlmodel.get("artifact_path"), mlmodel.get("model_id")
    uri = f"runs:/{run_id}/{artifact_path}" if run_id and artifact_path else (f"models:/{model_id}" if model_id else None)
    out = {"run_id": run_id, "artifact_path": artifact_path, "model_uri": uri, "model_id": model_id,
           "model_uuid": mlmodel.get("model_uuid"), "utc_time_created": mlmodel.get("utc_time_created"),
           "mlflow_version": mlmodel.get("mlflow_version"), "sklearn_version": flavor.get("sklearn_version"),
           "serialization_format": flavor.get("serialization_format")}
    return {k: (str(v) if v is not None else None) for k, v in out.items()}


def read_mlflow_model(folder: Path, *, trust: Sequence[str] = (), trust_pickle: bool = False,
                      actor: str = "") -> ModelFile:
    """An MLflow model directory with the ``sklearn`` flavor; its signature and run are kept."""
    mlmodel = read_mlmodel(folder)
    flavor = mlmodel["flavors"].get("sklearn")
    if not isinstance(flavor, dict):
        names = ", ".join(map(str, mlmodel["flavors"])) or "none"
        raise BadInputError(f"{folder}: the MLflow model has no sklearn flavor (flavors: {names}); opscore serves scikit-learn models")
    file_name = str(flavor.get("pickled_model") or "model.pkl")
    model_path = (folder / file_name).resolve()
    if not model_path.is_relative_to(folder.resolve()):
        raise BadInputError(f"{folder}/MLmodel points outside its directory ({file_name!r}); refusing it")
    signature = mlflow_signature(mlmodel, f"{folder}/MLmodel")
    serialization = str(flavor.get("serialization_format") or "cloudpickle")
    mlflow = _mlflow_provenance(mlmodel, flavor)
    if not model_path.is_file():
        raise BadInputError(f"{folder}: the sklearn flavor names {file_name!r}, which is not in the directory")
    if serialization == "skops":
        model, blob, source = _read_skops(model_path, trust, actor, kind="mlflow")
        store_name = STORE_NAMES["skops"]
    elif serialization in {"pickle", "cloudpickle"}:
        if not trust_pickle:
            raise _refuse_pickle(folder, f"an MLflow sklearn model saved as a {serialization} ({file_name})")
        blob = model_path.read_bytes()
        model = load_pickle(blob, f"{folder}/{file_name}")
        source = {"kind": "mlflow", "format": serialization, "path": str(model_path), "sha256": _sha256(blob),
                  "trusted_types": [], "trusted_pickle_by": actor or "an unnamed operator"}
        store_name = STORE_NAMES["pickle"]
    else:
        raise BadInputError(f"{folder}/MLmodel: unknown serialization_format {serialization!r}")
    source["mlflow"] = mlflow
    notes = []
    if signature is None:
        notes.append("the MLflow model has no column signature; the model's own feature names are used")
    return ModelFile(model, store_name, blob, source, signature, notes)
