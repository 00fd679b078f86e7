"""One native asyncio event loop in a thread of its own, shared by every SMTP transport of the process.

Why not the trio-asyncio bridge (DESIGN.md, "asyncio libraries cross one bridge"): under it every
asyncio callback of an SMTP conversation runs as a step of a trio task, and the transport alone
cost more CPU per message than a whole plain aiosmtplib client (see ``dripd_smtp.transport`` for
the measurement). Here aiosmtplib runs on a native asyncio loop (uvloop's); the trio side hands
each piece of a conversation over with ``call_soon_threadsafe`` and is answered through its
``TrioToken`` (the pattern of the SQLite store's ``_ThreadReply``): two thread wake-ups per
hand-off, however many callbacks the conversation takes. Hand-offs made while a wake-up is already
on its way ride with it (``_Batch``): at sixteen sends per connection several start or finish in the
same turn of a loop, and each wake-up is a system call, a wake-up of the other thread and a GIL
hand-over.

The thread is made when the first transport needs it and stopped, joined and gone when the last
one lets go (``acquire``/``release``), so a process with no SMTP mailbox has no such thread and
one whose mailboxes are all closed has none left behind.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any, Callable, Coroutine, TypeVar

import trio
import uvloop

from dripd.clock import offloaded

T = TypeVar("T")


class _Batch:
    """Callables for one event loop, run there in the order given, with one wake-up of that loop
    for all those given before it got round to them. One thread adds, the loop's runs them; the
    GIL makes the deque's append and popleft and the flag's reads and writes atomic, and the flag
    is cleared before the queue is emptied, so an item added meanwhile is either run by this pass
    or wakes another."""

    __slots__ = ("_wake", "_items", "_woken")

    def __init__(self, wake: Callable[[Callable[[], None]], object]) -> None:
        self._wake = wake  # call_soon_threadsafe or TrioToken.run_sync_soon: run a callable there
        self._items: collections.deque[Callable[[], None]] = collections.deque()
        self._woken = False

    def add(self, item: Callable[[], None]) -> None:
        self._items.append(item)
        if not self._woken:
            self._woken = True
            try:
                self._wake(self._run)
            except BaseException:
                # The loop is gone (closed, or the trio run has finished): every later add must
                # say so too, not wait for a wake-up that will never come.
                self._woken = False
                raise

    def _run(self) -> None:
        self._woken = False
        items = self._items
        try:
            while items:
                items.popleft()()
        finally:
            if items and not self._woken:  # an item raised: the ones after it still run
                self._woken = True
                self._wake(self._run)


class _Handoff:
    """One coroutine run on the loop thread for one trio caller."""

    __slots__ = ("answers", "done", "task")

    def __init__(self, answers: _Batch) -> None:
        self.answers = answers  # the trio run's batch of answers
        self.done = trio.Event()
        self.task: asyncio.Task[Any] | None = None

    def finished(self, _task: object) -> None:  # on the loop thread
        try:
            self.answers.add(self.done.set)
        except trio.RunFinishedError:
            pass  # the trio side is gone; nobody waits for this answer

    def cancel(self) -> None:  # on the loop thread, always after start (FIFO hand-offs)
        if self.task is not None:
            self.task.cancel()


class LoopThread:
    """An asyncio loop running forever in a daemon thread until ``_stop``."""

    def __init__(self) -> None:
        # uvloop's loop, made directly, not through asyncio.new_event_loop(): with trio-asyncio
        # imported, the policy would hand out a trio-driven loop (or refuse, from inside trio).
        # Against the stock SelectorEventLoop the transport alone took 0.146 ms of CPU per message
        # instead of 0.174 and sent 6,898 msg/s instead of 5,906 (bench_smtp_transport's child,
        # 4 connections, medians of 4 alternated runs; BENCHMARKS.md): its Python work takes turns
        # with the daemon's on one GIL, so every microsecond saved here is one the engine can use.
        self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        self._starts = _Batch(self.loop.call_soon_threadsafe)  # hand-offs and cancels, in order
        # The answers, per trio run that handed work over (the daemon's one; a test's each).
        self._answers: dict[trio.lowlevel.TrioToken, _Batch] = {}
        self.users = 0
        self._stopped: tuple[trio.lowlevel.TrioToken, trio.Event] | None = None
        self._thread = threading.Thread(target=self._main, name="dripd-smtp-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        loop = self.loop
        try:
            loop.run_forever()
            # Whatever is still running (a caller's trio run ended under it) is cancelled and
            # allowed to finish, so sockets close instead of being garbage-collected open.
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            if self._stopped is not None:
                token, event = self._stopped
                try:
                    token.run_sync_soon(event.set)
                except trio.RunFinishedError:
                    pass

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``await fn(*args)`` on the loop thread. A trio cancellation cancels the asyncio task
        and waits for it to finish, so the caller knows the connection's state when it returns.
        The simulated test clock does not jump while this waits (``offloaded``), so trio's own
        timeouts stand still too: ``fn`` bounds its waits on the loop's (real) clock itself
        (the SMTP transport's ``_within``)."""
        token = trio.lowlevel.current_trio_token()
        answers = self._answers.get(token)
        if answers is None:
            answers = self._answers[token] = _Batch(token.run_sync_soon)
        handoff = _Handoff(answers)
        loop = self.loop

        def start() -> None:
            handoff.task = task = loop.create_task(fn(*args))
            task.add_done_callback(handoff.finished)

        self._starts.add(start)
        with offloaded:
            try:
                await handoff.done.wait()
            except BaseException:
                self._starts.add(handoff.cancel)
                with trio.CancelScope(shield=True):
                    await handoff.done.wait()
                raise
        task = handoff.task
        assert task is not None
        if task.cancelled():
            # Not by this caller: the loop was stopped under it (its trio run is ending). A
            # connection fault to the transport, classified by the stage it had reached.
            raise ConnectionAbortedError("the SMTP loop thread stopped during the conversation")
        result: T = task.result()
        return result

    async def _stop(self) -> None:
        """Stop the loop, let its leftovers finish, close it and join the thread."""
        event = trio.Event()
        self._stopped = (trio.lowlevel.current_trio_token(), event)
        self.loop.call_soon_threadsafe(self.loop.stop)
        with offloaded, trio.CancelScope(shield=True):
            await event.wait()
        self._thread.join()  # the thread has returned from _main: this does not block


_shared: LoopThread | None = None


def acquire() -> LoopThread:
    """The process's loop thread, started if no transport holds it now."""
    global _shared
    if _shared is None:
        _shared = LoopThread()
    _shared.users += 1
    return _shared


async def release(loop_thread: LoopThread) -> None:
    """Let go of the loop thread; the last user stops it and waits until the thread is gone."""
    global _shared
    loop_thread.users -= 1
    if loop_thread.users > 0:
        return
    if _shared is loop_thread:
        _shared = None
    await loop_thread._stop()
