"""Micro-benchmarks of several variants in one run: each round measures every variant once, in
turn, so whatever else the machine does falls on all of them alike; each variant's result is the
median of its rounds, reported against a baseline variant measured in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Iterable


async def interleaved(
    names: Iterable[str], rounds: int, measure: Callable[[str], Awaitable[float]]
) -> dict[str, float]:
    """{variant: median over `rounds` of `measure(variant)`}, the variants taken in turn."""
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in results:
            results[name].append(await measure(name))
    return {name: statistics.median(values) for name, values in results.items()}


def report(medians: dict[str, float], base: str, unit: str, digits: int) -> None:
    """A line per variant: its median and the difference from `base`'s."""
    width = max(len(name) for name in medians) + 2
    for name, value in medians.items():
        print(f"  {name:{width}} {value:8.{digits}f} {unit}  {value - medians[base]:+8.{digits}f} {unit} over {base}")
