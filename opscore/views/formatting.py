"""Times and durations as operators read them, the same in every table, caption and CLI listing."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def when(epoch: float | None, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """An epoch time as operators read it in tables: UTC, to the second unless ``fmt`` says otherwise."""
    if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime(fmt)


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable (45 s, 12 min, 3.5 h, 2.1 d)."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def text_table(rows: list[list[str]], header: list[str]) -> str:
    """Rows under a header, each column padded to its widest cell (CLI listings)."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(lines)
