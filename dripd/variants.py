"""A/B variants of an email step: which variant a contact gets, and when one has won. Pure.

A contact's variant is a function of its address, the step and the variants' weights, so the
preview and the send agree; once a message is claimed for it the store pins the variant on the
ledger row, and a retry or a later edit of the weights never switches it. With an auto-winner
rule, once every live variant (weight > 0) has ``after`` sends, the variant with the best rate on
the rule's metric takes every contact not pinned yet; a tie keeps the weighted split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

METRICS = ("replied", "opened", "clicked")
NAME_PATTERN = r"[A-Za-z0-9_-]{1,32}"  # the whole name (re.fullmatch)
MAX_VARIANTS = 10
MAX_WEIGHT = 1000


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant; a field left None falls back to the step's own subject, body or text."""

    name: str
    weight: int = 1
    subject: str | None = None
    body: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class AutoWinner:
    """After ``after`` sends per live variant, the best on ``metric`` takes the remaining traffic."""

    after: int
    metric: str = "replied"


@dataclass(frozen=True, slots=True)
class Tally:
    """Sent messages of one variant and how many of them were opened, clicked, replied to."""

    sent: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0

    def count(self, metric: str) -> int:
        return {"replied": self.replied, "opened": self.opened, "clicked": self.clicked}[metric]


def bucket(seed: str) -> float:
    """A stable number in [0, 1) for ``seed`` (SHA-256: the same on every machine and run,
    unlike ``hash()``)."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def weighted_pick(variants: Sequence[Variant], seed: str) -> str:
    """The variant ``seed`` falls on, each live variant taking a share of [0, 1) by weight."""
    live = [(v.name, v.weight) for v in variants if v.weight > 0]
    if not live:  # the parser refuses this; every variant then weighs the same
        live = [(v.name, 1) for v in variants]
    point = bucket(seed) * sum(weight for _, weight in live)
    for name, weight in live:
        point -= weight
        if point < 0:
            return name
    return live[-1][0]  # float rounding at the very top of the range


def winner(variants: Sequence[Variant], tallies: Mapping[str, Tally], rule: AutoWinner | None) -> str | None:
    """The variant that has won under ``rule``, or None while the test runs (too few sends on
    some live variant, or the best rate is shared)."""
    if rule is None:
        return None
    live = [v for v in variants if v.weight > 0]
    if len(live) < 2:
        return None
    rates: dict[str, float] = {}
    for v in live:
        tally = tallies.get(v.name, Tally())
        if tally.sent < rule.after:
            return None
        rates[v.name] = tally.count(rule.metric) / tally.sent
    best = max(rates.values())
    leaders = [name for name, rate in rates.items() if rate == best]
    return leaders[0] if len(leaders) == 1 else None


def choose(variants: Sequence[Variant], seed: str, *, pinned: str | None = None,
           tallies: Mapping[str, Tally] | None = None, rule: AutoWinner | None = None) -> str | None:
    """The variant a contact gets: its pinned one, else the winner, else the weighted pick.
    None when the step has no variants."""
    if not variants:
        return None
    if pinned is not None and any(v.name == pinned for v in variants):
        return pinned
    won = winner(variants, tallies or {}, rule)
    return won if won is not None else weighted_pick(variants, seed)


def seed_of(email: str, step_id: int) -> str:
    """What a contact's variant of a step hangs on (the address, not the row id, so a contact
    re-enrolled or previewed before enrolling gets the same variant)."""
    return f"variant\x00{email.strip().lower()}\x00{step_id}"
