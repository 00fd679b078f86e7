"""The reply inbox's rules: hit rate and cost.

Hit rate: categories and new text on the reply corpus (tests/unit/replies, four languages,
written the way real clients write them) and on the held-out messages written by other hands
for the classifier's tests (tests/unit/mail), per language and in all.

Cost: what the inbox adds per reply the detector sees (reading the headers and text of the raw
message, cutting the quoted history, categorising), against the reference measured in the same
run on the same raw messages: the detector's classifier (``dripd_imap.classify``), which every
message already goes through.

    .venv/bin/python bench/bench_inbox.py [--full | --smoke]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import _common as c  # noqa: E402

from dripd.inbox.categories import categorize  # noqa: E402
from dripd.inbox.quoting import new_text  # noqa: E402
from dripd_imap.classify import Kind, classify  # noqa: E402
from dripd_imap.reply_message import received_message  # noqa: E402
from tests.unit.replies.corpus import LANGUAGES, held_out, samples  # noqa: E402


def _raw(text: str, subject: str, n: int) -> bytes:
    return (f"From: Writer <w{n}@client.example>\r\nTo: alice@example.com\r\nSubject: {subject or 'Re: Hi'}\r\n"
            f"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <r{n}@client.example>\r\n"
            f"In-Reply-To: <s{n}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}").replace("\n", "\r\n").replace("\r\r\n", "\r\n").encode()


def main() -> None:
    args = c.arguments(__doc__.splitlines()[0])
    rounds = c.pick(args, 2, 50, 500)
    corpus = samples()
    held = held_out()

    table = c.Table("Reply inbox: categories and new text (hit rate), and cost per reply")
    for language in LANGUAGES:
        mine = [s for s in corpus if s.language == language]
        cats = sum(categorize(new_text(s.text), auto_reply=s.auto_reply, subject=s.subject).category.value == s.category
                   for s in mine)
        texts = sum(new_text(s.text) == s.new for s in mine)
        table.row(f"corpus {language}: category right / new text exact", f"{cats}/{len(mine)} / {texts}/{len(mine)}",
                  "-", "-", "written alongside the rules: an upper bound")
    right = text_right = 0
    for h in held:
        raw = h.file.read_bytes()
        message = received_message(raw)
        text = new_text(message.text)
        verdict = categorize(text, auto_reply=classify(raw).kind is Kind.AUTO_REPLY, subject=message.subject)
        right += verdict.category.value == h.category
        text_right += text.startswith(h.new)
    table.row("held out (tests/unit/mail): category right / new text right", f"{right}/{len(held)} / {text_right}/{len(held)}",
              "-", "-", "written by other hands for the classifier")

    raws = [_raw(s.text, s.subject, n) for n, s in enumerate(corpus)] + [h.file.read_bytes() for h in held]
    t0 = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            message = received_message(raw)
            categorize(new_text(message.text), subject=message.subject)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            classify(raw)
    reference = time.perf_counter() - t0
    n = rounds * len(raws)
    table.row(f"{len(raws)} replies x {rounds}: replies/s (one core)", c.fnum(n / ours),
              f"{c.fnum(n / reference)} (the detector's classify)", c.ratio(reference, ours),
              "rate ratio: the inbox adds about one classifier pass per reply")
    table.print()


if __name__ == "__main__":
    main()
