"""Per-step funnels and mailbox health from the facts the store keeps. Pure: no I/O, no clock.

Definitions (one message = one ledger row):
- sent: the server accepted it; uncertain and refused messages are not "sent".
- delivered: sent, not bounced, and either a positive DSN arrived or the bounce window passed.
- opened / clicked: at least one unflagged hit (prefetchers and scanners do not count).
- replied / unsubscribed / complained: an event attributed to that message.
- bounced: a bounce for it, refused at once (5xx) or reported later (DSN).
Rates are over sent messages, except bounced, over sent + refused (a refused one was never sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from dripd.store import MessageFacts

STAGES = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed")


@dataclass
class Funnel:
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    complained: int = 0
    uncertain: int = 0
    refused: int = 0  # failed at send time (5xx or retries exhausted)
    flagged_opens: int = 0  # messages whose opens were all machine hits
    flagged_clicks: int = 0

    def add(self, message: MessageFacts, now: float, bounce_window: float) -> None:
        kinds = message.kinds
        bounced = "bounced" in kinds
        if message.status == "sent":
            self.sent += 1
            if not bounced and ("delivered" in kinds or message.sent_at + bounce_window <= now):
                self.delivered += 1
        elif message.status == "uncertain":
            self.uncertain += 1
        elif message.status == "failed":
            self.refused += 1
        self.bounced += bounced
        self.opened += "opened" in kinds
        self.clicked += "clicked" in kinds
        self.replied += "replied" in kinds
        self.unsubscribed += "unsubscribed" in kinds
        self.complained += "complained" in kinds
        self.flagged_opens += "opened" in message.flagged and "opened" not in kinds
        self.flagged_clicks += "clicked" in message.flagged and "clicked" not in kinds

    def rates(self) -> dict[str, float | None]:
        def rate(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        out = {stage: rate(getattr(self, stage), self.sent) for stage in STAGES if stage not in ("sent", "bounced")}
        out["bounced"] = rate(self.bounced, self.sent + self.refused)
        return out

    def as_json(self) -> dict[str, object]:
        return {"sent": self.sent, "delivered": self.delivered, "opened": self.opened, "clicked": self.clicked,
                "replied": self.replied, "bounced": self.bounced, "unsubscribed": self.unsubscribed,
                "complained": self.complained, "uncertain": self.uncertain, "refused": self.refused,
                "flaggedOpens": self.flagged_opens, "flaggedClicks": self.flagged_clicks, "rates": self.rates()}


def funnels_by_step(messages: Iterable[MessageFacts], now: float, bounce_window: float) -> dict[int, Funnel]:
    out: dict[int, Funnel] = {}
    for message in messages:
        if message.status in ("sending", "retry"):
            continue  # not resolved yet: counted once it is
        out.setdefault(message.step_id, Funnel()).add(message, now, bounce_window)
    return out


def funnels_by_mailbox(messages: Iterable[MessageFacts], now: float, bounce_window: float) -> dict[str, Funnel]:
    """The same funnel per sending mailbox (a rotating sequence spreads over several)."""
    out: dict[str, Funnel] = {}
    for message in messages:
        if message.status not in ("sending", "retry"):
            out.setdefault(message.mailbox_id, Funnel()).add(message, now, bounce_window)
    return out


def funnels_by_variant(messages: Iterable[MessageFacts], now: float, bounce_window: float
                       ) -> dict[int, dict[str, Funnel]]:
    """Per step, the same funnel per A/B variant the messages were sent as (what the ledger row
    recorded, so an edited or deleted variant keeps its numbers)."""
    out: dict[int, dict[str, Funnel]] = {}
    for message in messages:
        if message.variant is not None and message.status not in ("sending", "retry"):
            out.setdefault(message.step_id, {}).setdefault(message.variant, Funnel()).add(message, now, bounce_window)
    return out


def total(funnels: Iterable[Funnel]) -> Funnel:
    out = Funnel()
    for f in funnels:
        for name in out.__dataclass_fields__:
            setattr(out, name, getattr(out, name) + getattr(f, name))
    return out


# -- mailbox health ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    sends: int
    open_rate: float | None
    reply_rate: float | None
    bounce_rate: float | None

    def as_json(self) -> dict[str, object]:
        return {"sends": self.sends, "openRate": self.open_rate, "replyRate": self.reply_rate,
                "bounceRate": self.bounce_rate}


def rates_of(messages: Iterable[MessageFacts]) -> Rates:
    f = Funnel()
    for message in messages:
        if message.status not in ("sending", "retry"):
            f.add(message, 0.0, 0.0)
    attempted = f.sent + f.refused
    return Rates(attempted, round(f.opened / f.sent, 4) if f.sent else None,
                 round(f.replied / f.sent, 4) if f.sent else None,
                 round(f.bounced / attempted, 4) if attempted else None)


@dataclass(frozen=True)
class HealthRules:
    min_sends: int = 20
    collapse_ratio: float = 0.5
    bounce_rate: float = 0.02


@dataclass(frozen=True)
class Health:
    status: str  # ok | warning | unknown (too few sends to judge)
    warnings: tuple[str, ...] = ()
    recent: Rates | None = None
    baseline: Rates | None = None

    @property
    def healthy(self) -> bool:
        return self.status != "warning"

    def as_json(self) -> dict[str, object]:
        return {"status": self.status, "warnings": list(self.warnings),
                "recent": self.recent.as_json() if self.recent else None,
                "baseline": self.baseline.as_json() if self.baseline else None}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def health(recent: Rates, baseline: Rates, rules: HealthRules = HealthRules()) -> Health:
    """Warn when the recent reply or open rate collapses against the mailbox's own trailing
    average, or its bounce rate climbs, while there is time to act before providers notice."""
    if recent.sends < rules.min_sends:
        return Health("unknown", (), recent, baseline)
    warnings: list[str] = []
    comparable = baseline.sends >= rules.min_sends
    for name, now_rate, before in (("reply", recent.reply_rate, baseline.reply_rate),
                                   ("open", recent.open_rate, baseline.open_rate)):
        if comparable and now_rate is not None and before and now_rate < before * rules.collapse_ratio:
            warnings.append(f"{name} rate collapsed: {_pct(now_rate)} over the last {recent.sends} sends, "
                            f"against a trailing {_pct(before)}")
    bounce_now = recent.bounce_rate or 0.0
    bounce_before = (baseline.bounce_rate or 0.0) if comparable else 0.0
    limit = max(rules.bounce_rate, 2 * bounce_before)
    if bounce_now > limit:
        warnings.append(f"bounce rate climbing: {_pct(bounce_now)} over the last {recent.sends} sends "
                        f"(trailing {_pct(bounce_before) if comparable else 'n/a'}, limit {_pct(limit)})")
    return Health("warning" if warnings else "ok", tuple(warnings), recent, baseline)
