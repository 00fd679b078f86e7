"""The daemon's collector settings (dripd/gc_tuning.py), checked in a fresh interpreter so the
test process's own collector is left as it was."""

from __future__ import annotations

import json
import subprocess
import sys

from dripd.gc_tuning import YOUNG_THRESHOLD

_PROBE = """
import gc, json, weakref
defaults = gc.get_threshold()
from dripd.gc_tuning import tune_collector
tune_collector()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: only the collector can free it
alive = weakref.ref(a)
del a, b
freed = gc.collect() > 0 and alive() is None
print(json.dumps({"defaults": defaults, "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "cycle_freed": freed}))
"""


def test_the_young_threshold_is_raised_start_up_is_frozen_and_cycles_are_still_collected() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout)
    assert probe["threshold"] == [YOUNG_THRESHOLD, probe["defaults"][1], probe["defaults"][2]]
    assert probe["frozen"] > 1000  # the modules imported before it are in the permanent generation
    assert probe["cycle_freed"] is True


def test_the_dripd_entry_point_tunes_the_collector_before_the_event_loop() -> None:
    # The process entry is what systemd runs: the setting must be made there, not only in benches.
    import inspect

    from dripd import cli

    source = inspect.getsource(cli.main)
    assert source.index("tune_collector()") < source.index("trio.run(")
