"""What the contract tests share: the backends, a recording event sink, small builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from dripd.events import Event, EventKind, EventSink
from dripd.model import Action, Sequence, SequenceSettings, Step, StepType
from dripd.store import ContactInput, FullStore, open_store
from dripd.store.postgres import open_postgres_store
from tests.postgres_server import PASSWORD

BACKENDS = ["sqlite", "postgresql"]
PG_URL_FILE = "postgres.url"  # under a test's root: the URL of the database the test was given
T0 = 1_800_000_000.0  # a fixed "now": the store is given every time, it never reads a clock


@dataclass
class Holding:
    """What a node believes it holds (the cluster's fence, reduced to its seam)."""

    tokens: dict[str, tuple[str, int]] = field(default_factory=dict)

    def token(self, mailbox_id: str) -> tuple[str, int] | None:
        return self.tokens.get(mailbox_id)


async def open_backend(backend: str, root: Path, sink: EventSink) -> FullStore:
    """A store of ``backend`` on an empty database under ``root``, publishing to ``sink``."""
    if backend == "sqlite":
        return await open_store(root / "contract.sqlite3", events=sink)
    if backend == "postgresql":
        # The ``backend`` fixture made a fresh database and left its URL under ``root`` (a child
        # process of a test reopens the same database from it).
        return await open_postgres_store((root / PG_URL_FILE).read_text(), password=PASSWORD, events=sink)
    raise AssertionError(f"unknown backend {backend!r}")


@dataclass
class RecordingSink:
    """An EventSink that keeps every published batch (one batch per committed group)."""

    batches: list[list[Event]] = field(default_factory=list)

    def publish(self, events: Iterable[Event]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]

    def kinds(self) -> list[EventKind]:
        return [event.kind for event in self.events]

    def of(self, kind: EventKind) -> list[Event]:
        return [event for event in self.events if event.kind is kind]

    def clear(self) -> None:
        self.batches.clear()


def email_step(subject: str = "Hi {{firstName}}", wait_seconds: float = 0.0) -> Step:
    return Step(type=StepType.EMAIL, subject=subject, body="<p>hello</p>", wait_seconds=wait_seconds)


async def active_sequence(store: FullStore, name: str = "seq", mailbox_id: str = "sales", *, steps: int = 1,
                          auto_complete: bool = True) -> tuple[Sequence, list[Step]]:
    """A started sequence of ``steps`` email steps."""
    settings = SequenceSettings(name=name, mailbox_id=mailbox_id, auto_complete=auto_complete)
    sequence = await store.create_sequence(settings, [email_step(f"step {i}") for i in range(steps)], T0)
    await store.transition_sequence(sequence.id, Action.START, T0)
    return await store.get_sequence(sequence.id)


async def enroll_one(store: FullStore, sequence_id: int, email: str = "ada@example.org", now: float = T0) -> int:
    result = await store.enroll(sequence_id, [ContactInput(email, first_name="Ada")], None, now, strict=True)
    assert len(result.enrolled) == 1
    return result.enrolled[0]
