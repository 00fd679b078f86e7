"""Webhooks from the real dripd process to a real receiver process on loopback: Standard
Webhooks signatures checked with the spec's reference library, retries after 500s and while
the receiver is down, 410 disabling the endpoint, giving up after the retry period and a replay,
and kill -9 of dripd mid-delivery losing nothing. Real time: retry delays are set to tenths of
a second in the config, and every wait is bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import standardwebhooks

from dripd.webhooks.signing import new_secret
from tests.integration.daemon_process import DripdProcess, MakeDripd
from tests.integration.waiting import wait_until
from tests.integration.webhook_receiver import WebhookReceiver, webhook_receiver


def endpoint(tmp_path: Path, url: str, **overrides: Any) -> tuple[dict[str, Any], str]:
    secret = new_secret()
    path = tmp_path / "webhook.secret"
    path.write_text(secret + "\n")
    table = {"name": "crm", "url": url, "secret_file": str(path), "events": ["sent"], "retry_first_seconds": 0.1,
             "timeout_seconds": 5}
    table.update(overrides)
    return {key: value for key, value in table.items() if value is not None}, secret


def send_to(client: httpx.Client, count: int, name: str = "hooks") -> int:
    """A started one-email sequence with ``count`` contacts: ``count`` sent events."""
    # autoComplete asked for: the sequence_completed event is one of the kinds delivered.
    created = client.post("/api/sequences", json={"name": name, "mailboxId": "sales", "autoComplete": True, "steps": [
        {"type": "email", "subject": "Hello", "body": "<p>hi</p>"}]})
    assert created.status_code == 201, created.text
    sequence_id = int(created.json()["id"])
    csv = "email\n" + "".join(f"{name}{i:04d}@example.org\n" for i in range(count))
    enrolled = client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                           headers={"content-type": "text/csv"})
    assert enrolled.status_code == 201, enrolled.text
    assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
    return sequence_id


def deliveries(process: DripdProcess, **params: Any) -> list[dict[str, Any]]:
    with process.client() as client:
        answer = client.get("/api/webhooks/deliveries", params={"limit": 1000, **params})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["deliveries"])


def delivered_ids(receiver: WebhookReceiver) -> set[str]:
    return {r["headers"]["webhook-id"] for r in receiver.requests() if 200 <= r["status"] < 300}


def test_signed_payloads_verify_with_the_reference_library(tmp_path: Path, dripd_process: MakeDripd) -> None:
    with webhook_receiver(tmp_path / "receiver") as receiver:
        table, secret = endpoint(tmp_path, receiver.url, events=None)
        process = dripd_process(tmp_path, extra={"webhooks": [table]})
        process.start()
        with process.client() as client:
            sequence_id = send_to(client, 3)
        # enrolled x3, sent x3, completed x3, sequence_completed: every kind was asked for
        wait_until(lambda: len(receiver.requests()) >= 10, timeout=60, what=process.log)
        verifier = standardwebhooks.Webhook(secret)
        kinds = []
        for request in receiver.requests():
            payload = verifier.verify(request["body"], request["headers"])  # raises on a bad signature
            assert payload["version"] == 1 and payload["timestamp"].endswith("Z")
            kinds.append(payload["type"])
            if payload["type"] == "sent":
                assert payload["data"]["sequenceId"] == sequence_id
                assert payload["data"]["sequenceName"] == "hooks"
                assert payload["data"]["contactEmail"].endswith("@example.org")
                assert payload["data"]["mailboxId"] == "sales"
        assert set(kinds) == {"completed", "enrolled", "sequence_completed", "sent"}
        tampered = dict(receiver.requests()[0])
        try:
            verifier.verify(tampered["body"].replace("hooks", "hookz"), tampered["headers"])
        except standardwebhooks.webhooks.WebhookVerificationError:
            pass
        else:
            raise AssertionError("a tampered body verified")
        # The payload endpoint serves the exact bytes that were signed.
        first = deliveries(process)[-1]
        with process.client() as client:
            body = client.get(f"/api/webhooks/deliveries/{first['id']}/payload").text
        assert any(r["body"] == body for r in receiver.requests())
        assert process.stop() == 0
    assert secret not in process.log(), "the secret reached the log"


def test_retries_after_500s_and_a_dead_receiver(tmp_path: Path, dripd_process: MakeDripd) -> None:
    receiver_root = tmp_path / "receiver"
    with webhook_receiver(receiver_root, statuses=[500, 503, 500]) as receiver:
        port = receiver.port
        table, _ = endpoint(tmp_path, receiver.url)
        process = dripd_process(tmp_path, extra={"webhooks": [table]})
        process.start()
        with process.client() as client:
            send_to(client, 1)
        wait_until(lambda: delivered_ids(receiver), timeout=60, what=lambda: f"{receiver.requests()}\n{process.log()}")
        statuses = [r["status"] for r in receiver.requests()]
        assert statuses == [500, 503, 500, 200]
        assert len({r["headers"]["webhook-id"] for r in receiver.requests()}) == 1, "webhook-id changed on retry"
        [delivery] = deliveries(process)
        assert delivery["status"] == "delivered" and delivery["attempts"] == 4

    # The receiver is gone: the next deliveries fail to connect and stay pending, visible.
    with process.client() as client:
        send_to(client, 2, name="later")

    def failing() -> list[dict[str, Any]] | None:
        found = [d for d in deliveries(process, status="pending") if d["attempts"] >= 1]
        return found if len(found) == 2 else None

    pending = wait_until(failing, timeout=60, what=process.log)
    assert all(d["lastStatus"] is None and d["lastError"] for d in pending)
    with webhook_receiver(receiver_root, port=port) as receiver:  # back on the same port
        wait_until(lambda: not deliveries(process, status="pending"), timeout=60, what=process.log)
        assert len(delivered_ids(receiver)) == 3  # the first delivery's id, and the two new ones
    assert process.stop() == 0


def test_410_disables_and_the_retry_period_ends_in_failed_then_replay(tmp_path: Path,
                                                                       dripd_process: MakeDripd) -> None:
    with webhook_receiver(tmp_path / "gone", then=410) as gone_receiver, \
            webhook_receiver(tmp_path / "erring", then=500) as receiver:
        gone, _ = endpoint(tmp_path, gone_receiver.url, name="gone")
        brief, _ = endpoint(tmp_path, receiver.url, name="brief", retry_hours=0.0005)  # 1.8 s of retries
        process = dripd_process(tmp_path, extra={"webhooks": [gone, brief]})
        process.start()
        with process.client() as client:
            send_to(client, 1)

        def settled() -> list[dict[str, Any]] | None:
            found = deliveries(process, status="failed")
            return found if len(found) == 2 else None

        failed = wait_until(settled, timeout=60, what=lambda: f"{deliveries(process)}\n{process.log()}")
        listed = process.dripctl("--json", "webhooks", "list")
        assert listed.returncode == 0, listed.stderr
        hooks = {h["name"]: h for h in json.loads(listed.stdout)["webhooks"]}
        assert not hooks["gone"]["enabled"] and "410" in hooks["gone"]["disabledReason"]
        assert hooks["brief"]["enabled"]
        assert len(gone_receiver.requests()) == 1
        gave_up = next(d for d in failed if d["webhookId"] == hooks["brief"]["id"])
        assert gave_up["attempts"] >= 2 and gave_up["lastStatus"] == 500

        receiver.set_plan(then=200)
        replayed = process.dripctl("webhooks", "replay", str(gave_up["id"]))
        assert replayed.returncode == 0, replayed.stderr
        wait_until(lambda: any(d["id"] == gave_up["id"] for d in deliveries(process, status="delivered")),
                   timeout=30, what=process.log)
        # A disabled endpoint still takes a test send; enabling it lets the outbox flow again.
        gone_receiver.set_plan(then=200)
        tested = process.dripctl("webhooks", "test", "gone")
        assert tested.returncode == 0 and "200" in tested.stdout, tested.stdout + tested.stderr
        assert gone_receiver.bodies()[-1]["type"] == "webhook.test"
        assert process.dripctl("webhooks", "enable", "gone").returncode == 0
        with process.client() as client:
            send_to(client, 1, name="again")
        wait_until(lambda: len(delivered_ids(gone_receiver)) == 2, timeout=30, what=process.log)
        assert process.stop() == 0


def test_kill_9_mid_delivery_loses_nothing(tmp_path: Path, dripd_process: MakeDripd) -> None:
    count = 40
    with webhook_receiver(tmp_path / "receiver", hang_seconds=0.5) as receiver:
        table, _ = endpoint(tmp_path, receiver.url, concurrency=4)
        process = dripd_process(tmp_path, extra={"webhooks": [table]})
        process.start()
        with process.client() as client:
            send_to(client, count)
        process.wait_for_messages(count)
        wait_until(lambda: len(receiver.requests()) >= 2, timeout=60, what=process.log)
        process.kill()  # with deliveries in flight (the receiver takes 0.5 s over each) and more queued
        assert len(delivered_ids(receiver)) < count, "everything was delivered before the kill; slow the receiver"
        receiver.set_plan(then=200)
        process.start()
        wait_until(lambda: len(delivered_ids(receiver)) >= count, timeout=90,
                   what=lambda: f"{len(delivered_ids(receiver))} of {count}\n{process.log()}")
        ids = delivered_ids(receiver)
        assert len(ids) == count, "an event was delivered under two webhook-ids"
        sent = {json.loads(r["body"])["data"]["contactEmail"] for r in receiver.requests()}
        assert sent == {f"hooks{i:04d}@example.org" for i in range(count)}
        assert not deliveries(process, status="pending")
        assert process.stop() == 0
