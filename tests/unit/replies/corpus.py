"""The reply corpus (corpus_*.toml, one per language) and the held-out messages, loaded once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIL = HERE.parent / "mail"
LANGUAGES = ("en", "de", "fr", "es")


@dataclass(frozen=True)
class Sample:
    language: str
    client: str
    category: str
    text: str
    new: str
    auto_reply: bool
    subject: str

    @property
    def name(self) -> str:
        return f"{self.language}-{self.category}-{self.client}"


@dataclass(frozen=True)
class HeldOut:
    file: Path
    category: str
    new: str


def samples() -> list[Sample]:
    out = []
    for language in LANGUAGES:
        for entry in tomllib.loads((HERE / f"corpus_{language}.toml").read_text(encoding="utf-8"))["reply"]:
            out.append(Sample(language, entry["client"], entry["category"], entry["text"], entry["new"].strip(),
                              entry.get("auto_reply", False), entry.get("subject", "")))
    return out


def held_out() -> list[HeldOut]:
    entries = tomllib.loads((HERE / "held_out.toml").read_text(encoding="utf-8"))["message"]
    return [HeldOut(MAIL / e["file"], e["category"], e["new"]) for e in entries]
