"""Process-wide tuning shared by `serve`, `worker`, the demo and the benchmarks.

A pull or a full-sync page allocates tens of thousands of short-lived objects
(parsed JSON, models). With CPython 3.11's default thresholds the cyclic
collector then runs full collections over every live object again and again,
which measured here tripled the cost of mapping 10,000 contacts. Freezing what
start-up allocated and collecting the young generation less often keeps the
collector, but stops it dominating; reference counting frees almost all of
this garbage anyway.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
