"""One knob: a mailbox's sends in flight follow its transport's connections unless set."""

from __future__ import annotations

from dripd.parallelism import DEFAULT_SENDS_IN_FLIGHT, HANDED_PER_CONNECTION, lane_parallelism


def test_unset_concurrency_follows_the_connections() -> None:
    decided = lane_parallelism("mailboxes[0]", None, 4, "smtp.connections")
    assert (decided.concurrency, decided.warning) == (4, None)


def test_a_transport_that_does_not_say_sends_one_at_a_time_by_default() -> None:
    assert lane_parallelism("mailboxes[0]", None, None, "maildir.connections").concurrency == DEFAULT_SENDS_IN_FLIGHT
    # ...and a set value is taken as it is, with nothing to compare it to.
    assert lane_parallelism("mailboxes[0]", 3, None, "maildir.connections").concurrency == 3


def test_equal_settings_are_quiet() -> None:
    assert lane_parallelism("mailboxes[0]", 4, 4, "smtp.connections").warning is None


def test_more_sends_than_connections_is_kept_but_warned_naming_both_keys() -> None:
    decided = lane_parallelism("mailboxes[1]", 16, 4, "smtp.connections")
    assert decided.concurrency == 16
    assert decided.warning is not None
    assert "mailboxes[1].concurrency = 16" in decided.warning and "smtp.connections = 4" in decided.warning
    assert "only 4 sends are on the wire" in decided.warning


def test_fewer_sends_than_connections_is_kept_but_warned() -> None:
    decided = lane_parallelism("mailboxes[0]", 1, 4, "smtp.connections")
    assert decided.concurrency == 1
    assert decided.warning is not None and "keeps only 1 of smtp.connections = 4" in decided.warning


def test_a_transport_that_queues_is_handed_sends_ahead_of_its_connections() -> None:
    decided = lane_parallelism("mailboxes[0]", None, 4, "smtp.connections", queues=True)
    assert (decided.concurrency, decided.handed, decided.warning) == (4, HANDED_PER_CONNECTION * 4, None)
    # More sends in flight than that are handed as they are (and still warned about).
    many = HANDED_PER_CONNECTION * 4 + 10
    decided = lane_parallelism("mailboxes[0]", many, 4, "smtp.connections", queues=True)
    assert (decided.concurrency, decided.handed) == (many, many) and decided.warning is not None


def test_fewer_sends_than_connections_are_never_handed_ahead() -> None:
    # concurrency below the connections limits the conversations: a queueing transport handed
    # more would open more of them.
    decided = lane_parallelism("mailboxes[0]", 1, 4, "smtp.connections", queues=True)
    assert (decided.concurrency, decided.handed) == (1, 1)


def test_nothing_is_handed_ahead_without_a_queueing_transport() -> None:
    assert lane_parallelism("mailboxes[0]", None, 4, "smtp.connections").handed == 4
    assert lane_parallelism("mailboxes[0]", None, None, "maildir.connections", queues=True).handed == 1
