"""The SMTP transport against real SMTP servers: every outcome, by stage, with the real clock.

The scripted aiosmtpd sink (a separate process) and Postfix's smtp-sink answer with the faults
under test; only the OAuth2 token endpoint is a mock (started by the test, see servers.py).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
import trio_asyncio

from dripd.hookspecs import SendOutcome
from dripd_smtp.config import SmtpConfig
from dripd_smtp.transport import SmtpTransport
from tests.integration.plugin_harness import MAILBOX, context, message, send_all
from tests.integration.doctor_servers import starttls_server
from tests.integration.servers import _self_signed, free_port, postfix_sink, smtp_sink, token_endpoint

async def test_accepts_and_reuses_one_connection() -> None:
    with smtp_sink() as sink:
        results, transport = await send_all(sink.smtp_table(), *(message(n=i) for i in range(3)))
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 3
        assert results[0].code == 250
        assert sink.count("connect") == 1 and transport.connects == 1
        messages = sink.messages()
        assert len(messages) == 3
        assert b"\r\n.leading dot\r\n" in messages[0]  # dot-stuffing undone by the server


@pytest.mark.parametrize("pipelining", [False, True])
async def test_pipelining_is_used_where_the_server_offers_it(pipelining: bool) -> None:
    with smtp_sink({"pipelining": pipelining}) as sink:
        results, transport = await send_all(sink.smtp_table(), *(message(n=i) for i in range(3)))
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 3
        assert transport.pipelined == (3 if pipelining else 0)
        assert sink.count("connect") == 1 and len(sink.messages()) == 3
        assert [e["to"] for e in sink.events() if e["event"] == "rcpt"] == ["bob@example.org"] * 3


@pytest.mark.parametrize("pipelining", [False, True])
async def test_a_line_break_in_an_address_injects_no_command(pipelining: bool) -> None:
    # Pipelined commands are written by dripd, not by aiosmtplib's execute_command: the address
    # must still never carry a second command onto the wire.
    with smtp_sink({"pipelining": pipelining}) as sink:
        try:
            await send_all(sink.smtp_table(), message(to="bob@example.org>\r\nRCPT TO:<eve@example.org"))
        except ValueError as exc:
            assert "control character" in str(exc)
        assert [e["to"] for e in sink.events() if e["event"] == "rcpt" and "eve@" in e["to"]] == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_connections_carry_several_messages(security: str, tmp_path: Any) -> None:
    # The connection's protocol is swapped for the pipelining one after the greeting: STARTTLS
    # must then wrap it, and implicit TLS must hand it over, with no byte lost either way.
    cert, key = _self_signed(tmp_path)
    with starttls_server(cert, key, implicit=security == "tls") as server:
        table = {"host": "127.0.0.1", "port": server.port, "security": security, "ca_file": str(cert),
                 "timeout_seconds": 5}
        results, transport = await send_all(table, *(message(n=i) for i in range(3)))
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 3
        assert transport.connects == 1


@pytest.mark.parametrize(("rule", "outcome", "status"), [
    ({"on": "rcpt", "reply": "550 5.1.1 <bob@example.org>: user unknown"}, SendOutcome.PERMANENT, "5.1.1"),
    ({"on": "rcpt", "reply": "553 5.1.3 bad address syntax"}, SendOutcome.PERMANENT, "5.1.3"),
    ({"on": "rcpt", "reply": "554 no such mailbox here"}, SendOutcome.PERMANENT, None),
    ({"on": "rcpt", "reply": "450 4.2.0 greylisted, try again later"}, SendOutcome.TRANSIENT, "4.2.0"),
    ({"on": "rcpt", "reply": "451 4.7.1 please try again"}, SendOutcome.TRANSIENT, "4.7.1"),
    ({"on": "rcpt", "reply": "452 4.5.3 too many recipients"}, SendOutcome.TRANSIENT, "4.5.3"),
    ({"on": "rcpt", "reply": "550 5.7.515 Access denied, sending domain does not meet authentication"},
     SendOutcome.SENDER_BLOCKED, "5.7.515"),
    ({"on": "mail", "reply": "553 5.7.1 sender not owned by user"}, SendOutcome.SENDER_BLOCKED, "5.7.1"),
    ({"on": "mail", "reply": "550 5.1.8 bad sender domain"}, SendOutcome.SENDER_BLOCKED, "5.1.8"),
    ({"on": "data", "reply": "554 5.5.1 no valid recipients"}, SendOutcome.TRANSIENT, "5.5.1"),
    ({"on": "dot", "reply": "554 5.7.1 message rejected as spam"}, SendOutcome.SENDER_BLOCKED, "5.7.1"),
    ({"on": "dot", "reply": "550 5.1.1 recipient rejected after data"}, SendOutcome.PERMANENT, "5.1.1"),
    ({"on": "dot", "reply": "451 4.3.0 local error in processing"}, SendOutcome.TRANSIENT, "4.3.0"),
    ({"on": "dot", "reply": "552 5.2.2 mailbox full"}, SendOutcome.TRANSIENT, "5.2.2"),
])
@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
async def test_refusals_are_classified_and_the_connection_survives(rule: dict[str, Any], outcome: SendOutcome,
                                                                   status: str | None, pipelining: bool) -> None:
    rule = {**rule, "times": 1}
    with smtp_sink({"rules": [rule], "pipelining": pipelining}) as sink:
        results, transport = await send_all(sink.smtp_table(), message(n=1), message(n=2))
        assert results[0].outcome is outcome, results[0]
        assert results[0].status == status
        assert results[0].code == int(rule["reply"][:3])
        # After RSET the same connection carries the next message.
        assert results[1].outcome is SendOutcome.ACCEPTED
        assert sink.count("connect") == 1


async def test_421_closes_the_connection_and_the_next_send_reconnects() -> None:
    with smtp_sink({"rules": [{"on": "rcpt", "reply": "421 4.7.0 too busy, closing", "times": 1}]}) as sink:
        results, transport = await send_all(sink.smtp_table(), message(n=1), message(n=2))
        assert [r.outcome for r in results] == [SendOutcome.TRANSIENT, SendOutcome.ACCEPTED]
        assert sink.count("connect") == 2


async def test_connection_lost_before_the_final_dot_is_transient() -> None:
    # 16 MiB cannot sit in the socket buffers (the send buffer grows to tcp_wmem's 4 MiB, and the
    # server reads 1 kB), so the server's reset lands before the dot leaves. 4 MiB could: with
    # time between two writes (the GIL taken back after one that let go of it), all of it did.
    big = message(body=(b"y" * 998 + b"\r\n") * 16000)
    with smtp_sink({"rules": [{"on": "data", "action": "drop-mid-data", "times": 1}]}) as sink:
        results, _ = await send_all(sink.smtp_table(timeout_seconds=5), big, message(n=2))
        assert results[0].outcome is SendOutcome.TRANSIENT, results[0]
        assert "content" in results[0].detail
        assert results[1].outcome is SendOutcome.ACCEPTED


async def test_connection_lost_after_the_final_dot_is_uncertain() -> None:
    with smtp_sink({"rules": [{"on": "dot", "action": "drop", "times": 1}]}) as sink:
        results, _ = await send_all(sink.smtp_table(), message(n=1), message(n=2))
        assert results[0].outcome is SendOutcome.UNCERTAIN, results[0]
        assert results[1].outcome is SendOutcome.ACCEPTED


async def test_stall_before_data_times_out_as_transient() -> None:
    with smtp_sink({"rules": [{"on": "rcpt", "action": "stall", "times": 1}]}) as sink:
        # The sink stalls for an hour; the guard only keeps a broken timeout from hanging the
        # test. That the transport's own 0.5 s limit ended the wait is in the result's detail.
        with trio.fail_after(60):
            results, _ = await send_all(sink.smtp_table(timeout_seconds=0.5), message(n=1), message(n=2))
        assert results[0].outcome is SendOutcome.TRANSIENT and "0.5s" in results[0].detail
        assert results[1].outcome is SendOutcome.ACCEPTED


async def test_stall_after_the_final_dot_is_uncertain() -> None:
    with smtp_sink({"rules": [{"on": "dot", "action": "stall", "times": 1}]}) as sink:
        results, _ = await send_all(sink.smtp_table(timeout_seconds=0.5), message(n=1))
        assert results[0].outcome is SendOutcome.UNCERTAIN, results[0]


async def test_nothing_listening_is_transient() -> None:
    results, _ = await send_all({"host": "127.0.0.1", "port": free_port(), "security": "none"}, message())
    assert results[0].outcome is SendOutcome.TRANSIENT


async def test_starttls_required_but_not_offered_blocks_the_sender() -> None:
    with smtp_sink() as sink:
        results, _ = await send_all(sink.smtp_table(security="starttls"), message())
        assert results[0].outcome is SendOutcome.SENDER_BLOCKED, results[0]
        assert sink.count("mail") == 0


async def test_password_login_and_a_refused_login() -> None:
    os.environ["DRIPD_TEST_SMTP_PASSWORD"] = "right"
    with smtp_sink({"auth": {"user": "alice", "password": "right"}}) as sink:
        table = sink.smtp_table(username="alice", password_env="DRIPD_TEST_SMTP_PASSWORD")
        results, _ = await send_all(table, message())
        assert results[0].outcome is SendOutcome.ACCEPTED
        os.environ["DRIPD_TEST_SMTP_PASSWORD"] = "wrong"
        results, _ = await send_all(table, message())
        assert results[0].outcome is SendOutcome.SENDER_BLOCKED and results[0].status == "5.7.8"


async def test_xoauth2_with_the_refresh_token_flow(tmp_path: Any) -> None:
    # The token endpoint is a MOCK started by this test; the SMTP server checks the bearer token.
    with token_endpoint() as endpoint, smtp_sink({"auth": {"user": "alice@example.com", "token": "access-1"}}) as sink:
        (tmp_path / "refresh").write_text(endpoint.refresh_token + "\n")
        table = sink.smtp_table(username="alice@example.com", auth="xoauth2", token_endpoint=endpoint.url,
                                client_id=endpoint.client_id, refresh_token_file=str(tmp_path / "refresh"))
        results, _ = await send_all(table, message(n=1), message(n=2))
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 2
        assert endpoint.issued == ["access-1"]
        assert [e["ok"] for e in sink.events() if e["event"] == "auth"] == [True]


async def test_postfix_smtp_sink_faults() -> None:
    with postfix_sink() as sink:
        results, _ = await send_all(sink.smtp_table(), message(n=1))
        assert results[0].outcome is SendOutcome.ACCEPTED
    with postfix_sink("-Q", "rcpt") as sink:
        results, _ = await send_all(sink.smtp_table(), message())
        assert results[0].outcome is SendOutcome.TRANSIENT and results[0].code == 421
    with postfix_sink("-q", ".") as sink:
        results, _ = await send_all(sink.smtp_table(), message())
        assert results[0].outcome is SendOutcome.UNCERTAIN
    with postfix_sink("-f", "rcpt", "-B", "550 5.7.1 Client host rejected: listed at a blocklist") as sink:
        results, _ = await send_all(sink.smtp_table(), message())
        assert results[0].outcome is SendOutcome.SENDER_BLOCKED and results[0].status == "5.7.1"


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    # smtp-sink -t 1 drops a client that says nothing for a second, like a server's idle timeout.
    with postfix_sink("-t", "1") as sink:
        transport = SmtpTransport(MAILBOX, SmtpConfig.model_validate(sink.smtp_table()), context())
        async with trio_asyncio.open_loop():
            first = await transport.send(message(n=1))
            await trio.sleep(1.5)
            second = await transport.send(message(n=2))
            await transport.aclose()
        assert (first.outcome, second.outcome) == (SendOutcome.ACCEPTED, SendOutcome.ACCEPTED)
        assert transport.connects == 2


async def test_rcpt_probe_against_a_real_server() -> None:
    from dripd_smtp.verify import probe_rcpt

    with smtp_sink({"rules": [{"on": "rcpt", "match": "gone@", "reply": "550 5.1.1 no such user"},
                              {"on": "rcpt", "match": "later@", "reply": "450 4.2.0 greylisted"}]}) as sink:
        async with trio_asyncio.open_loop():
            ok = await probe_rcpt("bob@example.org", "127.0.0.1", port=sink.port, timeout=2)
            gone = await probe_rcpt("gone@example.org", "127.0.0.1", port=sink.port, timeout=2)
            later = await probe_rcpt("later@example.org", "127.0.0.1", port=sink.port, timeout=2)
        assert (ok.ok, gone.ok, later.ok) == (True, False, None)
        assert sink.count("dot") == 0  # a probe never sends a message
    async with trio_asyncio.open_loop():
        down = await probe_rcpt("bob@example.org", "127.0.0.1", port=free_port(), timeout=1)
    assert down.ok is None
