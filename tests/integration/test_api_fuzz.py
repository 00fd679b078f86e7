"""The control API fuzzed from its own OpenAPI document (schemathesis, a real part) against the
real daemon over TCP with a Bearer token: no request may get a 5xx."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.integration.daemon_process import MakeDripd, free_port

ST = Path(sys.executable).parent / "st"


def test_no_server_errors_from_the_openapi_document(tmp_path: Path, dripd_process: MakeDripd) -> None:
    port, token = free_port(), "fuzz-" + "t" * 20
    process = dripd_process(tmp_path, api={"listen": f"127.0.0.1:{port}",
                                          "tokens": ["sha256:" + hashlib.sha256(token.encode()).hexdigest()]})
    process.start()
    try:
        result = subprocess.run(
            [str(ST), "run", f"http://127.0.0.1:{port}/api/openapi.json", "--checks", "not_a_server_error",
             "-H", f"Authorization: Bearer {token}", "--max-examples", "15", "--workers", "1",
             "--seed", "20261125"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        assert process.stop() == 0
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert "Server error" not in summary, summary
    assert "ERROR dripd.api" not in process.log(), process.log()[-3000:]
    print(summary.splitlines()[-1])


# Bodies no client should send, each once to every operation that takes a body (issue 20.4, 20.5,
# 21.5, 21.7): numbers no clock can hold, lone surrogates, control characters, unsendable
# addresses, unreadable JSON, the wrong Content-Type, an oversized CSV field. Bounded: about
# 25 operations x 14 bodies, a few seconds.
_JSON = "application/json"
HOSTILE: list[tuple[str, bytes]] = [
    (_JSON, b'{"type": "wait", "waitDays": 1e308, "autoReplyDelayDays": 1e308, "name": "n", "mailboxId": "sales"}'),
    (_JSON, b'{"type": "wait", "waitDays": NaN, "autoReplyDelayDays": NaN}'),
    (_JSON, b'{"type": "wait", "waitHours": Infinity, "stepIndex": Infinity}'),
    (_JSON, b'{"type": "wait", "waitHours": 1e20, "delayMs": -1e308}'),
    (_JSON, b'{"email": "a@example.org", "firstName": "\\ud800", "name": "\\udfff", "fields": {"\\ud800": "x"}}'),
    (_JSON, b'{"email": "a@example.org", "firstName": "A\\r\\nBcc: b@example.org", "name": "n\\u0000"}'),
    (_JSON, '{"email": "jos\u00e9@example.org", "contactEmail": "a\\\\b@example.org"}'.encode()),
    (_JSON, b'{"type": "email", "subject": "Hi {{firstName", "body": "x", "waitDays": 2}'),
    (_JSON, b'{"type": "email", "subject": "' + b"s" * 100_000 + b'", "body": "x"}'),
    (_JSON, b'{"email":'),
    (_JSON, b"[1, 2, 3]"),
    ("text/plain", b'{"email": "a@example.org"}'),
    ("text/csv", b"email,note\na@example.org," + b"x" * 131_073 + b"\n"),
    ("text/csv", "email,firstName\nb\u00e4d@example.org,A\nok@example.org,\"B\r\nC\"\n".encode()),
]


def test_hostile_bodies_to_every_operation_get_no_server_error(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    try:
        with process.client() as api:
            sequence = api.post("/api/sequences", json={"name": "target", "mailboxId": "sales", "steps": [
                {"type": "email", "subject": "Hi", "body": "<p>Hi</p>"}]}).json()
            contact = api.post("/api/contacts", json={"email": "target@example.org"}).json()
            assert api.post("/api/lists", json={"name": "target"}).status_code == 201
            ids = {"sequence_id": sequence["id"], "contact_id": contact["id"], "list_id": 1, "index": 0}
            document = api.get("/api/openapi.json").json()
            sent = 0
            for template, operations in document["paths"].items():
                path = template.format(**{name: ids.get(name, 1) for name in _parameters(template)})
                for method, operation in operations.items():
                    if "requestBody" not in operation:
                        continue
                    for content_type, body in HOSTILE:
                        response = api.request(method.upper(), path, content=body,
                                               headers={"Content-Type": content_type})
                        sent += 1
                        assert response.status_code < 500, (method, path, body[:120], response.text)
                        if response.status_code >= 400:  # refused in the documented shape
                            assert response.json()["error"]["code"], response.text
        assert sent >= 10 * len(HOSTILE), sent
    finally:
        assert process.stop() == 0
    assert "ERROR dripd.api" not in process.log(), process.log()[-3000:]


def _parameters(template: str) -> list[str]:
    return [part[1:-1] for part in template.split("/") if part.startswith("{") and part.endswith("}")]
