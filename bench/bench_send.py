"""Send throughput: dripd as a user runs it against a plain aiosmtplib client, same sink, same run.

The headline is what a new user does (issue 14): a mailbox with the SMTP transport and
``connections = C`` (nothing else about parallelism), caps lifted; a draft sequence of one email
step made with ``dripctl``, N contacts enrolled with ``dripctl enroll --csv``, then
``dripctl sequences start``, timed from the start call to the N-th message Postfix's smtp-sink
accepted (its ``-c`` counter); every message is then checked durably recorded 'sent' and the sink
must have counted exactly N (no duplicate). In the same run, two references over the same number
of connections to the same sink: a plain aiosmtplib script (the stock asyncio loop, in a process of its
own with no dripd imported: bench/_plain_smtp.py) pushing the same N
messages rendered beforehand with dripd.render (the limit), and a naive script that builds each
message with the stdlib's email package and sends it with smtplib (one thread per connection).
The other rows: the daemon on a database built beforehand (timed from READY=1 to N rows 'sent'),
at concurrency following the connections and at 4x, and the plain client driven from trio. And
where the headline's limit lies: the least a sender with dripd's ledger pays in one interpreter
(bench/_bare_sender.py, once per round), the engine alone with a null transport and the SMTP
transport alone (each in fresh interpreters, alternated), and what one interpreter allows the two
together. And what a batched send path could buy: the headline's configuration and flow, once per
round for each way the model writes the ledger, with the lanes of that one daemon replaced by a
model of a batched lane (bench/_batched_lane.py, installed by bench/_model_site/sitecustomize.py).

    .venv/bin/python bench/bench_send.py [--full | --smoke] [--connections C] [--concurrency W]
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from dripd.parallelism import HANDED_PER_CONNECTION  # noqa: E402

MAILBOX = "sales"
# The batched-lane model (bench/_batched_lane.py) in the headline's configuration: batches of 32,
# two in flight, installed in that daemon only (bench/_model_site/sitecustomize.py). Of the sizes
# tried in the headline on 2026-12-05 (16, 32 and 64, two to four in flight) it came closest to
# the plain client. Bounds for issue 14's decision, not dripd's path, each with the ledger written
# its own way: row by row by the store's own operations, a statement per table for the whole
# batch, and not at all (nothing durable: what the ledger's writes cost, never a design).
MODEL_BATCH = 32
MODEL_LEDGERS = {
    "per-row": "the store's own claim and record operations, row by row, one operation each per batch",
    "multi-row": "the same rows written by the store's own multi-row forms, one statement per table per batch",
    "none": "claims made up in memory and results not recorded: nothing durable, never a design",
}


def model_env(ledger: str) -> dict[str, str]:
    """The daemon's environment additions for the model: its sitecustomize first on the path."""
    site = str(Path(__file__).resolve().parent / "_model_site")
    return {"PYTHONPATH": os.pathsep.join(filter(None, (site, os.environ.get("PYTHONPATH")))),
            "DRIPD_BENCH_BATCHED_LANE": f"{MODEL_BATCH}:2:{ledger}"}


def messages(n: int) -> list[tuple[str, bytes]]:
    """The N messages dripd would send (same template, contacts and envelope shape), pre-rendered."""
    from dripd import render
    from dripd.model import Contact

    step = c.ONE_STEP[0]
    tpl = render.compile_template(step["subject"], step["body"], None)
    out = []
    now = c.epoch_now()
    for i in range(n):
        contact = Contact(i + 1, c.contact_email(i), c.FIRST[i % len(c.FIRST)], "", c.COMPANIES[i % len(c.COMPANIES)], {})
        envelope = render.Envelope(
            from_address=f"{MAILBOX}@sender.example", from_name="Sales", to_address=contact.email,
            to_name=contact.first_name, message_id=render.make_message_id("sender.example", f"{i}.1.0011223344556677"),
            date=now, list_unsubscribe=(f"mailto:unsubscribe@sender.example?subject={i}",), one_click=False)
        out.append((contact.email, render.build_message(envelope, tpl.render(contact.merge_fields()))))
    return out


def plain_client(port: int, connections: int, items_file: Path) -> tuple[float, float]:
    """The limit: a plain aiosmtplib script (asyncio, ``sendmail``, no dripd) pushing the
    pre-rendered messages over ``connections`` connections, in a process of its own so that its
    asyncio is the stock loop (bench/_plain_smtp.py says why). Returns msg/s and CPU ms/message."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "_plain_smtp.py"), str(port),
                          str(connections), str(items_file)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the plain client failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loop"] != "SyncTrioEventLoop", result
    return float(result["rate"]), float(result["cpu_ms"])


def bridged_client(port: int, connections: int, items: list[tuple[str, bytes]]) -> float:
    """The same client driven from trio: one trio_asyncio.aio_as_trio crossing per message, as
    dripd's SMTP transport makes. Shows what the bridge alone costs (not a target)."""
    import aiosmtplib
    import trio
    import trio_asyncio

    async def main() -> float:
        async with trio_asyncio.open_loop():
            queue = list(reversed(items))
            sent = 0

            async def connect() -> aiosmtplib.SMTP:
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
                await smtp.connect()
                return smtp

            async def worker() -> None:
                nonlocal sent
                smtp = await trio_asyncio.aio_as_trio(connect)()
                while queue:
                    to, data = queue.pop()
                    await trio_asyncio.aio_as_trio(smtp.sendmail)(f"{MAILBOX}@sender.example", [to], data)
                    sent += 1
                await trio_asyncio.aio_as_trio(smtp.quit)()

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    nursery.start_soon(worker)
            elapsed = time.perf_counter() - started
            assert sent == len(items)
            return len(items) / elapsed

    return trio.run(main)


def bare_sender(root: Path, port: int, connections: int, n: int) -> tuple[float, float]:
    """The least a sender with dripd's ledger pays (bench/_bare_sender.py): the plain client plus
    the reads, durable claims, renders and recorded results, no engine. Its own database of N
    enrollments, as the headline's. Returns msg/s and CPU ms/message."""
    now = c.epoch_now()
    path = root / "bare.sqlite3"
    c.build_db(path, mailboxes=[MAILBOX], sequences=1, enrollments=n, next_run_at=lambda i: now - 60, now=now - 60,
               steps=c.ONE_STEP)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "_bare_sender.py"), str(port),
                          str(connections), str(path), str(HANDED_PER_CONNECTION * connections)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the bare sender failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["sent"] == result["recorded"] == n:
        raise RuntimeError(f"the bare sender sent {result['sent']} and recorded {result['recorded']} of {n}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return float(result["rate"]), float(result["cpu_ms"])


def naive_client(port: int, connections: int, n: int) -> float:
    """What a plain script does: build each message with the stdlib (EmailMessage, text and HTML
    parts) and send it with smtplib, one thread per connection."""
    import smtplib
    from email.message import EmailMessage
    from email.utils import formataddr, formatdate, make_msgid

    step = c.ONE_STEP[0]
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(n):
        todo.put(i)
    sent = [0] * connections

    def fill(template: str, first: str, company: str) -> str:
        text = re.sub(r"\{\{firstName\|([^}]*)\}\}", lambda m: first or m.group(1), template)
        return text.replace("{{company}}", company)

    def worker(k: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                break
            first, company = c.FIRST[i % len(c.FIRST)], c.COMPANIES[i % len(c.COMPANIES)]
            msg = EmailMessage()
            msg["From"] = formataddr(("Sales", f"{MAILBOX}@sender.example"))
            msg["To"] = formataddr((first, c.contact_email(i)))
            msg["Subject"] = fill(step["subject"], first, company)
            msg["Date"] = formatdate()
            msg["Message-ID"] = make_msgid(domain="sender.example")
            html = fill(step["body"], first, company)
            msg.set_content(re.sub(r"<[^>]+>", "", html))
            msg.add_alternative(html, subtype="html")
            smtp.send_message(msg)
            sent[k] += 1
        smtp.quit()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert sum(sent) == n
    return n / elapsed


class CountedSink:
    """Postfix's smtp-sink with its ``-c`` counter read as it goes: when did it accept message k?"""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port
        self.accepted = 0
        self._waiters: list[tuple[int, threading.Event]] = []
        self.reached: dict[int, float] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        pending = b""
        while chunk := self.proc.stdout.read1(65536):  # type: ignore[attr-defined]
            at = time.monotonic()
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for line in lines:
                m = re.search(rb"mesg=(\d+)", line)
                if m:
                    with self._lock:
                        self.accepted = int(m.group(1))
                        for target, event in self._waiters:
                            if self.accepted >= target and target not in self.reached:
                                self.reached[target] = at
                                event.set()

    def wait_for(self, target: int, timeout: float) -> float | None:
        """Monotonic time the sink's count reached ``target`` (None: not within ``timeout``)."""
        event = threading.Event()
        with self._lock:
            if self.accepted >= target:
                return self.reached.get(target, time.monotonic())
            self._waiters.append((target, event))
        return self.reached[target] if event.wait(timeout) else None


@contextlib.contextmanager
def counted_sink() -> Iterator[CountedSink]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = c.free_port()
    proc = subprocess.Popen([binary, "-u", "nobody", "-c", f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        c.wait_for_port(port, proc)
        yield CountedSink(proc, port)
    finally:
        c.stop_process(proc)


def dripctl(daemon: c.Daemon, *args: str) -> str:
    result = subprocess.run([str(c.BIN / "dripctl"), "-s", str(daemon.socket), *args], capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"dripctl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


def dripd_as_a_user(root: Path, sink: CountedSink, n: int, connections: int, profile: Path | None = None,
                    env: dict[str, str] | None = None, recorded_check: bool = True,
                    ) -> tuple[float, int, int, float, dict[str, float], tuple[float, float]]:
    """The issue's user: `connections` only, a draft sequence, ``dripctl enroll --csv``, ``start``.
    Returns msg/s from the start call to the sink's N-th acceptance, rows recorded 'sent', how
    many messages the sink accepted in all (N: no duplicate), the daemon's CPU ms per message, its
    send places' seconds by state, and how busy its event loop's thread and its other threads were
    (CPU seconds per second), all over the same span. ``env``: added to the daemon's environment
    (``model_env(...)`` runs the batched-lane model in it); ``recorded_check=False`` for a model that
    records nothing (the count is then 0)."""
    root.mkdir(parents=True, exist_ok=True)
    table = {"host": "127.0.0.1", "port": sink.port, "security": "none", "connections": connections,
             "timeout_seconds": 30}
    daemon = c.Daemon(root, {"daemon": c.daemon_section(root), "mailboxes": [c.open_mailbox(MAILBOX, "smtp", table)]},
                      env=env, profile=profile)
    csv_path = root / "contacts.csv"
    with csv_path.open("w") as f:
        f.write("email,firstName,company\n")
        for i in range(n):
            f.write(f"{c.contact_email(i)},{c.FIRST[i % len(c.FIRST)]},\"{c.COMPANIES[i % len(c.COMPANIES)]}\"\n")
    step = c.ONE_STEP[0]
    db_path = root / "var" / "dripd.sqlite3"
    base = sink.accepted
    try:
        daemon.start()
        created = json.loads(dripctl(daemon, "sequences", "create", "Bench", "--mailbox", MAILBOX, "--timezone", "UTC",
                                     "--window", "0-24", "--no-track-opens", "--no-track-clicks", "--json"))
        dripctl(daemon, "steps", "add", "Bench", "--type", "email", "--subject", step["subject"], "--body", step["body"])
        dripctl(daemon, "enroll", "Bench", "--csv", str(csv_path))
        with daemon.client(timeout=600) as client:
            # The request ``dripctl sequences start`` makes, sent from here so that the CLI's own
            # start-up (imports, ~0.3-0.7 s on a busy machine) is not counted as dripd's time.
            slots_before = slot_seconds(client.get("/metrics").text)
            started, cpu, loop_cpu = time.monotonic(), daemon.cpu_seconds(), daemon.loop_thread_cpu_seconds()
            response = client.post(f"/api/sequences/{created['id']}/start")
            assert response.status_code == 200, response.text
        last = sink.wait_for(base + n, 3600)
        cpu, loop_cpu = daemon.cpu_seconds() - cpu, daemon.loop_thread_cpu_seconds() - loop_cpu
        if last is None:
            raise RuntimeError(f"the sink accepted {sink.accepted - base} of {n}:\n{daemon.log()[-3000:]}")
        with daemon.client() as client:  # from the start call to the last acceptance
            slots = {state: seconds - slots_before.get(state, 0.0)
                     for state, seconds in slot_seconds(client.get("/metrics").text).items()}
        deadline = time.monotonic() + 60
        recorded = c.outbox_count(db_path)
        while recorded_check and recorded < n and time.monotonic() < deadline:
            time.sleep(0.05)
            recorded = c.outbox_count(db_path)
        time.sleep(0.5)  # anything more the sink would count (a duplicate) arrives meanwhile
    finally:
        daemon.stop()
    span = last - started
    return n / span, recorded, sink.accepted - base, cpu / n * 1000, slots, (loop_cpu / span, (cpu - loop_cpu) / span)


def slot_seconds(exposition: str) -> dict[str, float]:
    """``dripd_send_slot_seconds_total`` of the bench mailbox, by state (dripd/send_slots.py)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {sample.labels["state"]: sample.value for family in text_string_to_metric_families(exposition)
            if family.name == "dripd_send_slot_seconds" for sample in family.samples
            if sample.labels.get("mailbox") == MAILBOX and sample.name.endswith("_total")}


def slot_shares(slots: dict[str, float]) -> str:
    """Where the mailbox's send places spent the run, in words."""
    total = sum(slots.values()) or 1.0
    words = {"on_the_wire": "handed to the transport", "waiting_for_claim": "free, the next send's claim not yet committed",
             "waiting_for_prepare": "free, the next message not yet read and built", "idle": "idle"}
    return ", ".join(f"{words[state]} {100 * slots[state] / total:.0f} %" for state in words if state in slots)


def dripd_run(root: Path, port: int, n: int, connections: int, concurrency: int | None,
              profile: Path | None = None) -> tuple[float, int, float]:
    """``concurrency`` None: the mailbox as a user writes it, sends in flight following ``connections``."""
    now = c.epoch_now()
    db_path = root / "var" / "dripd.sqlite3"
    c.build_db(db_path, mailboxes=[MAILBOX], sequences=1, enrollments=n, next_run_at=lambda i: now - 60,
               now=now - 60, steps=c.ONE_STEP)
    table = {"host": "127.0.0.1", "port": port, "security": "none", "connections": connections,
             "timeout_seconds": 30}
    box = c.open_mailbox(MAILBOX, "smtp", table, **({} if concurrency is None else {"concurrency": concurrency}))
    daemon = c.Daemon(root, {"daemon": c.daemon_section(root), "mailboxes": [box]}, profile=profile)
    try:
        daemon.start()
        cpu = daemon.cpu_seconds()
        deadline = time.monotonic() + 3600
        while (done := c.outbox_count(db_path)) < n and time.monotonic() < deadline:
            if daemon.proc is not None and daemon.proc.poll() is not None:
                raise RuntimeError(f"dripd exited:\n{daemon.log()[-3000:]}")
            time.sleep(0.05)
        elapsed = time.monotonic() - daemon.ready
        cpu = daemon.cpu_seconds() - cpu
    finally:
        daemon.stop()
    return done / elapsed, c.outbox_count(db_path), cpu / max(done, 1) * 1000


def apart(root: Path, port: int, n: int, connections: int, items_file: Path, rounds: int,
          ) -> tuple[dict[str, float], dict[str, float]]:
    """The two halves of the headline measured apart, each in a fresh interpreter, alternated, the
    medians: the engine with a null transport at the headline's sends in flight (bench_dispatch's
    in-process daemon: reading, building, claiming durably, recording, events, metrics), and the
    SMTP transport alone on the same pre-rendered messages (bench_smtp_transport's child)."""
    here = Path(__file__).resolve().parent
    engines, transports = [], []
    for k in range(rounds):
        engines.append(c.run_child(here / "bench_dispatch.py", {
            "root": str(root / f"engine-{k}"), "n": n, "k": n, "mailboxes": 1,
            "concurrency": HANDED_PER_CONNECTION * connections}))
        shutil.rmtree(root / f"engine-{k}", ignore_errors=True)
        transports.append(c.run_child(here / "bench_smtp_transport.py", {
            "what": "transport", "port": port, "items": str(items_file), "connections": connections}))

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    return ({key: median(engines, key) for key in ("rate", "main_cpu_ms", "other_cpu_ms")},
            {key: median(transports, key) for key in ("rate", "cpu_ms")})


def apart_rows(table: c.Table, headline: float, raw: float, engine: dict[str, float], transport: dict[str, float],
               connections: int) -> None:
    """Why the headline stops where it does: each half alone, and what one interpreter allows them."""
    reference = f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)"
    table.row(f"the engine alone: the same mailbox with a null transport, {HANDED_PER_CONNECTION * connections} "
              "sends in flight (bench_dispatch.py's in-process daemon): steps/s", c.fnum(engine["rate"]), reference,
              c.ratio(engine["rate"], raw),
              f"no SMTP; CPU {engine['main_cpu_ms']:.2f} ms/step in the trio thread + "
              f"{engine['other_cpu_ms']:.2f} ms in the others")
    table.row(f"the SMTP transport alone: SmtpTransport.send from {connections} trio tasks, {connections} "
              "connections, the same pre-rendered messages: messages/s", c.fnum(transport["rate"]), reference,
              c.ratio(transport["rate"], raw), f"no engine; CPU {transport['cpu_ms']:.3f} ms/message")
    # Both halves are CPU-bound on one core's worth of Python; in one interpreter they take turns on
    # its GIL, so their times per message add up. A model from the two runs above, not a run.
    ceiling = 1 / (1 / engine["rate"] + 1 / transport["rate"])
    apart_bound = min(engine["rate"], transport["rate"])
    table.row("what one interpreter allows the two together: 1 / (1/engine + 1/transport), their times per message "
              "added (a model from the two rows above, not a run): messages/s", c.fnum(ceiling), reference,
              c.ratio(ceiling, raw),
              f"the headline is {c.ratio(headline, ceiling)} of it; with the SMTP conversations off this interpreter "
              f"(another process, or a free-threaded Python) the bound would be the slower half alone: "
              f"{c.fnum(apart_bound)} msg/s, {c.ratio(apart_bound, raw)} of the plain client")


def main() -> None:
    def extra(p: object) -> None:
        p.add_argument("--connections", type=int, default=4)  # type: ignore[attr-defined]
        p.add_argument("--concurrency", type=int, default=0,  # type: ignore[attr-defined]
                       help="lane workers for the 'concurrency =' row (default: 4 x connections)")

    args = c.arguments("SMTP send throughput vs a plain aiosmtplib client", extra)
    n = c.pick(args, 200, 5_000, 20_000)
    rounds = c.pick(args, 1, 3, 3)
    conns = args.connections
    concurrency = args.concurrency or 4 * conns
    items = messages(n)
    with c.workdir(args, "dripd-bench-send-") as root, counted_sink() as sink:
        port = sink.port
        items_file = root / "messages.pickle"
        items_file.write_bytes(pickle.dumps(items))
        # The headline in alternated rounds (the plain client, the naive script, dripd), the plain
        # client once more after the last: this machine's speed drifts by up to 2x within minutes
        # (its fsync time most), so one run of each gave ratios that moved ~20 % between runs.
        plains = [plain_client(port, conns, items_file)]
        naives: list[float] = []
        bares: list[tuple[float, float]] = []
        users = []
        models: dict[str, list[tuple[float, int, int, float, dict[str, float], tuple[float, float]]]] = {
            ledger: [] for ledger in MODEL_LEDGERS}
        for k in range(rounds):
            if k:
                plains.append(plain_client(port, conns, items_file))
            naives.append(naive_client(port, conns, n))
            bares.append(bare_sender(root, port, conns, n))
            users.append(dripd_as_a_user(root / f"dripd-user-{k}", sink, n, conns,
                                         args.profile / "send-daemon.txt" if args.profile and not k else None))
            for ledger, runs in models.items():
                runs.append(dripd_as_a_user(root / f"dripd-model-{ledger}-{k}", sink, n, conns, env=model_env(ledger),
                                            recorded_check=ledger != "none"))
        plains.append(plain_client(port, conns, items_file))
        ours, recorded, ours_cpu = dripd_run(root / "dripd", port, n, conns, None)
        ahead, ahead_recorded, ahead_cpu = dripd_run(root / "dripd-ahead", port, n, conns, concurrency)
        bridged = bridged_client(port, conns, items)
        engine, transport = apart(root, port, n, conns, items_file, rounds)
    raw = statistics.median(rate for rate, _ in plains)
    raw_cpu = statistics.median(cpu for _, cpu in plains)
    naive = statistics.median(naives)
    user, user_recorded, user_accepted, user_cpu, user_slots, user_busy = sorted(users, key=lambda run: run[0])[
        len(users) // 2]
    whole = all(run[1] == n and run[2] == n for run in users)
    # Each round's ratios against the plain client around it (the mean of the runs before and after).
    per_round = "; ".join(
        f"{c.fnum(run[0])} msg/s = {c.ratio(run[0], (plains[k][0] + plains[k + 1][0]) / 2)} of "
        f"{c.fnum((plains[k][0] + plains[k + 1][0]) / 2)}, {c.ratio(run[0], naives[k])} of {c.fnum(naives[k])}"
        for k, run in enumerate(users))
    size = sum(len(d) for _, d in items) / n
    table = c.Table("1. Send throughput to Postfix smtp-sink")
    table.row(f"{c.fnum(n)} contacts by `dripctl enroll --csv`, `connections = {conns}` as a user writes it, "
              "`start` to the sink's last acceptance: messages/s", c.fnum(user),
              f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(user, raw),
              f"target >= 0.8x; {c.ratio(user, naive)} the naive script (target >= 3x); medians of {rounds} "
              f"alternated round(s), each round: {per_round}; "
              f"{'every round' if whole else 'NOT EVERY ROUND'} {c.fnum(n)}/{c.fnum(n)} durably recorded 'sent' "
              f"and accepted by the sink once ({'no duplicate' if whole else 'DUPLICATES OR LOSSES'}); "
              f"the median round: daemon CPU {user_cpu:.2f} ms/message (plain client: {raw_cpu:.2f}); on a CPU "
              f"{100 * user_busy[0]:.0f} % of the time the event loop's thread, {100 * user_busy[1]:.0f} % the "
              f"others (the SMTP loop's and SQLite's; one GIL: their Python work takes turns); the send "
              f"places' time (`dripd_send_slot_seconds`; {HANDED_PER_CONNECTION} per connection: on a "
              f"connection or queued for one in the transport): {slot_shares(user_slots)}")
    table.row(f"the naive script: stdlib EmailMessage built per contact, smtplib, {conns} connections: messages/s",
              c.fnum(naive), f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(naive, raw),
              "what a user would otherwise write; not dripd")
    bare, bare_cpu = statistics.median(rate for rate, _ in bares), statistics.median(cpu for _, cpu in bares)
    table.row(f"the least a sender with dripd's ledger pays, in one interpreter: dripd's pipelined SMTP conversation on "
              f"one uvloop loop, {conns} connections, and per message the reads, render and build, claim durable "
              f"before the send ({HANDED_PER_CONNECTION * conns} per commit) and result recorded, no engine "
              "(bench/_bare_sender.py): messages/s", c.fnum(bare),
              f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(bare, raw),
              f"a floor, not a design: no events, metrics, journal or scheduler; CPU {bare_cpu:.2f} ms/message; "
              f"the headline is {c.ratio(user, bare)} of it; median of {len(bares)}, one per round")
    for ledger, runs in models.items():
        model = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
        recorded_ok = all((run[1] == n or ledger == "none") and run[2] == n for run in runs)
        per_model_round = ", ".join(
            f"{c.ratio(run[0], (plains[k][0] + plains[k + 1][0]) / 2)} ({c.ratio(users[k][0], run[0])})"
            for k, run in enumerate(runs))
        table.row(f"a model of a batched lane, not dripd's path (bench/_batched_lane.py), in the headline's "
                  f"configuration and flow: batches of {MODEL_BATCH}, two in flight, the ledger written {ledger}: "
                  f"{MODEL_LEDGERS[ledger]}: messages/s", c.fnum(model[0]),
                  f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(model[0], raw),
                  f"a bound for a batched send path, not a cost: no send slots, withdrawals, pauses or outcomes but "
                  f"'sent'; the headline is {c.ratio(user, model[0])} of it; per round against the plain client (and "
                  f"the headline's share of it): {per_model_round}; "
                  + (f"{'every round' if recorded_ok else 'NOT EVERY ROUND'} {c.fnum(n)}/{c.fnum(n)} "
                     "recorded 'sent' and accepted once" if ledger != "none" else
                     f"{'every round' if recorded_ok else 'NOT EVERY ROUND'} accepted by the sink once, nothing "
                     "recorded")
                  + f"; the median round: daemon CPU {model[3]:.2f} ms/message, on a CPU {100 * model[5][0]:.0f} % "
                  f"of the time the event loop's thread, {100 * model[5][1]:.0f} % the others")
    table.row(f"dripd on a database built beforehand, `connections = {conns}`, READY=1 to {c.fnum(n)} rows 'sent': "
              "messages/s", c.fnum(ours), f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(ours, raw),
              f"{c.fnum(recorded)}/{c.fnum(n)} durably recorded 'sent'; ~{size:,.0f} bytes/message; "
              f"daemon CPU {ours_cpu:.2f} ms/message")
    table.row(f"the same with `concurrency = {concurrency}` (more workers than connections): messages/s",
              c.fnum(ahead), f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(ahead, raw),
              f"{c.fnum(ahead_recorded)}/{c.fnum(n)} durably recorded 'sent'; dripd warns that only {conns} "
              f"are on the wire at once; daemon CPU {ahead_cpu:.2f} ms/message")
    table.row("the plain client driven from trio (one aio_as_trio crossing per message): messages/s",
              c.fnum(bridged), f"{c.fnum(raw)} (plain aiosmtplib, pre-rendered)", c.ratio(bridged, raw),
              "what the trio-asyncio bridge alone costs; not dripd")
    apart_rows(table, user, raw, engine, transport, conns)
    table.notes.append("reference: asyncio (the stock event loop, in a process of its own: bench/_plain_smtp.py) + "
                       "aiosmtplib.sendmail on the same pre-rendered bytes, timed from connect to the last reply, run "
                       f"before, between and after the headline's rounds, the median of {len(plains)} runs "
                       f"({raw_cpu:.2f} ms CPU per message); all rows share one "
                       f"smtp-sink and this machine (load average at the end: {os.getloadavg()[0]:.2f}); the transport plugin "
                       "alone against the same client: bench/bench_smtp_transport.py")
    table.print()


if __name__ == "__main__":
    main()
