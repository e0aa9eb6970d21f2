"""Reading tabular files people hand us, and refusing bad training data with a reason.

Every refusal names the problem (which file, column or row); nothing here writes anything.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from opscore.exceptions import BadInputError, TooLargeError

MAX_CSV_BYTES = 500 * 1024 * 1024
MAX_CLASSES = 50


def read_csv_bytes(raw: bytes, name: str = "the file", max_bytes: int = MAX_CSV_BYTES) -> pd.DataFrame:
    """Parse CSV bytes, refusing binary data, non-UTF-8 text, an empty file or a ragged table."""
    if len(raw) > max_bytes:
        raise TooLargeError(f"{name} is {len(raw) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    if not raw.strip():
        raise BadInputError(f"{name} is empty")
    if b"\x00" in raw[:65536]:
        raise BadInputError(f"{name} is not a CSV file: it contains binary data")
    if raw.lstrip()[:1] in (b"{", b"["):
        raise BadInputError(f"{name} is not a CSV file: it looks like JSON")
    if raw.lstrip()[:5].lower() in (b"<?xml", b"<html", b"<!doc"):
        raise BadInputError(f"{name} is not a CSV file: it looks like XML/HTML")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{name} is not a UTF-8 text CSV (undecodable byte at offset {exc.start})") from exc
    try:
        frame = pd.read_csv(io.BytesIO(raw), low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise BadInputError(f"{name} has no columns") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise BadInputError(f"{name} is not a well-formed CSV: {str(exc).splitlines()[0]}") from exc
    if frame.empty:
        raise BadInputError(f"{name} has a header but no data rows")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed and len(unnamed) == len(frame.columns):
        raise BadInputError(f"{name} has no header row")
    duplicated = [c for c in frame.columns if "." in str(c) and str(c).rsplit(".", 1)[0] in frame.columns]
    if duplicated:
        raise BadInputError(f"{name} repeats column name(s): {', '.join(map(str, duplicated))}")
    return frame


def read_csv_path(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if not path.is_file():
        raise BadInputError(f"{path}: not a file")
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise TooLargeError(f"{path} is {size / 1e6:.1f} MB; the limit is {MAX_CSV_BYTES / 1e6:.0f} MB")
    return read_csv_bytes(path.read_bytes(), str(path))


def infer_task(target: pd.Series) -> str:
    """Classification for text, boolean or few-valued integer targets; regression otherwise."""
    values = target.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    integral = np.all(np.equal(np.mod(values.to_numpy(dtype=float), 1), 0))
    return "classification" if integral and values.nunique() <= 20 else "regression"


def check_training_frame(frame: pd.DataFrame, target: str, task: str | None) -> tuple[pd.DataFrame, pd.Series, str, list[str]]:
    """Split features from target and refuse data no model should be trained on.

    Returns (features, target, task, notes); notes say what was tolerated (dropped unlabelled rows).
    """
    if target not in frame.columns:
        raise BadInputError(f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns[:30]))}")
    notes: list[str] = []
    labelled = frame[frame[target].notna()]
    if len(labelled) < len(frame):
        notes.append(f"dropped {len(frame) - len(labelled)} row(s) with no {target!r} value")
    if len(labelled) < 20:
        raise BadInputError(f"only {len(labelled)} labelled row(s); training needs at least 20")
    y = labelled[target]
    x = labelled.drop(columns=[target])
    if x.shape[1] == 0:
        raise BadInputError("no feature columns besides the target")
    task = task or infer_task(y)
    if task not in {"classification", "regression"}:
        raise BadInputError(f"task must be classification or regression, not {task!r}")
    all_missing = [str(c) for c in x.columns if x[c].isna().all()]
    if all_missing:
        raise BadInputError(f"feature column(s) with no values at all: {', '.join(all_missing)}")
    for column in x.columns:
        if pd.api.types.is_numeric_dtype(x[column]) and not np.isfinite(x[column].dropna().to_numpy(dtype=float)).all():
            raise BadInputError(f"feature column {column!r} contains infinite values")
    if task == "classification":
        classes = y.nunique()
        if classes < 2:
            raise BadInputError(f"target {target!r} has a single class ({y.iloc[0]!r}); classification needs two or more")
        if classes > MAX_CLASSES:
            raise BadInputError(
                f"target {target!r} has {classes} classes; for a numeric target use --task regression"
            )
        smallest = y.value_counts().min()
        if smallest < 2:
            raise BadInputError(f"target {target!r} has a class with a single example; each class needs at least 2")
    else:
        if not pd.api.types.is_numeric_dtype(y):
            raise BadInputError(f"target {target!r} is not numeric; regression needs numbers")
        if y.nunique() < 2:
            raise BadInputError(f"target {target!r} is constant; there is nothing to learn")
    x = x.copy()
    for column in x.columns:
        if not pd.api.types.is_numeric_dtype(x[column]) or pd.api.types.is_bool_dtype(x[column]):
            x[column] = x[column].astype(object).where(x[column].notna(), np.nan).map(
                lambda v: v if isinstance(v, float) else str(v)
            )
    return x, y, task, notes


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the canonical data: column names and dtypes, then row hashes in file order."""
    digest = hashlib.sha256()
    canonical = frame[sorted(frame.columns, key=str)]
    for column in canonical.columns:
        digest.update(f"{column}:{canonical[column].dtype}\n".encode())
    digest.update(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes())
    return digest.hexdigest()
