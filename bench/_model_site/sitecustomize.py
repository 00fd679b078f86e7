"""Installs the batched-lane model (bench/_batched_lane.py) in a dripd process that bench/bench_send.py
starts with this folder on PYTHONPATH and ``DRIPD_BENCH_BATCHED_LANE=<batch>[:<pipeline>]`` set.

A measurement for a decision (issue 14), never part of dripd: Python imports ``sitecustomize`` at
start-up from the first folder on its path that has one, so only the daemon started with this
folder on PYTHONPATH runs the model; every other process of the benchmark runs dripd as shipped.
``<batch>:<pipeline>:<ledger>`` names how it writes the ledger (bench/_batched_lane.py: per-row,
multi-row or none).
"""

import os
import sys

_spec = os.environ.get("DRIPD_BENCH_BATCHED_LANE")
if _spec:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/
    import _batched_lane

    _parts = _spec.split(":")
    _batched_lane.install(int(_parts[0]), int(_parts[1]) if len(_parts) > 1 else 2,
                          _parts[2] if len(_parts) > 2 else "per-row")
