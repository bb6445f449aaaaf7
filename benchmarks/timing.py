"""In-process, interleaved timing of two callables.

Both sides of a comparison run in the same process, alternating repetitions
(A B, B A, A B, ...), so drift in machine load, clock frequency or caches
falls on both alike. Each repetition times a loop of calls sized to last at
least ``min_time``; the per-call median and minimum over repetitions are
reported. Every timed callable returns only when its result is ready (the
runners synchronise devices and block on lazy results).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass

__all__ = ["Timing", "interleaved"]

MAX_LOOP = 100_000


@dataclass(frozen=True)
class Timing:
    """Seconds per call over the repetitions."""

    median: float
    min: float
    calls: int  # calls per repetition


def _loop_size(fn, min_time):
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(MAX_LOOP, math.ceil(min_time / max(once, 1e-9))))


def _time_loop(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(fn_a, fn_b, *, repeats: int, min_time: float) -> tuple[Timing, Timing]:
    """Time ``fn_a`` and ``fn_b`` (already warmed up) in alternating repetitions."""
    sides = [(fn_a, _loop_size(fn_a, min_time), []), (fn_b, _loop_size(fn_b, min_time), [])]
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # as timeit does: a collection would land on one side only
    try:
        for r in range(repeats):
            for fn, number, samples in (sides if r % 2 == 0 else sides[::-1]):
                samples.append(_time_loop(fn, number))
    finally:
        if enabled:
            gc.enable()
    return tuple(Timing(statistics.median(s), min(s), n) for _, n, s in sides)
