"""The feature schema of a version and validation of incoming rows against it.

One validator serves the HTTP API (records), CSV scoring and the dashboard (frames), so every
shell reports the same problems in the same words: which row, which column, what was expected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opscore.exceptions import BadInputError

MAX_CATEGORIES = 200


@dataclass(frozen=True)
class FeatureSpec:
    """One input column as training saw it."""

    name: str
    kind: str  # "numeric" | "categorical"
    dtype: str
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    missing_share: float = 0.0


@dataclass(frozen=True)
class FeatureSchema:
    """Names, kinds, categories and observed ranges of a version's inputs."""

    features: list[FeatureSpec]
    target: str
    task: str
    classes: list[Any] | None = None

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def spec(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSchema:
        return cls(
            features=[FeatureSpec(**f) for f in raw["features"]],
            target=raw["target"],
            task=raw["task"],
            classes=raw.get("classes"),
        )


def infer_schema(features: pd.DataFrame, target: str, task: str, classes: list[Any] | None) -> FeatureSchema:
    """Describe the training features: numeric columns get ranges, the rest categories."""
    specs = []
    for name in features.columns:
        column = features[name]
        missing = float(column.isna().mean())
        if is_numeric(column):
            values = column.dropna().astype(float)
            specs.append(
                FeatureSpec(name, "numeric", str(column.dtype), None, float(values.min()), float(values.max()), missing)
            )
        else:
            counts = column.dropna().astype(str).value_counts()
            specs.append(
                FeatureSpec(name, "categorical", "str", sorted(counts.index[:MAX_CATEGORIES].tolist()), None, None, missing)
            )
    return FeatureSchema(specs, target, task, classes)


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) with one cell, row or column."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class ValidatedRows:
    """Rows ready for the model, plus what was wrong with the others and what is worth a warning."""

    frame: pd.DataFrame
    valid_rows: list[int]
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    @property
    def error_rows(self) -> set[int]:
        return {p.row for p in self.errors if p.row is not None}


def _numeric_cell(value: Any) -> tuple[float, str | None]:
    if value is None:
        return math.nan, None
    if isinstance(value, bool):
        return math.nan, f"expected a number, got a boolean ({value})"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if math.isnan(number):
            return math.nan, None
        if math.isinf(number):
            return math.nan, "expected a finite number, got infinity"
        return number, None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped == "":
            return math.nan, None
        try:
            number = float(stripped)
        except ValueError:
            return math.nan, f"expected a number, got the text {value[:40]!r}"
        if not math.isfinite(number):
            return math.nan, f"expected a finite number, got {value[:40]!r}"
        return number, None
    return math.nan, f"expected a number, got {type(value).__name__}"


def _categorical_cell(value: Any) -> tuple[Any, str | None]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, (bool, int, np.integer)):
        return str(value), None
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return str(int(value)) if float(value).is_integer() else str(value), None
    return np.nan, f"expected a category (text), got {type(value).__name__}"


def as_category(value: Any) -> Any:
    """A cell as the text a categorical column holds once validated (1 and 1.0 both become "1"); NaN if missing."""
    return _categorical_cell(value)[0]


def validate_records(schema: FeatureSchema, records: list[Any], first_row: int = 0) -> ValidatedRows:
    """Validate JSON-like records; each problem names its row (0-based from ``first_row``) and column."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    extra: set[str] = set()
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    valid_rows: list[int] = []
    for offset, record in enumerate(records):
        row = first_row + offset
        if not isinstance(record, dict):
            errors.append(Problem(row, None, f"expected an object of column: value, got {type(record).__name__}"))
            continue
        row_errors: list[Problem] = []
        cells: dict[str, Any] = {}
        for spec in schema.features:
            if spec.name not in record:
                row_errors.append(Problem(row, spec.name, "missing column"))
                continue
            convert = _numeric_cell if spec.kind == "numeric" else _categorical_cell
            value, message = convert(record[spec.name])
            if message:
                row_errors.append(Problem(row, spec.name, message))
            cells[spec.name] = value
        extra.update(str(k) for k in record if k not in columns)
        if row_errors:
            errors.extend(row_errors)
            continue
        valid_rows.append(row)
        for name, value in cells.items():
            columns[name].append(value)
    frame = _typed_frame(schema, columns)
    frame.index = valid_rows
    warnings.extend(_range_warnings(schema, frame))
    extras = sorted(extra)
    if extras:
        warnings.append(Problem(None, None, f"extra column(s) ignored by the model: {', '.join(extras)}"))
    return ValidatedRows(frame, valid_rows, errors, warnings, extras)


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, missing cells as None (what the API receives and the log keeps)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def validate_frame(schema: FeatureSchema, frame: pd.DataFrame, first_row: int = 0) -> ValidatedRows:
    """Validate a table (CSV upload, batch file): missing columns fail every row, cells are checked."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise BadInputError(
            f"missing column(s) {', '.join(repr(m) for m in missing)}; expected {', '.join(schema.names)}"
        )
    return validate_records(schema, frame_to_records(frame), first_row)


def _typed_frame(schema: FeatureSchema, columns: dict[str, list[Any]]) -> pd.DataFrame:
    data = {}
    for spec in schema.features:
        values = columns[spec.name]
        if spec.kind == "numeric":
            data[spec.name] = np.asarray(values, dtype=float)
        else:
            data[spec.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=schema.names)


def _range_warnings(schema: FeatureSchema, frame: pd.DataFrame) -> list[Problem]:
    out: list[Problem] = []
    if frame.empty:
        return out
    for spec in schema.features:
        column = frame[spec.name]
        if spec.kind == "numeric" and spec.minimum is not None and spec.maximum is not None:
            values = column.to_numpy(dtype=float)
            outside = (values < spec.minimum) | (values > spec.maximum)
            for row in frame.index[outside][:20]:
                value = frame.at[row, spec.name]
                out.append(
                    Problem(int(row), spec.name, f"{value:g} is outside the training range [{spec.minimum:g}, {spec.maximum:g}]")
                )
        elif spec.kind == "categorical" and spec.categories is not None:
            known = set(spec.categories)
            unseen = column.notna() & ~column.isin(known)
            for row in frame.index[unseen.to_numpy()][:20]:
                out.append(Problem(int(row), spec.name, f"category {frame.at[row, spec.name]!r} was not seen in training"))
    return out


def schema_differences(old: FeatureSchema, new: FeatureSchema) -> list[str]:
    """Human-readable differences; an empty list means ``new`` can serve ``old``'s callers."""
    out = []
    if old.task != new.task:
        out.append(f"task changed from {old.task} to {new.task}")
    old_names, new_names = set(old.names), set(new.names)
    for name in sorted(new_names - old_names):
        out.append(f"new required column {name!r}")
    for name in sorted(old_names - new_names):
        out.append(f"column {name!r} no longer used")
    for name in sorted(old_names & new_names):
        a, b = old.spec(name), new.spec(name)
        if a.kind != b.kind:
            out.append(f"column {name!r} changed from {a.kind} to {b.kind}")
    return out


def incompatibilities(serving: FeatureSchema, candidate: FeatureSchema) -> list[str]:
    """Differences that would break callers of ``serving`` if ``candidate`` replaced it."""
    return [d for d in schema_differences(serving, candidate) if "no longer used" not in d]
