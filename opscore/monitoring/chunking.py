"""Chunks: the windows a monitor reports per, by time (edges or a fixed frequency) or by count.

Time chunks keep empty windows (no labels in a day is news too); count chunks are consecutive runs
of rows in time order, the last one possibly shorter. Chunks are contiguous in time, so their
edges can also count every prediction in each window (the labelled share's denominator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opscore.exceptions import BadInputError

MAX_CHUNKS = 1_000


@dataclass(frozen=True)
class Chunk:
    """Rows ``positions`` (into the frame) that fall in [start, end), epoch seconds."""

    index: int
    start: float
    end: float
    positions: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.positions.size)


@dataclass(frozen=True)
class Chunking:
    """How to cut rows into chunks: exactly one of window ``edges``, a ``frequency`` or a ``size``.

    ``frequency`` is a fixed length ("15min", "1h", "1D") or seconds; its windows align to whole
    multiples since the epoch, so daily windows start at midnight UTC. ``size`` is rows per chunk.
    """

    edges: tuple[float, ...] | None = None
    frequency: str | float | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("edges", "frequency", "size") if getattr(self, name) is not None]
        if len(given) != 1:
            raise BadInputError(f"chunk by exactly one of edges, frequency or size (got {', '.join(given) or 'none'})")
        if self.edges is not None:
            edges = np.asarray(self.edges, dtype=float)
            if edges.size < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
                raise BadInputError("window edges must be at least two strictly increasing times")
            if edges.size - 1 > MAX_CHUNKS:
                raise BadInputError(f"{edges.size - 1} windows are too many; ask for at most {MAX_CHUNKS}")
        if self.frequency is not None:
            self.seconds()
        if self.size is not None and (not isinstance(self.size, int | np.integer) or self.size < 1):
            raise BadInputError(f"chunk size must be a positive number of rows, not {self.size!r}")

    def seconds(self) -> float:
        """The window length of a frequency chunking, in seconds."""
        try:
            seconds = float(self.frequency) if isinstance(self.frequency, int | float) else \
                pd.Timedelta(str(self.frequency)).total_seconds()
        except ValueError as exc:
            raise BadInputError(f"window frequency {self.frequency!r} is not a fixed length like '1h' or '1D'") from exc
        if not np.isfinite(seconds) or seconds <= 0:
            raise BadInputError(f"window frequency {self.frequency!r} must be a positive length")
        return seconds

    @property
    def label(self) -> str:
        if self.size is not None:
            return f"chunks of {self.size} predictions"
        if self.frequency is not None:
            return f"windows of {self.frequency}"
        return f"{len(self.edges or ()) - 1} windows"

    def over(self, start: float | None, end: float) -> Chunking:
        """Frequency windows covering [start, end) even where no row falls; other chunkings unchanged."""
        if self.frequency is None or start is None:
            return self
        width = self.seconds()
        first, last = np.floor(start / width), np.ceil(end / width)
        if last - first > MAX_CHUNKS:
            raise BadInputError(f"{int(last - first)} windows of {self.frequency} are too many; "
                                f"pick a longer frequency (at most {MAX_CHUNKS} windows)")
        return Chunking(edges=tuple(np.arange(first, max(last, first + 1) + 1) * width))

    def split(self, at: np.ndarray | pd.Series) -> list[Chunk]:
        """Chunks over rows whose times are ``at`` (epoch seconds, any order)."""
        at = np.asarray(at, dtype=float)
        order = np.argsort(at, kind="stable")
        ordered = at[order]
        if self.size is not None:
            return self._by_count(order, ordered)
        if self.edges is not None:
            edges = np.asarray(self.edges, dtype=float)
        else:
            if ordered.size == 0:
                return []
            width = self.seconds()
            first, last = np.floor(ordered[0] / width), np.floor(ordered[-1] / width)
            if last - first + 1 > MAX_CHUNKS:
                raise BadInputError(f"{int(last - first + 1)} windows of {self.frequency} are too many; "
                                    f"pick a longer frequency (at most {MAX_CHUNKS} windows)")
            edges = np.arange(first, last + 2) * width
        cuts = np.searchsorted(ordered, edges, side="left")
        return [Chunk(i, float(edges[i]), float(edges[i + 1]), order[cuts[i]:cuts[i + 1]])
                for i in range(edges.size - 1)]

    def _by_count(self, order: np.ndarray, ordered: np.ndarray) -> list[Chunk]:
        size = int(self.size or 1)
        starts = list(range(0, ordered.size, size))
        if len(starts) > MAX_CHUNKS:
            raise BadInputError(f"{len(starts)} chunks of {size} predictions are too many; pick a larger size "
                                f"(at most {MAX_CHUNKS} chunks)")
        chunks = []
        for i, begin in enumerate(starts):
            stop = min(begin + size, ordered.size)
            end = ordered[stop] if stop < ordered.size else np.nextafter(ordered[-1], np.inf)
            chunks.append(Chunk(i, float(ordered[begin]), float(end), order[begin:stop]))
        return chunks


DAILY = Chunking(frequency="1D")


def chunk_edges(chunks: list[Chunk]) -> list[float]:
    """The contiguous window edges of ``chunks``: every start, then the last end."""
    return [c.start for c in chunks] + [chunks[-1].end] if chunks else []
