"""The two shapes a drift test compares: raw numeric samples, or counts over shared bins.

``Samples`` holds the finite values of one numeric column, sorted once, so that every test on the
column reuses the same sort. ``Counts`` holds how many reference and current values fall in each of
the same bins: numeric bins over shared edges, or categories. Counts are what a live path can keep
without raw rows (per-bin counts rolled up at ingestion), so every test accepts them; the exact
tests (KS, Wasserstein) state how far their binned form can be from the raw answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Reference and current counts over the same bins.

    Numeric bins have ``edges`` (k + 1 increasing values for k bins); bin i holds
    ``edges[i] < x <= edges[i + 1]``, the first bin also everything at or below ``edges[1]`` and the
    last everything above ``edges[-2]``, so values outside the edges land in the outer bins.
    Categories have ``labels`` (k names) instead of edges. ``reference_std`` is the reference's
    standard deviation when known exactly (the normed Wasserstein distance divides by it).
    """

    reference: np.ndarray
    current: np.ndarray
    edges: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    reference_std: float | None = None

    def __post_init__(self) -> None:
        if self.reference.shape != self.current.shape or self.reference.ndim != 1:
            raise ValueError("reference and current counts must be 1-d and over the same bins")
        if self.edges is not None and self.edges.size != self.reference.size + 1:
            raise ValueError(f"{self.reference.size} bins need {self.reference.size + 1} edges, got {self.edges.size}")
        if self.labels is not None and len(self.labels) != self.reference.size:
            raise ValueError(f"{self.reference.size} bins need as many labels, got {len(self.labels)}")

    @property
    def n_reference(self) -> int:
        return int(self.reference.sum())

    @property
    def n_current(self) -> int:
        return int(self.current.sum())

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's counts as proportions of its total."""
        return self.reference / self.reference.sum(), self.current / self.current.sum()


@dataclass(frozen=True)
class Samples:
    """The finite values of one numeric column on each side, each sorted ascending."""

    reference: np.ndarray
    current: np.ndarray

    @classmethod
    def from_values(cls, reference: np.ndarray, current: np.ndarray) -> Samples:
        """Keep the finite values of each side and sort them (once, for every test on the column)."""
        return cls(_finite_sorted(reference), _finite_sorted(current))

    def quantile_edges(self, bins: int) -> np.ndarray:
        """Edges of ``bins`` reference-quantile bins, widened to take in both samples' extremes."""
        inner = np.unique(np.quantile(self.reference, np.linspace(0, 1, bins + 1)[1:-1]))
        low = min(self.reference[0], self.current[0])
        high = max(self.reference[-1], self.current[-1])
        return np.concatenate(([low], inner[(inner > low) & (inner < high)], [high]))

    def binned(self, bins: int) -> Counts:
        """Counts over ``bins`` reference-quantile bins (fewer when the reference has ties)."""
        edges = self.quantile_edges(bins)
        return Counts(
            reference=bin_counts(self.reference, edges, presorted=True),
            current=bin_counts(self.current, edges, presorted=True),
            edges=edges,
            reference_std=float(np.std(self.reference)),
        )


def bin_counts(values: np.ndarray, edges: np.ndarray, presorted: bool = False) -> np.ndarray:
    """How many ``values`` fall in each bin of ``edges`` (right-closed, outer bins open-ended)."""
    inner = edges[1:-1]
    if presorted:
        # Sorted values: the bin boundaries are where each inner edge would be inserted.
        cuts = np.searchsorted(values, inner, side="right")
        return np.diff(np.concatenate(([0], cuts, [values.size])))
    return np.bincount(np.searchsorted(inner, values, side="left"), minlength=inner.size + 1)


def _finite_sorted(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    finite.sort()
    return finite
