"""The result of a drift comparison: per-column verdicts and the dataset verdict.

``to_dict()`` is the ``opscore drift --json`` contract (DESIGN.md); a column may add ``reason``
(why its verdict was not a plain test result) and ``unseen_categories`` (current categories the
reference never had). ``to_df()`` is the same as a table. Plots are built elsewhere, on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict; ``threshold`` is the effective one, after any multiple-testing correction."""

    kind: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    missing_share_reference: float
    missing_share_current: float
    reason: str | None = None
    unseen_categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.kind,
            "test": self.test,
            "statistic": float(self.statistic),
            "p_value": None if self.p_value is None else float(self.p_value),
            "threshold": float(self.threshold),
            "drifted": bool(self.drifted),
            "missing_share_reference": float(self.missing_share_reference),
            "missing_share_current": float(self.missing_share_current),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.unseen_categories:
            out["unseen_categories"] = list(self.unseen_categories)
        return out


@dataclass(frozen=True)
class DriftReport:
    """Every compared column's verdict, in the input's column order."""

    columns: dict[str, ColumnDrift] = field(default_factory=dict)
    threshold_share: float = 0.5

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.drift_share >= self.threshold_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": float(self.drift_share),
            "threshold_share": float(self.threshold_share),
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    def to_df(self) -> pd.DataFrame:
        """One row per column, in input order: the contract fields, then ``reason`` and ``unseen_categories``."""
        rows = {name: column.to_dict() for name, column in self.columns.items()}
        table = pd.DataFrame.from_dict(rows, orient="index")
        for optional in ("reason", "unseen_categories"):
            if optional not in table:
                table[optional] = None
        table.index.name = "column"
        return table
