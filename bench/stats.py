"""Percentiles and the progress line, shared by the load generators."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of `values`; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, mean and max of durations in seconds, in milliseconds."""
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "p50": round(percentile(seconds, 50) * 1000, 1),
        "p95": round(percentile(seconds, 95) * 1000, 1),
        "p99": round(percentile(seconds, 99) * 1000, 1),
        "mean": round(sum(seconds) / len(seconds) * 1000, 1),
        "max": round(max(seconds) * 1000, 1),
    }


def progress(line: str) -> None:
    """Overwrite the current terminal line (plain lines when not a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{line}")
    else:
        sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def progress_done(line: str) -> None:
    progress(line)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
        sys.stderr.flush()
