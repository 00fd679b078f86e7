"""Dispatch rate: steps/s through scheduler + cadence + render + store with a null transport.

N enrollments, all due, in one mailbox; the daemon (in-process, real clock, the engine and store
the dripd command runs) sends the first K of them through a transport that accepts at once. Run
at mailbox concurrency 1 and 32: concurrency changes how many store operations share one group
commit (dripd/store/sqlite.py thread_operation). The reference, measured in the same run, is the
same per-step SQL and message build done by a plain sqlite3 loop on one thread (no scheduler, no
trio, no bridge): the floor cost of the work itself.

    .venv/bin/python bench/bench_dispatch.py [--full | --smoke] [--profile DIR]
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import _ledger_steps as ledger_steps  # noqa: E402

from dripd.send_slots import MIN_CLAIM_PLACES  # noqa: E402

MAILBOX = "m"
# Batch sizes of the batched-lane model's rows (bench/_batched_lane.py): what a batched send path
# could save per step, for issue 14's decision; 16 is the headline's sends in flight. Each is
# paired with the engine at that concurrency, run just before it.
MODEL_BATCHES = (16, 32)


def child(params: dict[str, Any]) -> dict[str, Any]:
    import trio
    import trio_asyncio

    from dripd.daemon import Daemon
    from dripd.gc_tuning import tune_collector

    root = Path(params["root"])
    n, k, concurrency = params["n"], params["k"], params["concurrency"]
    if params.get("batched"):
        import _batched_lane  # a model, not dripd's path: see its docstring

        _batched_lane.install(params["batched"])
    if params.get("free_store"):
        import _free_store  # a bound, not dripd's path: see its docstring

        _free_store.install()
    mailboxes = [MAILBOX] if params.get("mailboxes", 1) == 1 else [f"m{i}" for i in range(params["mailboxes"])]
    now = c.epoch_now()
    build = c.build_db(root / "var" / "dripd.sqlite3", mailboxes=mailboxes, sequences=max(10, 2 * len(mailboxes)),
                       enrollments=n, next_run_at=lambda i: now - 60 + i * 1e-6, now=now - 60, steps=c.ONE_STEP)
    plugin = c.NullPlugin()
    config, plugins = c.inprocess_config(
        root, [c.open_mailbox(box, "null", {}, concurrency=concurrency) for box in mailboxes], (plugin,))
    result: dict[str, Any] = {"build_s": build}
    tune_collector()  # as the dripd process does before its event loop (dripd/cli.py)

    async def main() -> None:
        async with trio_asyncio.open_loop():
            daemon = Daemon(config, plugins, handle_signals=False)
            async with trio.open_nursery() as nursery:
                t_start = time.perf_counter()
                await nursery.start(daemon.run)
                t_ready = time.perf_counter()
                while plugin.count() < 1:
                    await trio.sleep(0.001)
                t_first = time.perf_counter()
                # Count from here: with many lanes, dozens of sends can land before this line runs.
                at_first = plugin.count()
                stats = daemon.services.store.commit_stats  # type: ignore[attr-defined]  # SQLite's
                before = dataclasses.replace(stats)
                cpu_main, cpu_all = time.thread_time(), time.process_time()
                while plugin.count() < k:
                    await trio.sleep(0.01)  # coarse: the poll itself costs the event loop time
                t_last = time.perf_counter()
                cpu_main, cpu_all = time.thread_time() - cpu_main, time.process_time() - cpu_all
                sent = plugin.count()
                steps = max(1, sent - at_first)
                result.update(
                    durable_per_step=(stats.durable_commits - before.durable_commits) / steps,
                    durable_ms=1000 * (stats.durable_seconds - before.durable_seconds)
                    / max(1, stats.durable_commits - before.durable_commits),
                    durable_share=(stats.durable_seconds - before.durable_seconds) / (t_last - t_first),
                    commits_per_step=(stats.groups - before.groups) / steps,
                    main_cpu_ms=1000 * cpu_main / steps, other_cpu_ms=1000 * (cpu_all - cpu_main) / steps)
                daemon.stop()
        before_ready = at_first >= k
        if before_ready:
            # Every send landed before the daemon reported ready (many lanes, few steps): count
            # them all from the start of daemon.run, start-up included, instead of printing 0.
            at_first, t_first = 0, t_start
        result.update(before_ready=before_ready, first_s=max(0.0, t_first - t_ready), seconds=t_last - t_first, sent=sent,
                      rate=(sent - at_first) / (t_last - t_first), rss_mb=c.rss_mb()[1])

    trio.run(main)
    db = sqlite3.connect(str(root / "var" / "dripd.sqlite3"))
    result["recorded"] = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
    db.close()
    return result


def reference(root: Path, k: int, group: int, durable: bool = False, build: bool = True) -> float:
    """The same per-step work without the engine: the reads of run_context, the ledger writes of
    claim_send and record_sent (+ end of a one-step enrollment), render + build of the message,
    ``group`` steps per transaction pair (claims committed before the sends, results after).
    ``durable``: the claims' commit is synchronous=FULL (the WAL fsynced), as dripd's must be
    before a transport is called; the floor any design pays per group of claims. ``build``
    False leaves the message build out: the store's statements alone. Steps/s."""
    from dripd import render

    path = root / "ref.sqlite3"
    now = c.epoch_now()
    c.build_db(path, mailboxes=[MAILBOX], sequences=10, enrollments=k, next_run_at=lambda i: now - 60,
               now=now - 60, steps=c.ONE_STEP)
    db = sqlite3.connect(str(path), isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA synchronous=NORMAL")
    templates: dict[int, Any] = {}
    ids = [r[0] for r in db.execute("SELECT id FROM enrollments ORDER BY next_run_at, id LIMIT ?", (k,))]
    started = time.perf_counter()
    for start in range(0, len(ids), group):
        # As the engine's contract: the claims commit before any send, the results after.
        if durable:
            db.execute("PRAGMA synchronous=FULL")  # set outside a transaction, as the store does
        db.execute("BEGIN IMMEDIATE")
        claimed = [ledger_steps.claim(db, eid, MAILBOX, now, templates) for eid in ids[start:start + group]]
        db.execute("COMMIT")
        if durable:
            db.execute("PRAGMA synchronous=NORMAL")
        for one in claimed if build else ():
            envelope = render.Envelope(from_address="m@sender.example", from_name="M", to_address=one.contact.email,
                                       to_name=one.contact.first_name, message_id=one.message_id, date=now)
            render.build_message(envelope, one.rendered)
        db.execute("BEGIN IMMEDIATE")
        for one in claimed:
            ledger_steps.record_sent(db, one, MAILBOX, now)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return len(ids) / elapsed


def free_store_row(table: c.Table, root: Path, n: int, durable_refs: dict[int, float]) -> None:
    """Issue 14's question at one step in flight: which part is the limit, the store or the
    engine, and can the two together fit the target's 0.2 ms a step. The engine runs with its
    store made free (bench/_free_store.py), paired with the engine as it is, just before it."""
    runs = {}
    for label, params in (("engine", {}), ("free", {"free_store": True})):
        name = f"{label}-store-n{n}"
        runs[label] = c.run_child(Path(__file__), {"root": str(root / name), "n": n, "k": n, "concurrency": 1,
                                                   "mailboxes": 1, **params})
        shutil.rmtree(root / name, ignore_errors=True)
    engine, free = runs["engine"], runs["free"]
    # The store's floor: the plain loop's statements, a commit shared by as many steps as a lane
    # at one in flight claims ahead, without the message build (the engine's figure has it) and
    # without the durable commit's wait (dripd's connection thread can overlap it; the
    # statements' own Python it cannot). A floor the sum below can only understate.
    places = MIN_CLAIM_PLACES
    statements = reference(root / "store-floor", min(n, 5000), places, build=False)
    floor_ms = 1000 / statements
    both_ms = free["main_cpu_ms"] + floor_ms
    table.row(f"the engine with every store operation made free, not dripd's path (bench/_free_store.py): N={c.fnum(n)} "
              f"due, 1 mailbox x concurrency 1: steps/s over {c.fnum(free['sent'])} sends",
              c.fnum(free["rate"]), f"{c.fnum(engine['rate'])} (the engine as it is, run just before)",
              c.ratio(free["rate"], engine["rate"]),
              f"target 5,000/s: {c.ratio(free['rate'], 5000)}; CPU {free['main_cpu_ms']:.3f} ms/step in the trio "
              f"thread + {max(0.0, free['other_cpu_ms']):.3f} ms in the others (the engine as it is: "
              f"{engine['main_cpu_ms']:.3f} + {engine['other_cpu_ms']:.3f}); the store's own floor, the plain sqlite3 "
              f"loop's statements at {places}/commit, without the message build or a durable commit's wait (its "
              f"render of each step, ~5 us, stays): {floor_ms:.3f} ms/step ({c.fnum(statements)}/s; with both "
              f"{1000 / durable_refs[places]:.3f}); the two added: "
              f"{both_ms:.3f} ms/step, at most {c.fnum(1000 / both_ms)} steps/s with a store layer that cost nothing "
              f"beyond its statements; a bound: nothing recorded, one contact's context copied for every step")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    args = c.arguments("Dispatch rate with a null transport")
    sizes = c.pick(args, [200, 500], [1_000, 10_000, 100_000], [1_000, 10_000, 100_000, 1_000_000])
    k_max = c.pick(args, 200, 10_000, 50_000)
    # (mailboxes, concurrency per mailbox): one mailbox at the default concurrency (every step
    # waits for the one before: the latency floor), one mailbox at 32, and the scale scenario's
    # 50 mailboxes at the default concurrency 1 (steps of different mailboxes share group commits).
    shapes = [(1, 1), (1, 32), (50, 1)]
    table = c.Table("3. Dispatch rate (null transport)")
    with c.workdir(args, "dripd-bench-dispatch-") as root:
        refs, durable_refs = {}, {}
        for group in sorted({boxes * conc for boxes, conc in shapes} | set(MODEL_BATCHES) | {MIN_CLAIM_PLACES}):
            refs[group] = reference(root / f"ref{group}", min(k_max, 5000 if not args.smoke else 200), group)
            durable_refs[group] = reference(root / f"dref{group}", min(k_max, 5000 if not args.smoke else 200), group,
                                            durable=True)
        base: dict[tuple[int, int], float] = {}
        for n in sizes:
            for boxes, conc in shapes:
                k = min(n, k_max)
                name = f"n{n}-b{boxes}-c{conc}"
                profile = args.profile / f"dispatch-{name}.txt" if args.profile else None
                if profile:
                    profile.parent.mkdir(parents=True, exist_ok=True)
                r = c.run_child(Path(__file__), {"root": str(root / name), "n": n, "k": k, "concurrency": conc,
                                                 "mailboxes": boxes}, profile=profile)
                base.setdefault((boxes, conc), r["rate"])
                group = boxes * conc
                ok = "all recorded" if r["recorded"] >= r["sent"] else f"RECORDED {r['recorded']} < SENT {r['sent']}"
                shape = f"{boxes} mailbox{'es' if boxes > 1 else ''} x concurrency {conc}"
                table.row(f"N={c.fnum(n)} due, {shape}: steps/s over {c.fnum(r['sent'])} sends",
                          c.fnum(r["rate"]), f"{c.fnum(refs[group])} (plain sqlite3 loop, {group}/commit)",
                          c.ratio(r["rate"], refs[group]),
                          f"{c.ratio(r['rate'], durable_refs[group])} of the same loop with the claims' commit "
                          f"durable ({c.fnum(durable_refs[group])}/s, synchronous=FULL as dripd's must be); "
                          f"vs N={c.fnum(sizes[0])}: {c.ratio(r['rate'], base[(boxes, conc)])}; target 5,000/s: "
                          f"{c.ratio(r['rate'], 5000)}; first send {r['first_s'] * 1000:.0f} ms after READY; "
                          f"peak RSS {r['rss_mb']:.0f} MB; {ok}"
                          + ("" if r.get("before_ready") else
                             f"; per step: {r['commits_per_step']:.2f} commits, {r['durable_per_step']:.2f} of them "
                             f"durable at {r['durable_ms']:.2f} ms each ({100 * r['durable_share']:.0f} % of the wall), "
                             f"CPU {r['main_cpu_ms']:.2f} ms in the trio thread + {r['other_cpu_ms']:.2f} ms in the others")
                          + ("; all sent before READY: timed from daemon.run, start-up included"
                             if r.get("before_ready") else ""))
                shutil.rmtree(root / name, ignore_errors=True)
        model_n = sizes[min(1, len(sizes) - 1)]
        for batch in MODEL_BATCHES:
            # Paired: the engine with ``batch`` sends in flight, then the model, on the same N.
            runs = {}
            for label, params in (("engine", {"concurrency": batch}),
                                  # the mailbox's concurrency is required by the configuration and
                                  # unused by the model, which sizes its batches itself
                                  ("model", {"concurrency": batch, "batched": batch})):
                name = f"{label}-n{model_n}-b{batch}"
                runs[label] = c.run_child(Path(__file__), {"root": str(root / name), "n": model_n,
                                                           "k": min(model_n, k_max), "mailboxes": 1, **params})
                shutil.rmtree(root / name, ignore_errors=True)
            r, engine = runs["model"], runs["engine"]
            table.row(f"a model of a batched lane, not dripd's path (bench/_batched_lane.py): N={c.fnum(model_n)} due, "
                      f"1 mailbox, batches of {batch}, two batches in flight (one read, one durable claim and one "
                      f"record operation per batch): steps/s over {c.fnum(r['sent'])} sends",
                      c.fnum(r["rate"]), f"{c.fnum(refs[batch])} (plain sqlite3 loop, {batch}/commit)",
                      c.ratio(r["rate"], refs[batch]),
                      f"{c.ratio(r['rate'], durable_refs[batch])} of the same loop with the claims' commit durable; "
                      f"CPU {r['main_cpu_ms']:.3f} ms/step in the trio thread + {r['other_cpu_ms']:.3f} ms in the "
                      f"others; the engine at concurrency {batch}, same N, run just before: {c.fnum(engine['rate'])} "
                      f"steps/s, CPU {engine['main_cpu_ms']:.3f} + {engine['other_cpu_ms']:.3f} ms/step (the model "
                      f"uses {c.ratio(r['main_cpu_ms'] + r['other_cpu_ms'], engine['main_cpu_ms'] + engine['other_cpu_ms'])} "
                      f"of its CPU); {r['recorded']:,} recorded 'sent'; a bound, not a cost: no send slots, "
                      f"withdrawals or outcomes but 'sent'")
        free_store_row(table, root, min(sizes[min(1, len(sizes) - 1)], k_max), durable_refs)
    table.notes.append("in-process daemon (dripd.daemon.Daemon, real clock) with a null transport plugin "
                       "(bench/_null.py NullTransport): no network, so the figure is the engine's own cost")
    table.notes.append("the flat-curve check is the 'vs N=' column: steps/s at N against the smallest N")
    table.print()


if __name__ == "__main__":
    main()
