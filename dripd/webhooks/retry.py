"""The delivery rules in one place: what an answer means, and when to try again. Pure.

2xx is delivered; 410 Gone disables the endpoint (the receiver says it is gone for good);
anything else (another status, a timeout, a refused connection) is retried with exponential
backoff and full jitter until ``retry_hours`` after the delivery was queued (or replayed).
"""

from __future__ import annotations

import enum
import random

FIRST_DELAY_SECONDS = 5.0
MAX_DELAY_SECONDS = 3600.0  # a retry at least hourly, so a receiver back up is served soon
ENDPOINT_PAUSE_MAX_SECONDS = 60.0


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: disable the endpoint
    RETRY = "retry"


def outcome(status: int | None) -> Outcome:
    """What a receiver's HTTP status (None: no answer) means for the delivery."""
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.GONE
    return Outcome.RETRY


def retry_delay(attempts: int, rng: random.Random, first: float = FIRST_DELAY_SECONDS,
                cap: float = MAX_DELAY_SECONDS) -> float:
    """Seconds until the next attempt after ``attempts`` failed ones: exponential, capped, and
    jittered between half and the whole step so a receiver coming back is not hit by a herd."""
    step = min(cap, first * 2.0 ** max(0, attempts - 1))
    return step * (0.5 + rng.random() / 2)


def next_attempt(now: float, attempts: int, retry_from: float, retry_hours: float, rng: random.Random,
                 first: float = FIRST_DELAY_SECONDS) -> float | None:
    """When to try again, or None when the retry period is over (give up). The last attempt
    falls on the period's end."""
    at = now + retry_delay(attempts, rng, first)
    deadline = retry_from + retry_hours * 3600.0
    if now >= deadline:
        return None
    return min(at, deadline)


def endpoint_pause(consecutive_failures: int) -> float:
    """How long a failing endpoint gets no new attempts: bounds the work a dead or erroring
    receiver costs the daemon (its deliveries still wait in the outbox, nothing is lost)."""
    if consecutive_failures <= 0:
        return 0.0
    return min(ENDPOINT_PAUSE_MAX_SECONDS, 0.5 * 2.0 ** (consecutive_failures - 1))
