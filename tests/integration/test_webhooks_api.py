"""/api/webhooks and dripctl webhooks on the real daemon: endpoints made through the API next to
a config-defined one, secrets shown once and never listed, bad input named by field, and a bad
[[webhooks]] table refused at start-up with exit 78 naming the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import standardwebhooks

from dripd.webhooks.signing import new_secret
from tests.integration.daemon_process import DRIPD, DripdProcess, MakeDripd
from tests.integration.waiting import wait_until
from tests.integration.webhook_receiver import webhook_receiver


def test_endpoints_through_the_api_and_dripctl(tmp_path: Path, dripd_process: MakeDripd) -> None:
    secret_file = tmp_path / "crm.secret"
    config_secret = new_secret()
    secret_file.write_text(config_secret)
    with webhook_receiver(tmp_path / "receiver") as receiver:
        process = dripd_process(tmp_path, extra={"webhooks": [
            {"name": "crm", "url": receiver.url, "secret_file": str(secret_file), "events": ["replied"]}]})
        process.start()
        with process.client() as client:
            [configured] = client.get("/api/webhooks").json()["webhooks"]
            assert configured["name"] == "crm" and configured["source"] == "config"
            assert configured["events"] == ["replied"] and "secret" not in configured

            created = client.post("/api/webhooks", json={"name": "ops", "url": receiver.url, "events": ["sent"]})
            assert created.status_code == 201, created.text
            made = created.json()
            assert made["secret"].startswith("whsec_") and made["source"] == "api"
            listed = client.get("/api/webhooks").text
            assert made["secret"] not in listed and config_secret not in listed

            # A test send, signed with the secret the API handed out.
            tested = client.post(f"/api/webhooks/{made['id']}/test")
            assert tested.status_code == 200 and tested.json() == {
                "webhookId": made["id"], "ok": True, "status": 200, "error": None}
            request = receiver.requests()[-1]
            assert standardwebhooks.Webhook(made["secret"]).verify(request["body"], request["headers"])["type"] \
                == "webhook.test"

            for body, field in ((({"name": "x", "url": "ftp://example.com"}), "url"),
                                ({"name": "x", "url": receiver.url, "events": ["sent", "nope"]}, "events"),
                                ({"name": "x", "url": receiver.url, "secret": "plain"}, "secret"),
                                ({"name": "bad name", "url": receiver.url}, "name"),
                                ({"name": "x", "url": receiver.url, "concurrency": 0}, "concurrency")):
                refused = client.post("/api/webhooks", json=body)
                assert refused.status_code == 422, refused.text
                assert field in refused.text, refused.text
            duplicate = client.post("/api/webhooks", json={"name": "crm", "url": receiver.url})
            assert duplicate.status_code == 409, duplicate.text

            read_only = client.delete(f"/api/webhooks/{configured['id']}")
            assert read_only.status_code == 409 and "config" in read_only.json()["error"]["message"]
            assert client.get("/api/webhooks/999999").status_code == 404
            assert client.post("/api/webhooks/deliveries/999999/replay").status_code == 404
            assert client.get("/api/webhooks/deliveries/999999/payload").status_code == 404
            assert client.get("/api/webhooks/deliveries", params={"status": "lost"}).status_code == 422

        listed_ctl = process.dripctl("webhooks", "list")
        assert listed_ctl.returncode == 0 and "ops" in listed_ctl.stdout and "crm" in listed_ctl.stdout
        assert process.dripctl("webhooks", "rm", "ops").returncode == 0
        missing = process.dripctl("webhooks", "test", "ops")
        assert missing.returncode != 0 and "no webhook endpoint named 'ops'" in missing.stderr
        assert process.stop() == 0
    assert config_secret not in process.log() and made["secret"] not in process.log()


def test_a_bad_webhooks_table_exits_78_naming_the_key(tmp_path: Path) -> None:
    secret_file = tmp_path / "short.secret"
    secret_file.write_text("whsec_c2hvcnQ=")  # "short": fewer key bytes than the spec's libraries make
    process = DripdProcess(tmp_path, extra={"webhooks": [
        {"name": "crm", "url": "http://127.0.0.1:9/hooks", "secret_file": str(secret_file)}]})
    result = subprocess.run([str(DRIPD), "--check-config", "-c", str(process.config_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 78, result.stderr
    assert "webhooks[0].secret_file" in result.stderr and "at least 24 bytes" in result.stderr
    assert "c2hvcnQ" not in result.stderr, "the secret was echoed"
    process.write_config({**process.config, "webhooks": [{"name": "crm", "url": "http://127.0.0.1:9/hooks"}]})
    result = subprocess.run([str(DRIPD), "--check-config", "-c", str(process.config_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 78 and "webhooks[0]: give exactly one of secret_file and secret_env" in result.stderr


def test_a_reload_puts_new_endpoints_in_force(tmp_path: Path, dripd_process: MakeDripd) -> None:
    secret_file = tmp_path / "s.secret"
    secret_file.write_text(new_secret())
    with webhook_receiver(tmp_path / "receiver") as receiver:
        process = dripd_process(tmp_path)
        process.start()
        with process.client() as client:
            assert client.get("/api/webhooks").json()["webhooks"] == []
        process.write_config({**process.config, "webhooks": [
            {"name": "late", "url": receiver.url, "secret_file": str(secret_file)}]})
        process.signal(1)  # SIGHUP

        def listed() -> bool:
            with process.client() as client:
                return bool(client.get("/api/webhooks").json()["webhooks"])

        wait_until(listed, timeout=30, what=process.log)
        assert process.dripctl("webhooks", "test", "late").returncode == 0
        assert len(receiver.requests()) == 1
        assert process.stop() == 0
