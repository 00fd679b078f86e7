"""What happens to a contact, a sequence or a mailbox, decided in one place. Pure.

The engine, the reactions to detected mail, tracking and the control operations ask here; the
store reads and writes the facts but decides nothing. Every rule is a plain function of values,
so it is tested without a database or a clock.
"""

from __future__ import annotations

import enum
import datetime as dt
import zoneinfo
from dataclasses import dataclass
from collections.abc import Mapping, Sequence as Seq
from typing import Any

from dripd.errors import AlreadyEnrolled, Conflict, ReadOnly, Suppressed
from dripd.hookspecs import SendOutcome, SendResult
from dripd.model import REENROLLABLE, EnrollmentStatus, SequenceStatus
from dripd.quick_init import quick_init

# -- a send's result -------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True)
class RetryRules:
    """How transient failures are retried: exponential backoff with jitter, within bounds."""

    max_attempts: int
    max_age_seconds: float
    base_seconds: float
    jitter: float = 0.25  # up to +25 %: retries of many contacts spread out


@quick_init
@dataclass(frozen=True)
class Sent:
    """Accepted by the transport: the contact moves on."""


@dataclass(frozen=True)
class RetryAt:
    at: float
    detail: str


@dataclass(frozen=True)
class Bounced:
    """The contact ends as bounced; a hard bounce also suppresses the address everywhere."""

    bounce_class: str  # "hard" | "soft"
    detail: str
    status: str | None = None

    @property
    def suppresses(self) -> bool:
        return self.bounce_class == "hard"


@dataclass(frozen=True)
class SenderRefused:
    """The server refused the sender, not the contact: release the step, pause the mailbox."""

    detail: str


@dataclass(frozen=True)
class Uncertain:
    """May have been delivered: never resent by default; the contact moves on."""

    detail: str


@dataclass(frozen=True)
class Failed:
    """The message could not be built or handed over at all: the step is resolved as failed
    with the reason and the enrollment stops as failed, never silently skipped."""

    reason: str


SendDecision = Sent | RetryAt | Bounced | SenderRefused | Uncertain | Failed


def send_decision(
    result: SendResult, *, attempts: int, first_attempt_at: float, now: float, rules: RetryRules, jitter: float,
) -> SendDecision:
    """What a transport's result means. ``jitter`` is a random draw in [0, 1) from the caller."""
    outcome = result.outcome
    if outcome is SendOutcome.ACCEPTED:
        return Sent()
    if outcome is SendOutcome.TRANSIENT:
        age = now - first_attempt_at
        if attempts < rules.max_attempts and age < rules.max_age_seconds:
            delay = rules.base_seconds * 2 ** (attempts - 1) * (1 + rules.jitter * jitter)
            return RetryAt(now + delay, result.detail)
        return Bounced("soft", f"retries exhausted after {attempts} attempts: {result.detail}", result.status)
    if outcome is SendOutcome.PERMANENT:
        return Bounced("hard", result.detail, result.status)
    if outcome is SendOutcome.SENDER_BLOCKED:
        return SenderRefused(result.detail)
    if outcome is SendOutcome.UNCERTAIN:
        return Uncertain(result.detail)
    raise AssertionError(f"unhandled send outcome {outcome!r}")


def enrollment_status_of(decision: Bounced | Failed) -> EnrollmentStatus:
    """How an enrollment ends when its step bounced or failed."""
    return EnrollmentStatus.BOUNCED if isinstance(decision, Bounced) else EnrollmentStatus.FAILED


# -- enrolling -------------------------------------------------------------------------------


class Refusal(enum.StrEnum):
    """Why a contact cannot be enrolled; the values are the API's error codes."""

    SEQUENCE_COMPLETED = "read_only"
    ALREADY_ENROLLED = "already_enrolled"
    ENDED = "conflict"  # replied, bounced, unsubscribed or failed in this sequence before
    SUPPRESSED = "suppressed"


REFUSAL_TEXT = {
    Refusal.SEQUENCE_COMPLETED: "the sequence is completed: no new enrollments",
    Refusal.ALREADY_ENROLLED: "already active in this sequence",
    Refusal.ENDED: "ended in this sequence in a way that does not allow enrolling again"
                   " (replied, bounced, unsubscribed or failed)",
    Refusal.SUPPRESSED: "the address is suppressed (bounced, unsubscribed or complained)",
}


def enrollment_refusal(
    sequence_status: SequenceStatus, latest: EnrollmentStatus | None, suppressed: str | None,
) -> Refusal | None:
    """The one rule for single and bulk enrollment: ``latest`` is the contact's most recent
    enrollment in the sequence (None if never), ``suppressed`` the address's suppression reason."""
    if sequence_status is SequenceStatus.COMPLETED:
        return Refusal.SEQUENCE_COMPLETED
    if latest is EnrollmentStatus.ACTIVE:
        return Refusal.ALREADY_ENROLLED
    if latest is not None and latest not in REENROLLABLE:
        return Refusal.ENDED
    if suppressed is not None:
        return Refusal.SUPPRESSED
    return None


def refusal_error(refusal: Refusal, email: str, sequence_id: int, details: dict[str, Any]) -> Conflict:
    """The error a strict enrollment raises for ``refusal`` (the codes the API documents)."""
    message = f"{email}: {REFUSAL_TEXT[refusal]} (sequence {sequence_id})"
    if refusal is Refusal.SEQUENCE_COMPLETED:
        return ReadOnly(message, details=details)
    if refusal is Refusal.ALREADY_ENROLLED:
        return AlreadyEnrolled(message, details=details)
    if refusal is Refusal.SUPPRESSED:
        return Suppressed(message, details=details)
    return Conflict(message, details=details)


def runnable_at_enrollment(sequence_status: SequenceStatus) -> bool:
    """A new enrollment is due at once only in an active sequence; otherwise it waits for start."""
    return sequence_status is SequenceStatus.ACTIVE


# -- inbox rotation ----------------------------------------------------------------------------


def assign_mailboxes(pool: Seq[str], capacity: Mapping[str, int], count: int, turn: int = 0) -> list[str]:
    """The mailbox for each of ``count`` new contacts of a sequence sending from ``pool``.

    Each goes to the member with the most capacity left today (``capacity``: today's cap minus
    today's sends, lowered here as contacts are assigned), ties in pool order from ``turn``.
    A member missing from ``capacity`` is paused and takes none, unless every member is
    (then the contacts wait on the first, like a single mailbox's would). A contact stays on its
    mailbox for the whole thread: this is asked once, at enrollment.
    """
    members = [m for m in pool if m in capacity] or list(pool[:1])
    left = {m: capacity.get(m, 0) for m in members}
    out: list[str] = []
    for index in range(count):
        best = max(left.values())
        ties = [m for m in members if left[m] == best]
        choice = ties[(turn + index) % len(ties)]
        left[choice] -= 1
        out.append(choice)
    return out


# -- stopping --------------------------------------------------------------------------------

SUPPRESSION_REASONS = ("bounced", "unsubscribed", "complaint", "manual")


def suppression_end_status(reason: str) -> EnrollmentStatus:
    """How an active enrollment ends when its address is suppressed for ``reason``."""
    return EnrollmentStatus.BOUNCED if reason == "bounced" else EnrollmentStatus.UNSUBSCRIBED


def autocompletes(sequence_status: SequenceStatus, auto_complete: bool, active_left: int) -> bool:
    """An autoComplete sequence completes when its last active contact finishes.

    autoComplete is off unless a sequence asks for it (``SequenceSettings.auto_complete``): a
    sequence enrolled one contact at a time (seed 003's always-on drip) expects enrollments
    after every contact so far has finished, and a completed sequence refuses them. Only a
    one-shot campaign enrolled up front (seed 000) should turn it on.
    """
    return sequence_status is SequenceStatus.ACTIVE and auto_complete and active_left == 0


def autocomplete_rule(sequence_status: SequenceStatus, auto_complete: bool, active: int) -> str:
    """Which completion rule applies to a sequence and when it fires, in words for the user."""
    if sequence_status is SequenceStatus.COMPLETED:
        return "completed: no new enrollments (clone it to run again)"
    if not auto_complete:
        return ("off: the sequence stays open for new enrollments after every contact finishes;"
                " end it with `sequences complete`")
    if sequence_status is not SequenceStatus.ACTIVE:
        return f"on: once started, completes when its last active contact finishes ({active} active now)"
    return (f"on: completes when its last active contact finishes ({active} active now);"
            " later enrollments are then refused")


# -- bounce guards ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BounceGuard:
    """Pause the sender when hard bounces among recent sends reach ``threshold``; a rate over
    fewer than ``min_sends`` says little (the best SaaS tools wait for 20)."""

    threshold: float
    min_sends: int = 20

    def trips(self, hard_bounces: int, sends: int) -> str | None:
        """The pause reason when the guard trips, else None."""
        if sends < self.min_sends or sends == 0 or hard_bounces < self.threshold * sends:
            return None
        return (f"auto-paused: {hard_bounces} hard bounces in the last {sends} sends "
                f"({hard_bounces / sends:.1%} >= {self.threshold:.1%})")


def shield_resting(resumed_at: float | None, now: float, grace_days: float) -> bool:
    """After an operator resumes a mailbox the shield leaves it alone for ``grace_days``: the
    operator has looked, and the same old bounces must not pause it again at once."""
    return resumed_at is not None and now - resumed_at < grace_days * 86400


SEQUENCE_BOUNCE_WINDOW_SENDS = 50  # a sequence's guard looks at its last 50 sends


# -- replies -----------------------------------------------------------------------------------

# A reply from one of these says nothing about a company: never stop a whole "domain" for it.
# Free webmail and ISP mailboxes; the providers that run one brand under many country domains
# (yahoo.co.uk, gmx.at, ...) are matched by their first label in FREEMAIL_BRANDS.
FREEMAIL = frozenset({
    # global webmail
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com",
    "icloud.com", "me.com", "mac.com", "aol.com", "aim.com", "proton.me", "protonmail.com", "protonmail.ch",
    "pm.me", "tutanota.com", "tutanota.de", "tuta.io", "fastmail.com", "fastmail.fm", "zoho.com",
    "zohomail.com", "hey.com", "mail.com", "email.com", "usa.com", "gmx.com", "hushmail.com",
    "mailbox.org", "posteo.de", "posteo.net", "runbox.com", "duck.com", "inbox.com",
    # Europe: webmail and ISPs
    "web.de", "freenet.de", "t-online.de", "arcor.de", "1und1.de", "online.de", "vodafone.de",
    "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net", "neuf.fr", "bbox.fr", "numericable.fr",
    "libero.it", "virgilio.it", "tiscali.it", "alice.it", "tim.it", "fastwebnet.it", "email.it",
    "telefonica.net", "terra.es", "movistar.es", "ono.com", "btinternet.com", "btopenworld.com",
    "sky.com", "virginmedia.com", "ntlworld.com", "talktalk.net", "blueyonder.co.uk", "tiscali.co.uk",
    "ziggo.nl", "kpnmail.nl", "planet.nl", "home.nl", "hetnet.nl", "xs4all.nl", "telenet.be",
    "skynet.be", "proximus.be", "bluewin.ch", "hispeed.ch", "sunrise.ch", "chello.at", "aon.at",
    "a1.net", "wp.pl", "o2.pl", "onet.pl", "interia.pl", "op.pl", "seznam.cz", "centrum.cz", "atlas.cz",
    "azet.sk", "freemail.hu", "citromail.hu", "abv.bg", "telia.com", "online.no", "sapo.pt",
    "eircom.net", "inbox.lv", "mail.ee",
    # Americas, Asia, Oceania
    "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "charter.net", "cox.net",
    "earthlink.net", "optonline.net", "frontier.com", "windstream.net", "juno.com", "netzero.net",
    "shaw.ca", "rogers.com", "sympatico.ca", "videotron.ca", "telus.net", "uol.com.br", "bol.com.br",
    "terra.com.br", "ig.com.br", "prodigy.net.mx", "qq.com", "foxmail.com", "163.com", "126.com",
    "yeah.net", "sina.com", "sina.cn", "sohu.com", "aliyun.com", "139.com", "naver.com", "daum.net",
    "hanmail.net", "nate.com", "rediffmail.com", "bigpond.com", "bigpond.net.au", "optusnet.com.au",
    "iinet.net.au", "xtra.co.nz", "yandex.com", "ya.ru", "mail.ru", "bk.ru", "inbox.ru", "list.ru",
    "rambler.ru", "ukr.net", "i.ua", "docomo.ne.jp", "ezweb.ne.jp", "softbank.ne.jp", "nifty.com",
})
# Brands with a webmail under many country domains: yahoo.com, yahoo.co.jp, gmx.at, hotmail.fr...
FREEMAIL_BRANDS = frozenset({"yahoo", "ymail", "rocketmail", "gmx", "hotmail", "outlook", "live", "windowslive",
                             "yandex", "aol", "zoho", "protonmail"})


def is_freemail(domain: str) -> bool:
    """Whether ``domain`` is a free webmail or ISP mailbox domain (a person, not a company)."""
    domain = domain.lower().rstrip(".")
    return domain in FREEMAIL or domain.split(".", 1)[0] in FREEMAIL_BRANDS


def colleague_domain(sender: str | None, stop_on_domain_reply: bool, stopped: bool) -> str | None:
    """The domain whose other contacts a reply stops too (stopOnDomainReply), or None."""
    if not (stopped and stop_on_domain_reply and sender and "@" in sender):
        return None
    domain = sender.rsplit("@", 1)[-1].lower()
    return None if is_freemail(domain) else domain


MAX_AUTO_REPLY_AHEAD_DAYS = 366


def auto_reply_resume_at(return_date: dt.date | None, timezone: str, now: float, delay_days: float) -> float:
    """Out of office is a pause: resume the day after the stated return date (local midnight in
    the sequence's zone; the first day back goes to the backlog, not to our follow-up) when that
    is still ahead, else after ``delay_days``. A return more than a year ahead is not believed
    (a typo, or "back 31.12.9999", whose next day no clock can hold): the delay applies."""
    latest = dt.datetime.fromtimestamp(now, dt.timezone.utc).date() + dt.timedelta(days=MAX_AUTO_REPLY_AHEAD_DAYS)
    if return_date is not None and return_date <= latest:
        local = dt.datetime.combine(return_date + dt.timedelta(days=1), dt.time(0, 0), zoneinfo.ZoneInfo(timezone))
        if local.timestamp() > now:
            return local.timestamp()
    return now + delay_days * 86400
