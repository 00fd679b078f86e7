"""The pure parts of webhooks: the Standard Webhooks signature (checked against the spec's
reference library), the retry rules, the payload per kind and its schema, the config table."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path

import pytest
import standardwebhooks

from dripd.config import parse_config
from dripd.errors import ConfigError
from dripd.events import PAYLOAD_OF, EventKind
from dripd.plugins import Plugins
from dripd.webhooks import payloads, retry, signing
from dripd.webhooks.records import EventFacts

PLUGINS = Plugins()


def test_signature_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    assert signing.secret_problem(secret) is None
    body = b'{"type":"sent","version":1}'
    now = int(time.time())  # the reference library checks the timestamp against the real clock
    headers = signing.headers(signing.key_of(secret), "msg_1_2", now, body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {"type": "sent", "version": 1}
    assert headers["webhook-signature"] == standardwebhooks.Webhook(secret).sign(
        "msg_1_2", dt.datetime.fromtimestamp(now, dt.timezone.utc), body.decode())
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.new_secret()).verify(body, headers)


@pytest.mark.parametrize(("secret", "problem"), [
    ("abcdefgh", "must start with 'whsec_'"), ("whsec_!!!?", "must be base64"),
    ("whsec_c2hvcnQ=", "at least 24 bytes")])
def test_bad_secrets_are_named_without_echoing_them(secret: str, problem: str) -> None:
    found = signing.secret_problem(secret)
    assert found is not None and problem in found and secret.removeprefix("whsec_") not in found


@pytest.mark.parametrize(("status", "outcome"), [
    (200, retry.Outcome.DELIVERED), (204, retry.Outcome.DELIVERED), (410, retry.Outcome.GONE),
    (404, retry.Outcome.RETRY), (500, retry.Outcome.RETRY), (301, retry.Outcome.RETRY), (None, retry.Outcome.RETRY)])
def test_what_an_answer_means(status: int | None, outcome: retry.Outcome) -> None:
    assert retry.outcome(status) is outcome


def test_backoff_doubles_with_jitter_up_to_the_cap_and_stops_at_the_period_end() -> None:
    rng = random.Random(7)
    for attempts in range(1, 30):
        step = min(retry.MAX_DELAY_SECONDS, retry.FIRST_DELAY_SECONDS * 2 ** (attempts - 1))
        delays = [retry.retry_delay(attempts, rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert max(delays) - min(delays) > step / 10  # jittered, not one value
    period_end = 1000.0 + 24 * 3600
    assert retry.next_attempt(period_end - 10, 20, 1000.0, 24, rng) == period_end  # the last one lands on the end
    assert retry.next_attempt(period_end, 21, 1000.0, 24, rng) is None
    assert retry.endpoint_pause(0) == 0 and retry.endpoint_pause(1) == 0.5
    assert retry.endpoint_pause(50) == retry.ENDPOINT_PAUSE_MAX_SECONDS


def test_every_kind_has_a_versioned_schema_its_body_matches() -> None:
    assert set(payloads.PAYLOAD_MODELS) == set(EventKind)
    facts = EventFacts(9, "bounced", 1_796_000_000.0, "sales", 3, "Welcome", 4, 5, "sam@example.org", 6, 7,
                       {"bounce_class": "hard", "status": "5.1.1"})
    body = json.loads(payloads.body(facts))
    assert body == {"type": "bounced", "version": 1, "timestamp": "2026-11-30T00:53:20Z", "eventId": 9, "data": {
        "mailboxId": "sales", "sequenceId": 3, "sequenceName": "Welcome", "enrollmentId": 4, "contactId": 5,
        "contactEmail": "sam@example.org", "stepId": 6, "messageId": 7, "bounceClass": "hard", "status": "5.1.1"}}
    model = payloads.PAYLOAD_MODELS[EventKind.BOUNCED]
    assert model.model_validate(body).model_dump(by_alias=True, exclude_none=True) == body
    schema = model.model_json_schema(by_alias=True)
    assert schema["properties"]["type"]["const"] == "bounced"
    data = schema["$defs"]["WebhookDataBounce"]["properties"]
    assert {"bounceClass", "contactEmail", "mailboxId"} <= set(data)
    for kind, cls in PAYLOAD_OF.items():
        fields = set(payloads.PAYLOAD_MODELS[kind].model_json_schema(by_alias=True)["$defs"][f"WebhookData{cls.__name__}"]["properties"])
        assert {"mailboxId", "contactId"} <= fields


def _config(tmp_path: Path, **table: object) -> None:
    parse_config({"mailboxes": [{"id": "m", "address": "m@example.com", "transport": "maildir",
                                 "maildir": {"path": str(tmp_path / "md")}}],
                  "webhooks": [{"name": "crm", "url": "https://crm.example.com/h", **table}]},
                 PLUGINS.config_sections(), PLUGINS.transports)


def test_config_table_names_the_key_and_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.secret"
    good.write_text(signing.new_secret() + "\n")
    _config(tmp_path, secret_file=str(good), events=["sent", "replied"])
    monkeypatch.setenv("HOOK_SECRET", signing.new_secret())
    _config(tmp_path, secret_env="HOOK_SECRET")
    cases = [
        ({"secret_file": str(tmp_path / "missing")}, "webhooks[0].secret_file: cannot read"),
        ({"secret_env": "NO_SUCH_VARIABLE_SET"}, "webhooks[0].secret_env: environment variable NO_SUCH_VARIABLE_SET"),
        ({}, "webhooks[0]: give exactly one of secret_file and secret_env"),
        ({"secret_file": str(good), "events": ["sent", "sold"]}, "webhooks[0].events: unknown event kind 'sold'"),
        ({"secret_file": str(good), "events": []}, "webhooks[0].events: must name at least one"),
        ({"secret_file": str(good), "retry_hours": 0.0}, "webhooks[0].retry_hours: must be a positive number"),
        ({"secret_file": str(good), "url": "ftp://x"}, "webhooks[0].url: must be an http:// or https:// URL"),
    ]
    for table, message in cases:
        with pytest.raises(ConfigError) as caught:
            _config(tmp_path, **table)
        assert caught.value.message.startswith(message), caught.value.message
    with pytest.raises(ConfigError, match="duplicate webhook name 'crm'"):
        parse_config({"mailboxes": [{"id": "m", "address": "m@example.com", "transport": "maildir",
                                     "maildir": {"path": str(tmp_path / "md")}}],
                      "webhooks": [{"name": "crm", "url": "http://a/", "secret_file": str(good)}] * 2},
                     PLUGINS.config_sections(), PLUGINS.transports)
