"""The latency histogram behind every percentile: fine log-spaced buckets, and the arithmetic on them.

The telemetry writer counts each latency into one of these buckets per minute, version and source;
queries sum those counts and read percentiles back from them with an error bounded by one bucket (4 %).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

# Bucket i holds latencies in [edges[i], edges[i+1]); 4 % wide, 0.05 ms to 120 s. Anything faster
# than the first edge counts in bucket 0 and anything slower than the last in the last bucket.
_GROWTH = 1.04
_LOW_MS, _HIGH_MS = 0.05, 120_000.0
LATENCY_BUCKETS_MS: np.ndarray = _LOW_MS * _GROWTH ** np.arange(
    math.ceil(math.log(_HIGH_MS / _LOW_MS) / math.log(_GROWTH)) + 1
)
N_BUCKETS = len(LATENCY_BUCKETS_MS) - 1
EDGES = LATENCY_BUCKETS_MS.tolist()
QUANTILES = (0.5, 0.95, 0.99)

def bucket_index(latency_ms: float) -> int:
    """The histogram bucket a latency falls in."""
    return min(max(bisect_right(EDGES, latency_ms) - 1, 0), N_BUCKETS - 1)


def _order_statistic(counts: np.ndarray, cum: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Estimate the k-th smallest value (0-based) per row: the t-th of the c values in a bucket sits
    (t + 0.5) / c of the way across it, so the estimate is within that bucket's width of the truth."""
    rows = np.arange(counts.shape[0])
    bucket = (cum > k[:, None]).argmax(axis=1)
    in_bucket = counts[rows, bucket]
    before = cum[rows, bucket] - in_bucket
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.clip((k - before + 0.5) / in_bucket, 0.0, 1.0)
    low = LATENCY_BUCKETS_MS[bucket]
    return low + fraction * (LATENCY_BUCKETS_MS[bucket + 1] - low)


def quantiles_from_counts(counts: np.ndarray, qs: Iterable[float] = QUANTILES) -> np.ndarray:
    """Percentiles (ms) per row of a groups × buckets count matrix.

    Interpolates between estimated order statistics exactly as numpy's default (linear) percentile
    does between the true ones, so the error stays within the width of the buckets involved (4 %).
    """
    counts = np.asarray(counts, dtype=float)
    cum = counts.cumsum(axis=1)
    total = cum[:, -1] if counts.shape[0] else np.zeros(0)
    qs = tuple(qs)
    out = np.full((counts.shape[0], len(qs)), np.nan)
    for j, q in enumerate(qs):
        position = q * np.maximum(total - 1, 0)
        below = np.floor(position)
        above = np.minimum(below + 1, np.maximum(total - 1, 0))
        low, high = _order_statistic(counts, cum, below), _order_statistic(counts, cum, above)
        out[:, j] = np.where(total > 0, low + (position - below) * (high - low), np.nan)
    return out


_DIGITS_ONLY = bytes(c if 48 <= c <= 57 else 32 for c in range(256))


def aggregate_rollups(rows: list[Any], group_of: list[int], n_groups: int) -> dict[str, np.ndarray]:
    """Sum requests, failed requests, latency sums, histograms and rows of rollup rows into ``n_groups`` groups."""
    groups = np.asarray(group_of, dtype=np.int64)
    count = np.bincount(groups, weights=[r.count for r in rows], minlength=n_groups)
    errors = np.bincount(groups, weights=[r.errors for r in rows], minlength=n_groups)
    latency_sum = np.bincount(groups, weights=[r.latency_sum_ms for r in rows], minlength=n_groups)
    row_count = np.bincount(groups, weights=[r.row_count for r in rows], minlength=n_groups)
    # A histogram is {"bucket": count, ...} holding non-negative integers only: blanking every other
    # character leaves "bucket count bucket count ...", which numpy parses in one C pass. No Python
    # step per bucket keeps a day of minutes cheap however much traffic filled them.
    texts = [r.histogram for r in rows]
    joined = " ".join(texts).encode().translate(_DIGITS_ONLY)
    numbers = np.fromstring(joined, dtype=np.int64, sep=" ").reshape(-1, 2)
    entries = np.fromiter((t.count(":") for t in texts), np.int64, len(texts))
    flat = np.repeat(groups, entries) * N_BUCKETS + numbers[:, 0]
    histograms = np.bincount(flat, weights=numbers[:, 1], minlength=n_groups * N_BUCKETS)
    return {"count": count, "errors": errors, "latency_sum": latency_sum, "rows": row_count,
            "histograms": histograms.reshape(n_groups, N_BUCKETS)}


def summary_frame(agg: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per group: requests (``count``), failed requests, error rate, request-latency mean and
    percentiles, and the rows those requests carried."""
    count = agg["count"]
    quantiles = quantiles_from_counts(agg["histograms"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "count": count.astype(np.int64),
            "errors": agg["errors"].astype(np.int64),
            "error_rate": np.where(count > 0, agg["errors"] / count, np.nan),
            "mean_ms": np.where(count > 0, agg["latency_sum"] / count, np.nan),
            "p50_ms": quantiles[:, 0],
            "p95_ms": quantiles[:, 1],
            "p99_ms": quantiles[:, 2],
            "rows": agg["rows"].astype(np.int64),
        })
