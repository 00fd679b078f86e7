"""Every benchmark script runs with tiny sizes and prints its table (figures are never asserted:
benchmarks are not pass/fail; this only keeps the scripts from rotting)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["bench_render", "bench_send", "bench_smtp_transport", "bench_scale", "bench_dispatch", "bench_lateness",
           "bench_reply", "bench_api", "bench_webhooks", "bench_inbox", "bench_variants", "bench_import",
           "bench_pg_driver", "bench_cluster"]


def _start(name: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / f"{name}.py"), "--smoke"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _problem(name: str, proc: subprocess.Popen[str]) -> str | None:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    if proc.returncode != 0 or "| measurement | dripd | reference (same run) | ratio |" not in out \
            or "reproduce: `" not in out:
        return f"{name} (exit {proc.returncode}):\n{out[-1500:]}\n{err[-3000:]}"
    return None


def test_each_benchmark_prints_its_table() -> None:
    # All at once: most of each script's time is waiting on servers and processes. A script that
    # fails is run once more on its own: seven benchmarks at once beside the rest of the suite on
    # two cores once pushed one past its internal waits. Its first failure is printed either way,
    # and a script that fails twice fails the test.
    procs = {name: _start(name) for name in SCRIPTS}
    first = {name: problem for name, proc in procs.items() if (problem := _problem(name, proc))}
    for name, problem in first.items():
        print(f"first run failed, running {name} again alone:\n{problem}")
    failures = [problem for name in first if (problem := _problem(name, _start(name)))]
    assert not failures, "\n\n".join(failures)
