"""The one way integration tests wait for something another process or server does.

``wait_until`` polls a check until it gives a truthy value and returns that value. Its
``timeout`` is a bound that keeps a failing test from hanging, never an assertion on speed:
set it generously (a loaded two-core CI machine runs six suites at once). A test inside a
trio run with real servers awaits ``wait_until_async``, the same contract for async checks.
In-process tests under simulated time do not poll at all: they move the clock
(``tests.integration.simulated.sleep_until``) or wait on an event.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0


def _failure(what: str | Callable[[], str], timeout: float) -> AssertionError:
    detail = what() if callable(what) else what
    return AssertionError(f"not reached within {timeout:.0f}s: {detail}")


def wait_until(check: Callable[[], T | None], *, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.05,
               what: str | Callable[[], str] = "condition") -> T:
    """Call ``check`` until it returns a truthy value; that value. ``what`` (text, or a function
    giving it, e.g. a daemon's log) is the failure message."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _failure(what, timeout)
        time.sleep(interval)


async def wait_until_async(check: Callable[[], Awaitable[T | None]], *, timeout: float = DEFAULT_TIMEOUT,
                           interval: float = 0.05, what: str | Callable[[], str] = "condition") -> T:
    """``wait_until`` inside a trio run, for a check that awaits (a store read, say)."""
    with trio.move_on_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            await trio.sleep(interval)
    raise _failure(what, timeout)
