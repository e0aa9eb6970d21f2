"""Scoring a file or one record by hand: a validation report per column and row, then predictions.

Both go through :func:`opscore.serving.predictor.score_frame`, the one path for scoring a table, so rows are
validated and logged exactly as ``opscore predict`` does; this module adds what a person needs to
fix a file: per column, what was expected and how many cells missed it; per row, what was wrong.

Scoring writes rows into the prediction log and its rollups, so it is an operator action, checked
here, and every row it logs carries the source ``dashboard``, never that of production traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.data.datasets import read_csv_bytes
from opscore.data.features import FeatureSchema, FeatureSpec
from opscore.exceptions import NotFoundError, OpscoreError
from opscore.models import artifacts, registry
from opscore.serving import predictor
from opscore.serving.predictor import ScoredFrame
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store

# Rows scored by hand are logged under their own source, apart from API traffic.
SOURCE = "dashboard"
REPORT_COLUMNS = ["column", "expected", "status", "empty cells", "wrong type", "outside training range"]
PROBLEM_COLUMNS = ["severity", "line", "column", "problem"]


def _expected(spec: FeatureSpec) -> str:
    if spec.kind == "numeric":
        if spec.minimum is None or spec.maximum is None:
            return "number"
        return f"number, trained on {spec.minimum:g} to {spec.maximum:g}"
    return f"category, {len(spec.categories or [])} seen in training"


def column_report(schema: FeatureSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per expected or unexpected column: what the model expects and how many cells miss it."""
    records = []
    for spec in schema.features:
        if spec.name not in frame.columns:
            records.append([spec.name, _expected(spec), "missing", None, None, None])
            continue
        column = frame[spec.name]
        present = column.notna() & (column.astype(str).str.strip() != "")
        if spec.kind == "numeric":
            numbers = pd.to_numeric(column.where(present), errors="coerce")
            wrong = int((present & (numbers.isna() | ~np.isfinite(numbers.fillna(0)))).sum())
            outside = 0
            if spec.minimum is not None and spec.maximum is not None:
                outside = int(((numbers < spec.minimum) | (numbers > spec.maximum)).sum())
        else:
            wrong = 0
            known = set(spec.categories or [])
            text = column.where(present).map(_category_text)
            outside = int((present & ~text.isin(known)).sum()) if known else 0
        status = "wrong type" if wrong else "outside training range" if outside else "ok"
        records.append([spec.name, _expected(spec), status, int((~present).sum()), wrong, outside])
    for name in frame.columns:
        if name not in schema.names:
            records.append([str(name), "not used by the model", "unexpected (ignored)", None, None, None])
    counts = {name: "Int64" for name in REPORT_COLUMNS[3:]}
    return pd.DataFrame(records, columns=REPORT_COLUMNS).astype(counts)


def _category_text(value: Any) -> Any:
    # The validator reads 3.0 in a category column as "3"; count it the same way here.
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return value if value is None or isinstance(value, str) else str(value)


@dataclass
class ScoringReport:
    """What happened to an uploaded file or a typed record: the checks, and the scores if any."""

    name: str
    rows: int
    columns: pd.DataFrame
    version_id: str
    scored: ScoredFrame | None = None
    refused: str | None = None
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))

    @property
    def predictions(self) -> pd.DataFrame:
        return self.scored.frame if self.scored is not None else pd.DataFrame()

    def first_row(self) -> tuple[Any, dict[str, float], str]:
        """The first row's prediction, probability per class and error text (the one-record form shows these)."""
        row = self.predictions.iloc[0]
        probabilities = {c.removeprefix("probability_"): float(row[c]) for c in self.predictions.columns
                         if c.startswith("probability_")}
        return row["prediction"], probabilities, row["error"]

    def csv_bytes(self) -> bytes:
        """The input rows with prediction, probabilities, version and error, as a CSV download."""
        return self.predictions.to_csv(index=False).encode()


def _problems(scored: ScoredFrame) -> pd.DataFrame:
    # "line" is where a person finds the row in the file or a spreadsheet: the header is line 1.
    records = [["error", p.row + 2 if p.row is not None else None, p.column, p.message] for p in scored.errors]
    records += [["warning", p.row + 2 if p.row is not None else None, p.column, p.message] for p in scored.warnings]
    return pd.DataFrame(records, columns=PROBLEM_COLUMNS)


def score_table(settings: Settings, actor: Actor, frame: pd.DataFrame, name: str,
                telemetry: TelemetryWriter | None) -> ScoringReport:
    """Check ``frame`` against production's schema and score it; nothing is scored or logged when
    a required column is missing, or when ``actor`` is not an operator."""
    actor.require_operator("scoring by hand (it writes to the prediction log)")
    loaded = predictor.production_version(settings)
    report = ScoringReport(name, len(frame), column_report(loaded.schema, frame), loaded.version_id)
    missing = report.columns.loc[report.columns["status"] == "missing", "column"].tolist()
    if missing:
        report.refused = (f"{name} lacks column(s) {', '.join(map(repr, missing))} that {loaded.version_id} needs; "
                          f"nothing was scored")
        return report
    report.scored = predictor.score_frame(settings, frame, source=SOURCE, telemetry=telemetry, loaded=loaded)
    report.problems = _problems(report.scored)
    if telemetry is not None:
        telemetry.flush(timeout=10)
    return report


def score_upload(settings: Settings, actor: Actor, name: str, raw: bytes,
                 telemetry: TelemetryWriter | None) -> ScoringReport:
    """Read an uploaded CSV (refusing empty, binary, malformed or oversized files) and score it."""
    actor.require_operator("scoring a file (it writes to the prediction log)")
    frame = read_csv_bytes(raw, name, max_bytes=int(settings.dashboard_upload_mb * 1_000_000))
    return score_table(settings, actor, frame, name, telemetry)


@dataclass(frozen=True)
class FormField:
    """One input of the single-record form, generated from the schema."""

    spec: FeatureSpec
    default: Any


@dataclass(frozen=True)
class RecordForm:
    version_id: str
    fields: list[FormField]


def record_form(settings: Settings) -> RecordForm:
    """The production version's inputs with sensible defaults (its stored input example)."""
    store = open_store(settings)
    version_id = registry.alias_target(store, "production")
    if version_id is None:
        raise NotFoundError(predictor.NO_PRODUCTION)
    info = registry.get_version(store, version_id)
    try:
        example = artifacts.read_document(settings.model_store_path, version_id, "input_example.json")[0]
    except (OpscoreError, IndexError, KeyError, TypeError, ValueError):
        example = {}
    fields = []
    for spec in info.feature_schema.features:
        value = example.get(spec.name)
        if spec.kind == "numeric" and not isinstance(value, (int, float)):
            value = (spec.minimum + spec.maximum) / 2 if spec.minimum is not None and spec.maximum is not None else 0.0
        if spec.kind == "categorical" and value not in (spec.categories or []):
            value = (spec.categories or [""])[0]
        fields.append(FormField(spec, value))
    return RecordForm(version_id, fields)


def score_record(settings: Settings, actor: Actor, values: dict[str, Any],
                 telemetry: TelemetryWriter | None) -> ScoringReport:
    """Score one typed record like an uploaded row (validated, logged with source ``dashboard``)."""
    return score_table(settings, actor, pd.DataFrame([values]), "the record", telemetry)
