"""Percentiles and a one-line report."""

from __future__ import annotations

import statistics


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def summary(values: list[float]) -> str:
    return (f"p50 {ms(pct(values, 50))}, p95 {ms(pct(values, 95))}, mean {ms(statistics.fmean(values))}"
            f" (n={len(values)})")
