"""The funnel's definitions and the mailbox health rules, on hand-made facts."""

from __future__ import annotations

from dripd import analytics
from dripd.store import MessageFacts

DAY = 86400.0


def fact(status: str = "sent", kinds: tuple[str, ...] = (), flagged: tuple[str, ...] = (), at: float = 0.0,
         step: int = 1) -> MessageFacts:
    return MessageFacts(1, step, status, at, frozenset(kinds), frozenset(flagged))


def test_delivered_needs_a_dsn_or_the_bounce_window() -> None:
    facts = [fact(), fact(kinds=("delivered",)), fact(kinds=("bounced",)), fact("failed", ("bounced",)),
             fact("uncertain"), fact("sending")]
    early = analytics.funnels_by_step(facts, now=3600, bounce_window=DAY)[1]
    assert (early.sent, early.delivered, early.bounced, early.refused, early.uncertain) == (3, 1, 2, 1, 1)
    late = analytics.funnels_by_step(facts, now=2 * DAY, bounce_window=DAY)[1]
    assert late.delivered == 2  # the bounced one never counts as delivered
    assert late.rates()["bounced"] == 0.5 and late.rates()["delivered"] == round(2 / 3, 4)


def test_flagged_hits_are_counted_apart() -> None:
    f = analytics.funnels_by_step([fact(flagged=("opened",)), fact(kinds=("opened",), flagged=("opened",))], 0, DAY)[1]
    assert (f.opened, f.flagged_opens) == (1, 1)


def rates(sends: int, reply: float | None, bounce: float | None, open_: float | None = 0.0) -> analytics.Rates:
    return analytics.Rates(sends, open_, reply, bounce)


def test_health_rules() -> None:
    ok = analytics.health(rates(40, 0.05, 0.0), rates(100, 0.06, 0.0))
    assert ok.status == "ok" and ok.healthy
    assert analytics.health(rates(10, 0.0, 0.5), rates(100, 0.06, 0.0)).status == "unknown"  # too few sends
    collapsed = analytics.health(rates(40, 0.02, 0.0, 0.1), rates(100, 0.06, 0.0, 0.4))
    assert [w.split(":")[0] for w in collapsed.warnings] == ["reply rate collapsed", "open rate collapsed"]
    climbing = analytics.health(rates(40, 0.05, 0.05), rates(100, 0.05, 0.01))
    assert [w.split(":")[0] for w in climbing.warnings] == ["bounce rate climbing"]
    # A mailbox that always bounced 3% warns only when it doubles.
    assert analytics.health(rates(40, 0.05, 0.05), rates(100, 0.05, 0.03)).status == "ok"
    # No baseline yet: collapse cannot be judged, an absolute bounce rate still warns.
    assert analytics.health(rates(40, 0.0, 0.03), rates(5, 0.5, 0.0)).warnings[0].startswith("bounce rate")
