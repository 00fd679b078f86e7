"""dripd.metrics.MailboxHistogram against prometheus_client's own Histogram: the same observations
give the same exposition (but for the ``_created`` series, which ours does not keep)."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from dripd.metrics import _LATENCY_BUCKETS, _LATENESS_BUCKETS, MailboxHistogram


def _exposition(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


@pytest.mark.parametrize("buckets", [_LATENCY_BUCKETS, _LATENESS_BUCKETS])
def test_same_exposition_as_prometheus_client(buckets: tuple[float, ...]) -> None:
    reference_registry, registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("dripd_h_seconds", "help text", ("mailbox",), buckets=buckets, registry=reference_registry)
    ours = MailboxHistogram("dripd_h_seconds", "help text", buckets, registry)
    rng = random.Random(7)
    # Every bound itself (an observation equal to a bound falls in that bucket), just above each,
    # zero, past the last bound, and a spread in between, over three mailboxes.
    amounts = [0.0, *buckets, *(b * 1.000001 for b in buckets), buckets[-1] * 10]
    amounts += [rng.uniform(0, buckets[-1] * 1.2) for _ in range(500)]
    for amount in amounts:
        mailbox = rng.choice(["b", "a", "mailbox \"quoted\""])
        reference.labels(mailbox).observe(amount)
        ours.observe(mailbox, amount)
    assert _exposition(registry) == _exposition(reference_registry)


def test_nothing_observed_exposes_the_family_alone() -> None:
    reference_registry, registry = CollectorRegistry(), CollectorRegistry()
    Histogram("dripd_h_seconds", "help text", ("mailbox",), buckets=(1, 2), registry=reference_registry)
    MailboxHistogram("dripd_h_seconds", "help text", (1, 2), registry)
    assert _exposition(registry) == _exposition(reference_registry)


def test_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="distinct and increasing"):
        MailboxHistogram("dripd_h_seconds", "help text", (2, 1), CollectorRegistry())
    with pytest.raises(ValueError, match="distinct and increasing"):
        MailboxHistogram("dripd_h_seconds", "help text", (1, 1), CollectorRegistry())
