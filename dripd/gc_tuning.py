"""The daemon process's cyclic garbage collector settings, set once before the event loop runs.

A send allocates a few hundred short-lived objects (rows, dataclasses, the built message, trio's
task bookkeeping); nearly all are freed by reference counting the moment they are dropped. With
CPython's default threshold (a young collection every 700 net allocations) the collector ran
about 60 times per 1,000 sends and was ~10 % of the event loop's CPU (bench/bench_dispatch.py's
null transport at 16 in flight: 0.030-0.033 ms of 0.30 ms per step, measured with
``gc.callbacks``). At 50,000 the objects that die anyway are gone before a collection looks at
them: two young collections per 5,000 sends, 0.004-0.005 ms per step. What it costs: each young
collection walks more (~11 ms each, measured the same way, against ~0.16 ms at 700), a pause the
sends' lateness and the API's latency absorb, and cyclic garbage waits longer to be freed (at
most 50,000 objects, a few megabytes).

``gc.freeze()`` moves everything alive at start-up (the modules, the web apps, the parsed
configuration) into the permanent generation, so a full collection never walks it again.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_collector"]

YOUNG_THRESHOLD = 50_000


def tune_collector() -> None:
    """Freeze what start-up allocated and collect young objects every ``YOUNG_THRESHOLD``
    allocations instead of 700 (the older generations keep CPython's ratios)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
