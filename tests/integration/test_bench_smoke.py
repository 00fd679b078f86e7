"""Every benchmark script runs with tiny sizes and prints its table (figures are never asserted:
benchmarks are not pass/fail; this only keeps the scripts from rotting)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["bench_render", "bench_send", "bench_scale", "bench_dispatch", "bench_lateness", "bench_reply", "bench_api"]


def test_each_benchmark_prints_its_table() -> None:
    # All at once: most of each script's time is waiting on servers and processes.
    started = time.monotonic()
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "bench" / f"{name}.py"), "--smoke"], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in SCRIPTS}
    failures = []
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode != 0 or "| measurement | dripd | reference (same run) | ratio |" not in out \
                or "reproduce: `" not in out:
            failures.append(f"{name} (exit {proc.returncode}):\n{out[-1500:]}\n{err[-3000:]}")
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 120
