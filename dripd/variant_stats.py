"""How sure an A/B comparison is: Wilson intervals per variant's rate, and for the difference
between two variants Newcombe's interval (built from the two Wilson intervals) with the p-value
of the pooled two-proportion z-test. Pure: no I/O.

Wilson rather than the textbook "p +- 1.96 sqrt(p(1-p)/n)": reply rates are small and samples
modest, where the textbook interval collapses to zero width at 0 replies and spills below 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dripd.analytics import Funnel
from dripd.variants import METRICS, AutoWinner, Tally, Variant, winner

Z95 = 1.959963984540054  # two-sided 95 %
ALPHA = 0.05


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / n`` (None without trials)."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled z-test that two rates are equal (None without trials)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0.0:
        return 1.0  # both rates 0 or both 1: no evidence of a difference
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def difference_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (method 10) for ``x1/n1 - x2/n2``."""
    a, b = wilson(x1, n1), wilson(x2, n2)
    if a is None or b is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    lower = d - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    upper = d + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return max(-1.0, lower), min(1.0, upper)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One variant against the leader on one metric."""

    variant: str
    against: str
    metric: str
    difference: float  # variant's rate minus the leader's
    interval: tuple[float, float]
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def summary(self) -> str:
        lo, hi = self.interval
        verdict = "significant at 5 %" if self.significant else "not significant at 5 %"
        return (f"{self.variant} vs {self.against} ({self.metric}): {self.difference * 100:+.1f} points,"
                f" 95 % CI {lo * 100:+.1f} to {hi * 100:+.1f}, p = {self.p_value:.3g}, {verdict}")

    def as_json(self) -> dict[str, object]:
        return {"variant": self.variant, "against": self.against, "metric": self.metric,
                "difference": round(self.difference, 4), "interval": [round(x, 4) for x in self.interval],
                "pValue": round(self.p_value, 4), "significant": self.significant, "summary": self.summary()}


def leader(counts: Mapping[str, tuple[int, int]]) -> str | None:
    """The variant with the best rate among those with sends (first of equals), or None."""
    rated = [(x / n, name) for name, (x, n) in counts.items() if n > 0]
    if not rated:
        return None
    best = max(rate for rate, _ in rated)
    return next(name for rate, name in rated if rate == best)


def compare(order: Sequence[str], counts: Mapping[str, tuple[int, int]], metric: str) -> list[Comparison]:
    """Each variant with sends against the leader: (successes, sent) per variant name."""
    top = leader(counts)
    if top is None:
        return []
    x2, n2 = counts[top]
    out: list[Comparison] = []
    for name in order:
        if name == top or counts.get(name, (0, 0))[1] <= 0:
            continue
        x1, n1 = counts[name]
        interval = difference_interval(x1, n1, x2, n2)
        p_value = two_proportion_p(x1, n1, x2, n2)
        assert interval is not None and p_value is not None  # both have sends
        out.append(Comparison(name, top, metric, x1 / n1 - x2 / n2, interval, p_value))
    return out


def variant_report(current: Sequence[Mapping[str, object]], auto_winner: Mapping[str, object] | None,
                   funnels: Mapping[str, Funnel]) -> dict[str, object]:
    """A step's A/B block for the stats: a funnel with Wilson intervals per variant (current
    ones in order, then deleted ones that still have messages), each variant against the
    leader per metric, and the auto-winner when one has been reached."""
    names = [str(v["name"]) for v in current]
    weights = {str(v["name"]): v.get("weight", 1) for v in current}
    order = names + sorted(set(funnels) - set(names))
    rows: list[dict[str, object]] = []
    for name in order:
        f = funnels.get(name, Funnel())
        intervals = {metric: _rounded(wilson(getattr(f, metric), f.sent)) for metric in METRICS}
        rows.append({"name": name, "weight": weights.get(name), "deleted": name not in names, **f.as_json(),
                     "intervals": intervals})
    comparisons = {metric: [c.as_json() for c in compare(
        order, {name: (getattr(funnels[name], metric), funnels[name].sent) for name in funnels}, metric)]
        for metric in METRICS}
    rule = None
    if auto_winner is not None:
        rule = AutoWinner(int(str(auto_winner["after"])), str(auto_winner.get("metric", "replied")))
    live = [Variant(name, int(str(weights[name]))) for name in names]
    tallies = {name: Tally(f.sent, f.opened, f.clicked, f.replied) for name, f in funnels.items()}
    return {"metric": rule.metric if rule else "replied",
            "autoWinner": {"after": rule.after, "metric": rule.metric} if rule else None,
            "winner": winner(live, tallies, rule), "variants": rows, "comparisons": comparisons}


def _rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]
