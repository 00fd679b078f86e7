"""XOAUTH2 on both protocols against real servers.

IMAP: Debian's Dovecot checks each bearer token with its own oauth2 passdb, which asks the
token endpoint's tokeninfo URL. SMTP: the scripted aiosmtpd sink checks the token its plan
names. The OAuth2 provider (token endpoint + tokeninfo) is the one MOCK, started by these tests
(servers.token_endpoint): there is no real Google or Microsoft here.
"""

from __future__ import annotations

import base64
import logging
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio
import trio.testing
import trio_asyncio

from dripd.hookspecs import EventKind, MailEvent, SendOutcome
from tests.integration.mail_samples import reply
from tests.integration.plugin_harness import LoginAttempts, Watch, detector_for, message, send_all, watching
from tests.integration.servers import Dovecot, TokenEndpoint, dovecot, smtp_sink, token_endpoint

CLIENT_SECRET = "client-secret-xyz"


@pytest.fixture(scope="module")
def oauth() -> Iterator[tuple[TokenEndpoint, Dovecot]]:
    with token_endpoint(client_secret=CLIENT_SECRET) as endpoint, dovecot(oauth2_url=endpoint.tokeninfo_url) as server:
        yield endpoint, server


def xoauth2_table(server: Dovecot, endpoint: TokenEndpoint, user: str, refresh_token: str, tmp_path: Path,
                  **overrides: Any) -> dict[str, Any]:
    """The refresh-token flow, secrets in files (as under systemd's $CREDENTIALS_DIRECTORY)."""
    (tmp_path / "refresh").write_text(refresh_token + "\n")
    (tmp_path / "client-secret").write_text(CLIENT_SECRET + "\n")
    return server.imap_table(user, password_env=None, auth="xoauth2", token_endpoint=endpoint.url,
                             client_id=endpoint.client_id, client_secret_file=str(tmp_path / "client-secret"),
                             refresh_token_file=str(tmp_path / "refresh"), **overrides)


def secrets_of(endpoint: TokenEndpoint, user: str) -> list[str]:
    """Every secret that must never reach a log: tokens, their XOAUTH2 blobs, refresh tokens."""
    blobs = [base64.b64encode(f"user={user}\x01auth=Bearer {t}\x01\x01".encode()).decode() for t in endpoint.issued]
    return [*endpoint.issued, *blobs, *endpoint.grants, CLIENT_SECRET]


# -- IMAP: the detector against Dovecot's oauth2 passdb -------------------------------------------


async def test_imap_detector_logs_in_with_xoauth2_and_sees_a_reply(oauth: tuple[TokenEndpoint, Dovecot],
                                                                   tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, server = oauth
    user = server.new_user("oauth")
    table = xoauth2_table(server, endpoint, user, endpoint.grant(user), tmp_path)
    before = len(endpoint.issued)
    async with trio_asyncio.open_loop(), watching(table) as watch:
        server.deliver(user, reply(user, "bob@example.org", "<1.2@example.com>"))
        events = await watch.wait_for(1)
    assert events[0].kind is EventKind.REPLIED and events[0].sender == "bob@example.org"
    token = endpoint.issued[before]
    assert endpoint.issued[before:] == [token]  # one refresh, one login
    assert token in endpoint.checked  # Dovecot really asked the provider about it
    assert f"user=<{user}>, method=XOAUTH2" in (server.root / "dovecot.log").read_text()
    assert not [s for s in secrets_of(endpoint, user) if s in caplog.text]


async def test_imap_expired_token_is_dropped_and_refreshed(oauth: tuple[TokenEndpoint, Dovecot], tmp_path: Path,
                                                          monkeypatch: Any, caplog: Any,
                                                          mock_clock: trio.testing.MockClock) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, server = oauth
    user = server.new_user("expired")
    table = xoauth2_table(server, endpoint, user, endpoint.grant(user), tmp_path)
    before = len(endpoint.issued)
    stale = f"access-{before + 1}"
    endpoint.expired.add(stale)  # the provider will call the next token expired (revoked, clock skew...)
    attempts = LoginAttempts(monkeypatch)
    mock_clock.autojump_threshold = 60  # moves on its own only after a real minute of nothing (a hang)
    watch = Watch(detector_for(table))
    async with trio_asyncio.open_loop():
        with trio.fail_after(3600):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch.detector.run, watch.emit)
                await attempts.until_finished(1)
                await trio.testing.wait_all_tasks_blocked()
                assert len(attempts.started) == 1 and not watch.detector.caught_up.is_set()
                mock_clock.jump(1.0)  # the first backoff
                await watch.detector.caught_up.wait()
                server.deliver(user, reply(user, "bob@example.org", "<1.3@example.com>"))
                events = await watch.wait_for(1)
                nursery.cancel_scope.cancel()
    assert events[0].kind is EventKind.REPLIED
    # Refused once, then after the 1 s backoff a fresh token (the stale one was not reused).
    assert endpoint.issued[before:] == [stale, f"access-{before + 2}"]
    assert [t - attempts.started[0] for t in attempts.started] == [0.0, 1.0]
    assert "login refused" in caplog.text
    assert not [s for s in secrets_of(endpoint, user) if s in caplog.text]


async def test_imap_refused_tokens_are_retried_with_backoff_not_in_a_loop(oauth: tuple[TokenEndpoint, Dovecot],
                                                                         tmp_path: Path, monkeypatch: Any,
                                                                         caplog: Any,
                                                                         mock_clock: trio.testing.MockClock) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, server = oauth
    user = server.new_user("wrong")
    # A token for another account: Dovecot's passdb refuses it (username mismatch), every time.
    table = xoauth2_table(server, endpoint, user, endpoint.grant("someone-else@example.com"), tmp_path)
    before = len(endpoint.issued)
    attempts = LoginAttempts(monkeypatch)
    mock_clock.autojump_threshold = 60  # moves on its own only after a real minute of nothing (a hang)
    detector = detector_for(table)

    async def emit(event: MailEvent) -> None:
        raise AssertionError("nothing to emit")

    async with trio_asyncio.open_loop():
        with trio.fail_after(3600):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(detector.run, emit)
                for count, backoff in ((1, 1.0), (2, 2.0)):
                    await attempts.until_finished(count)
                    await trio.testing.wait_all_tasks_blocked()
                    assert len(attempts.started) == count  # refused, and no retry until time moves
                    mock_clock.jump(backoff)
                await attempts.until_finished(3)
                nursery.cancel_scope.cancel()
    # Backoff 1 s, then 2 s: a tight loop would retry at once.
    assert [t - attempts.started[0] for t in attempts.started] == [0.0, 1.0, 3.0]
    # Each refused token was dropped: every attempt asked the provider for a fresh one.
    assert len(endpoint.issued) - before == len(attempts.started)
    assert caplog.text.count("login refused") >= len(attempts.started) - 1
    assert not [s for s in secrets_of(endpoint, user) if s in caplog.text]


# -- SMTP: the token command ----------------------------------------------------------------------


async def test_smtp_xoauth2_with_a_token_command(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    runs = tmp_path / "runs"
    script = tmp_path / "token.py"
    script.write_text(f"open({str(runs)!r}, 'a').write('run\\n')\nprint('tok-from-command-7f3a')\n")
    with smtp_sink({"auth": {"user": "alice@example.com", "token": "tok-from-command-7f3a"}}) as sink:
        table = sink.smtp_table(username="alice@example.com", auth="xoauth2",
                                token_command=[sys.executable, str(script)])
        results, transport = await send_all(table, message(n=1), message(n=2))
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 2
        assert [e["ok"] for e in sink.events() if e["event"] == "auth"] == [True]
    assert runs.read_text() == "run\n"  # one connection, one token; cached for the next login
    blob = base64.b64encode(b"user=alice@example.com\x01auth=Bearer tok-from-command-7f3a\x01\x01").decode()
    assert "tok-from-command-7f3a" not in caplog.text and blob not in caplog.text


@pytest.mark.parametrize(("command", "detail"), [
    ([sys.executable, "-c", "import sys; print('tok-leak-91c2'); print('tok-leak-91c2', file=sys.stderr); sys.exit(3)"],
     "exited with status 3"),
    ([sys.executable, "-c", "print('   ')"], "printed no token"),
    (["/nonexistent/dripd-token-helper", "tok-leak-91c2"], "failed"),
    ([sys.executable, "-c", "import time; print('tok-leak-91c2', flush=True); time.sleep(30)"], "failed"),
])
async def test_smtp_failing_token_command_blocks_the_sender(command: list[str], detail: str, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_sink({"auth": {"user": "alice@example.com", "token": "tok-leak-91c2"}}) as sink:
        table = sink.smtp_table(username="alice@example.com", auth="xoauth2", token_command=command,
                                timeout_seconds=0.5)
        with trio.fail_after(30):  # only a hang guard: the command's own limit is 0.5 s
            results, _ = await send_all(table, message())
        result = results[0]
        assert result.outcome is SendOutcome.SENDER_BLOCKED, result
        assert "token command" in result.detail and detail in result.detail, result.detail
        assert sink.count("auth") == 0 and sink.count("mail") == 0  # nothing sent without a token
    assert "tok-leak-91c2" not in result.detail.replace(command[-1], "") and "tok-leak-91c2" not in caplog.text


async def test_smtp_token_command_printing_a_refused_token(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_sink({"auth": {"user": "alice@example.com", "token": "the-right-one"}}) as sink:
        table = sink.smtp_table(username="alice@example.com", auth="xoauth2",
                                token_command=[sys.executable, "-c", "print('tok-wrong-55e1')"])
        results, _ = await send_all(table, message())
        assert results[0].outcome is SendOutcome.SENDER_BLOCKED and results[0].status == "5.7.8", results[0]
        assert sink.count("mail") == 0
    blob = base64.b64encode(b"user=alice@example.com\x01auth=Bearer tok-wrong-55e1\x01\x01").decode()
    assert "tok-wrong-55e1" not in caplog.text and blob not in caplog.text
    assert "tok-wrong-55e1" not in results[0].detail
