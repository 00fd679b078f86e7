"""The plain client of bench_send.py, run in a process of its own: asyncio + aiosmtplib, nothing else.

It must not share a process with dripd: importing dripd imports trio-asyncio, whose event loop
policy makes every later ``asyncio.run`` a trio-asyncio loop (``SyncTrioEventLoop``), about 3x
the CPU per message of the stock loop here. The reference is what a user's own asyncio script
gets, so it runs where nothing but asyncio and aiosmtplib has been imported (checked below).

    python bench/_plain_smtp.py PORT CONNECTIONS ITEMS   # ITEMS: a pickle of [(to, bytes), ...]
prints one JSON line: {"rate": messages/s, "cpu_ms": CPU ms per message, "loop": loop class}
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time

import aiosmtplib

FROM = "sales@sender.example"


async def send_all(port: int, connections: int, items: list[tuple[str, bytes]]) -> tuple[float, str]:
    todo: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in items:
        todo.put_nowait(item)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
        await smtp.connect()
        while True:
            try:
                to, data = todo.get_nowait()
            except asyncio.QueueEmpty:
                break
            await smtp.sendmail(FROM, [to], data)
            sent += 1
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    assert sent == len(items), (sent, len(items))
    return len(items) / elapsed, type(asyncio.get_running_loop()).__name__


def main() -> None:
    port, connections, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(path, "rb") as f:
        items = pickle.load(f)
    assert "trio_asyncio" not in sys.modules and "dripd" not in sys.modules, "not a clean asyncio process"
    cpu = time.process_time()
    rate, loop = asyncio.run(send_all(port, connections, items))
    print(json.dumps({"rate": rate, "cpu_ms": (time.process_time() - cpu) / len(items) * 1000, "loop": loop}))


if __name__ == "__main__":
    main()
