"""When an active contact really runs next, and what holds it. Pure.

The planned time of a contact's next step (``due_at``) says nothing of the mailbox it sends
from: a closed send window, the hourly cap, the daily cap or its warm-up stage, the token
bucket's spacing or an operator's pause can each push the send later. ``next_run`` answers
with the first moment every one of them allows, and names the one that held it last, so
``sequences contacts`` shows the real next moment and why. It is a lower bound: contacts ahead
in the mailbox's queue may still take the slots it finds.
"""

from __future__ import annotations

from dataclasses import dataclass

from dripd.model import SequenceStatus
from dripd.throttle import MailboxLimiter
from dripd.window import SendWindow

# A contact whose step was due this long ago with nothing holding it has stopped moving:
# the scheduler runs due work within seconds, so a quarter of an hour late is not a queue.
STUCK_AFTER_SECONDS = 15 * 60.0

# Hold reasons, as the API reports them (``nextRunReason``).
STEP_WAIT = "step wait"
WINDOW = "send window"
HOURLY_CAP = "hourly cap"
DAILY_CAP = "daily cap"
WARMUP = "warm-up cap"
SPACING = "send spacing (hourly cap spread evenly)"
DUE = "due now"
RETRY = "retry after a temporary failure"


@dataclass(frozen=True)
class NextRun:
    at: float | None  # None: nothing will run until someone acts (see reason)
    reason: str
    stuck: bool = False


def _cap_reason(limiter: MailboxLimiter, t: float) -> str:
    """Which of the mailbox's limits keeps it from sending at ``t``."""
    limits = limiter.limits
    if limiter.sends_today(t) >= limiter.daily_cap_on(t):
        return WARMUP if limiter.daily_cap_on(t) < limits.daily_cap else DAILY_CAP
    if limiter.sends_in_last_hour(t) >= limits.hourly_cap:
        return HOURLY_CAP
    return SPACING


def next_run(
    *, due_at: float | None, now: float, sequence_status: SequenceStatus, window: SendWindow | None,
    limiter: MailboxLimiter | None, paused_reason: str | None, mailbox_known: bool = True,
    retry: str | None = None,
) -> NextRun:
    """The next moment an active contact's step can run, and why not sooner.

    ``window`` is None when the window is per contact (its zone is in the contact's fields);
    ``limiter`` is None when the daemon has no lane for the mailbox (not running it); ``retry``
    says why the current step's send failed for now, when it waits to be tried again.
    """
    if sequence_status is SequenceStatus.DRAFT:
        return NextRun(None, "sequence not started (dripctl sequences start)")
    if sequence_status is SequenceStatus.PAUSED:
        return NextRun(None, "sequence paused (dripctl sequences resume)")
    if sequence_status is SequenceStatus.COMPLETED:
        return NextRun(None, "sequence completed")
    if not mailbox_known:
        return NextRun(None, "its mailbox is not in the configuration", stuck=True)
    if paused_reason is not None:
        return NextRun(None, f"mailbox paused: {paused_reason}")
    t = now if due_at is None or due_at <= now else due_at
    reason = STEP_WAIT if t > now else DUE
    if reason == STEP_WAIT and retry is not None:
        reason = f"{RETRY}: {retry}"  # the wait is the backoff after a temporary failure
    elif reason == STEP_WAIT and window is not None and window.is_open(t) and not window.is_open(t - 1):
        reason = WINDOW  # planned for the very second the window opens: the window held it
    # The window and the limits each push t later; a push by one can land where the other
    # closes, so loop until both allow the same moment (a few rounds at most).
    for _ in range(8):
        moved = False
        if window is not None and not window.is_open(t):
            t, reason, moved = window.next_open(t), WINDOW, True
        if limiter is not None:
            allowed = limiter.next_allowed(t)
            if allowed > t:
                reason, t, moved = _cap_reason(limiter, t), allowed, True
        if not moved:
            break
    stuck = reason == DUE and due_at is not None and now - due_at > STUCK_AFTER_SECONDS
    if stuck:
        reason = "due since its planned time but not sent (see `dripctl sequences log`)"
    return NextRun(t, reason, stuck)
