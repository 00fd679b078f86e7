"""Shared parts of the benchmarks: arguments, tables, the bulk database builder, the null
transport (bench/_null.py), sinks and process probes. Not a benchmark itself (its name starts
with "_").

Every benchmark prints a Markdown table whose rows put dripd's figure beside a reference
measured in the same run, the ratio, and the exact command that reproduces it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterator, Sequence, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dripd.model import SequenceSettings  # noqa: E402
from dripd.steps import step_from_fields  # noqa: E402
from dripd.store.rows import settings_to_json, step_data  # noqa: E402
from tests.integration.servers import free_port, stop_process, wait_for_port  # noqa: E402,F401  (one copy of each)

BIN = Path(sys.executable).parent
DRIPD = BIN / "dripd"
SCHEMA = ROOT / "dripd" / "store" / "sqlite" / "migrations" / "0001_initial.sql"
R = TypeVar("R")


# -- arguments, tables ---------------------------------------------------------------------------


def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """--full (the issue's sizes), --smoke (tiny sizes for the smoke test), --keep (keep temp dirs)."""
    parser = argparse.ArgumentParser(description=description)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the issue's full sizes (slow)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: only checks the script runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles (raw collapsed stacks) into this directory")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def pick(args: argparse.Namespace, smoke: Any, default: Any, full: Any) -> Any:
    return smoke if args.smoke else full if args.full else default


def command() -> str:
    """The exact command line that reproduces this run, from the project root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(ROOT))
    except ValueError:
        script_text = str(script)
    python = Path(sys.executable)
    try:
        python_text = str(python.relative_to(ROOT))
    except ValueError:
        python_text = str(python)
    return shlex.join([python_text, script_text, *sys.argv[1:]])


@dataclass
class Table:
    title: str
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, what: str, ours: str, reference: str, ratio: str, note: str = "") -> None:
        self.rows.append((what, ours, reference, ratio, note))

    def print(self) -> None:
        print()
        print(f"### {self.title}")
        print()
        print("| measurement | dripd | reference (same run) | ratio | notes |")
        print("|---|---:|---:|---:|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")
        print()
        for note in self.notes:
            print(f"- {note}")
        print(f"- reproduce: `{command()}`")
        print(f"- machine: {machine_line()}")
        sys.stdout.flush()


def stock_asyncio_run(coro: Coroutine[Any, Any, R]) -> R:
    """``asyncio.run`` on the standard library's own event loop. Importing dripd imports
    trio-asyncio, whose policy turns every later ``asyncio.run`` into a trio-asyncio loop
    (``SyncTrioEventLoop``, ~3x the CPU per callback here): a reference client or load generator
    run that way is slowed, and so is every figure compared with it."""
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(coro)


def ratio(a: float, b: float, fmt: str = "{:.2f}x") -> str:
    return fmt.format(a / b) if b else "n/a"


def fnum(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


@contextlib.contextmanager
def workdir(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        if args.keep:
            print(f"(kept {path})", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- processes --------------------------------------------------------------------------------------


def rss_mb(pid: int | None = None) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB of a process, from /proc (VmRSS, VmHWM)."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


@contextlib.contextmanager
def postfix_sink(backlog: int = 1000) -> Iterator[int]:
    """Postfix's smtp-sink counting messages only (no dump to disk): the fastest honest SMTP peer."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    proc = subprocess.Popen([binary, "-u", "nobody", "-c", f"127.0.0.1:{port}", str(backlog)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop_process(proc)


class NotifySocket:
    """A NOTIFY_SOCKET datagram listener, as systemd provides: when did READY=1 arrive?"""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait_for(self, line: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> float:
        """Block until a datagram holds ``line``; the monotonic time it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"no {line!r} on NOTIFY_SOCKET within {timeout}s")
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"dripd exited with {proc.returncode} before {line!r}")
            self.sock.settimeout(min(remaining, 0.5))
            try:
                data = self.sock.recv(65536).decode()
            except socket.timeout:
                continue
            if line in data.split("\n"):
                return time.monotonic()

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """The real ``dripd`` process on a written config, READY detected through NOTIFY_SOCKET."""

    def __init__(self, root: Path, config: dict[str, Any], env: dict[str, str] | None = None,
                 profile: Path | None = None) -> None:
        import tomli_w

        self.profile = profile
        self.spy: subprocess.Popen[bytes] | None = None
        self.root = root
        self.config_path = root / "dripd.toml"
        self.config_path.write_text(tomli_w.dumps(config))
        self.socket = Path(config["daemon"]["socket"])
        self.socket.parent.mkdir(parents=True, exist_ok=True)  # dripd refuses a missing socket directory
        self.log_path = root / "dripd.log"
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.ready = 0.0

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait for READY=1: seconds from exec to READY."""
        notify = NotifySocket(self.root / "notify.sock")
        log = self.log_path.open("ab")
        try:
            self.started = time.monotonic()
            self.proc = subprocess.Popen([str(DRIPD), "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.root, env={**os.environ, **self.env,
                                                             "NOTIFY_SOCKET": str(notify.path)})
            self.ready = notify.wait_for("READY=1", timeout, self.proc)
            if self.profile is not None:
                self.profile.parent.mkdir(parents=True, exist_ok=True)
                self.spy = subprocess.Popen([str(BIN / "py-spy"), "record", "--threads", "--idle", "-r", "200",
                                             "-f", "raw", "-o", str(self.profile), "--pid", str(self.proc.pid)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except Exception:
            self.kill()
            raise RuntimeError(f"dripd did not become ready:\n{self.log()[-3000:]}") from None
        finally:
            log.close()
            notify.close()
        return self.ready - self.started

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system, every thread) the daemon process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def loop_thread_cpu_seconds(self) -> float:
        """CPU time the daemon's main thread (trio's event loop) has used so far."""
        fields = Path(f"/proc/{self.pid}/task/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client(self, timeout: float = 30.0) -> Any:
        import httpx

        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://dripd",
                            timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.spy is not None:
            try:
                self.spy.wait(30)  # py-spy writes its file once the process it follows exits
            except subprocess.TimeoutExpired:
                self.spy.kill()
            self.spy = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def daemon_section(root: Path, **extra: Any) -> dict[str, Any]:
    return {"state_dir": str(root / "var"), "socket": str(root / "run" / "dripd.sock"), "log_level": "warning",
            "shutdown_grace_seconds": 5, **extra}


def open_mailbox(mailbox_id: str, transport: str, table: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A mailbox whose caps do not limit a benchmark (the issue: "caps lifted")."""
    box: dict[str, Any] = {"id": mailbox_id, "address": f"{mailbox_id}@sender.example", "name": mailbox_id.title(),
                           "timezone": "UTC", "daily_cap": 10_000_000, "hourly_cap": 10_000_000, "burst": 100_000,
                           "transport": transport, **extra}
    if table is not None:
        box[transport] = table
    return box


# -- the null transport: bench/_null.py -----------------------------------------------------

from _null import NullConfig, NullPlugin, NullTransport  # noqa: E402,F401  (the scripts use c.NullPlugin)


# -- building a database as the store would have written it -----------------------------------------

HTML = """<p>Hi {{firstName|there}},</p>
<p>I noticed {{company}} is growing fast. Teams like yours usually hit the same wall with outbound
email: new mailboxes, cold lists and a sudden jump in volume that hurts deliverability.</p>
<p>Would a 15-minute call next week make sense? If the timing is wrong, just reply "later".</p>
<p>Best,<br>Sam Carter<br>Fareof</p>"""

THREE_STEPS = [
    {"type": "email", "subject": "{{firstName|Hi}}, a quick question about {{company}}", "body": HTML},
    {"type": "wait", "waitDays": 3},
    {"type": "email", "subject": "", "body": "<p>Following up on my note below, {{firstName|there}}.</p>"},
]
ONE_STEP = THREE_STEPS[:1]
FIRST = ["Alice", "Bob", "Zoë", "Mateo", "Priya", "Jürgen", "Wei", "Olivia", "Noah", ""]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella", "Müller & Söhne GmbH", "Stark Industries"]


def _statements(sql: str) -> list[str]:
    out, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    return out


def contact_email(i: int) -> str:
    return f"c{i}@ex{i % 97}.example.org"


def build_db(
    path: Path, *, mailboxes: list[str], sequences: int, enrollments: int,
    next_run_at: Callable[[int], float | None], now: float, steps: list[dict[str, Any]] = THREE_STEPS,
    sequence_status: str = "active",
) -> float:
    """A database holding ``enrollments`` active enrollments (as ``CatalogOps.enroll`` writes them:
    a contact, an active enrollment at cursor 0, an 'enrolled' event) over ``sequences``
    sequences spread round-robin over ``mailboxes``. Enrollment i is in sequence i % sequences
    and is due at ``next_run_at(i)``. Tables are filled before the schema's indexes are built
    (plain sqlite3 bulk inserts); the result is the same file the store would have. Seconds taken."""
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    statements = _statements(SCHEMA.read_text())
    tables = [s for s in statements if "CREATE INDEX" not in s.upper() and "CREATE UNIQUE INDEX" not in s.upper()]
    indexes = [s for s in statements if s not in tables]
    db.execute("BEGIN")
    for s in tables:
        db.execute(s)
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')")
    seq_mailbox = {}
    step_objects = [step_from_fields(s) for s in steps]
    for seq in range(1, sequences + 1):
        mailbox = mailboxes[(seq - 1) % len(mailboxes)]
        seq_mailbox[seq] = mailbox
        settings = SequenceSettings(f"bench-{seq}", mailbox)
        db.execute("INSERT INTO sequences (id, name, mailbox_id, status, settings, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)", (seq, settings.name, mailbox, sequence_status,
                                                     settings_to_json(settings), now, now))
        for ord_, step in enumerate(step_objects):
            db.execute("INSERT INTO steps (sequence_id, ord, type, data) VALUES (?, ?, ?, ?)",
                       (seq, ord_, step.type.value, step_data(step)))

    def contacts() -> Iterator[tuple[Any, ...]]:
        for i in range(enrollments):
            yield (i + 1, contact_email(i), FIRST[i % len(FIRST)], "", COMPANIES[i % len(COMPANIES)], "{}", now, now)

    db.executemany("INSERT INTO contacts (id, email, first_name, last_name, company, fields, created_at, updated_at)"
                   " VALUES (?,?,?,?,?,?,?,?)", contacts())

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(enrollments):
            seq = i % sequences + 1
            due = next_run_at(i)
            yield (i + 1, seq, i + 1, seq_mailbox[seq], now, due, due, now, now, now)

    db.executemany(
        "INSERT INTO enrollments (id, sequence_id, contact_id, mailbox_id, status, cursor_ord, anchor_at, due_at,"
        " next_run_at, merge_fields, enrolled_at, updated_at, last_event_at)"
        " VALUES (?, ?, ?, ?, 'active', 0, ?, ?, ?, '{}', ?, ?, ?)", rows())
    db.execute("INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, flagged, data)"
               " SELECT enrolled_at, 'enrolled', mailbox_id, sequence_id, id, contact_id, 0, '{}' FROM enrollments")
    db.execute("COMMIT")
    for s in indexes:
        db.execute(s)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return time.perf_counter() - started


def db_size_mb(path: Path) -> float:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total / 1e6


def outbox_count(path: Path, status: str = "sent") -> int:
    """Read-only count from another connection (WAL lets it run beside the daemon's writer)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COUNT(*) FROM outbox WHERE status = ?", (status,)).fetchone()[0])
    finally:
        db.close()


def epoch_now() -> float:
    return dt.datetime.now(dt.timezone.utc).timestamp()


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


# -- an in-process daemon (the same Daemon the dripd command runs, minus the API services) -----------


def inprocess_config(root: Path, mailboxes: list[dict[str, Any]], extra_plugins: tuple[object, ...] = (),
                     **daemon: Any) -> tuple[Any, Any]:
    from dripd.config import parse_config
    from dripd.plugins import Plugins

    plugins = Plugins(extra_plugins)
    data = {"daemon": daemon_section(root, **daemon), "mailboxes": mailboxes}
    return parse_config(data, plugins.config_sections(), plugins.transports), plugins


def run_child(script: Path, params: dict[str, Any], timeout: float = 3600, profile: Path | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (clean heap, its own RSS): the child prints one
    JSON line last. With ``profile``, py-spy records it (collapsed stacks, all threads)."""
    argv = [sys.executable, str(script), "--child", json.dumps(params)]
    if profile is not None:
        spy = BIN / "py-spy"
        argv = [str(spy), "record", "--threads", "--idle", "-r", "200", "-f", "raw", "-o", str(profile), "--", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(lines[-1])
