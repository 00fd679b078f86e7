"""The classifier on bounces from servers not in the shared corpus (tests/heldout_bounces/):
relays' JSON notifications, legacy-charset bounces without a status code, and plain-text
reports of older MTAs and list managers. Each file must come out as its folder says."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from dripd_imap.classify import Classification, Kind, classify

HELDOUT = Path(__file__).resolve().parents[1] / "heldout_bounces"
EXPECTED = ("hard", "soft", "complaint", "not-bounce")


def samples() -> list[Path]:
    return sorted(p for folder in EXPECTED for p in (HELDOUT / folder).glob("*.eml"))


def meets(expected: str, result: Classification) -> bool:
    if expected in ("hard", "soft"):
        return result.kind is Kind.BOUNCE and result.bounce_class == expected and bool(result.failed_recipients)
    if expected == "complaint":
        return result.kind is Kind.COMPLAINT and bool(result.failed_recipients)
    return result.kind not in (Kind.BOUNCE, Kind.COMPLAINT)


def test_the_heldout_set_is_there_and_covers_each_shape() -> None:
    names = [p.name for p in samples()]
    assert len(names) >= 60, names
    for prefix in ("json-", "jp-", "text-", "b2-json-", "b2-jp-", "b2-text-"):
        assert sum(n.startswith(prefix) for n in names) >= 3, prefix


@pytest.mark.parametrize("path", samples(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_heldout_sample(path: Path) -> None:
    result = classify(path.read_bytes())
    assert meets(path.parent.name, result), result


def test_hit_rates_and_no_bounce_taken_for_a_reply() -> None:
    hits: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    replies = []
    for path in samples():
        result = classify(path.read_bytes())
        totals[path.parent.name] += 1
        hits[path.parent.name] += meets(path.parent.name, result)
        if path.parent.name != "not-bounce" and result.kind is Kind.MESSAGE:
            replies.append(path.name)
    print("\nheld-out hit rates: " + ", ".join(f"{k} {hits[k]}/{totals[k]}" for k in EXPECTED))
    assert not replies, f"taken for replies: {replies}"
    assert hits["hard"] / totals["hard"] >= 0.98 and hits["soft"] / totals["soft"] >= 0.97
    assert hits["not-bounce"] == totals["not-bounce"]


def test_a_named_original_message_id_is_found_where_the_notification_carries_one() -> None:
    ses = classify((HELDOUT / "hard" / "json-ses-bounce-permanent.eml").read_bytes())
    assert ses.original_message_id == "<20261203095800.1.a1b2c3@sender.example>" and ses.status == "5.1.1"
    japanese = classify((HELDOUT / "hard" / "jp-iso2022-unknown-user.eml").read_bytes())
    assert japanese.failed_recipients == ("suzuki@example.jp",)
    assert japanese.original_message_id == "<20261203095800.121.a1b2c3@sender.example>"
