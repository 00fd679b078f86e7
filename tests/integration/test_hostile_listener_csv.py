"""Issues 20.3 and 21.8 against the real daemon process: body size limits (413 from
Content-Length and while streaming, with the audit's sizes), string length limits, and the CSV
import: streamed in batches, the delimiter sniffed, its progress visible as an import job."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.integration.daemon_process import DripdProcess, running_dripd
from tests.integration.waiting import wait_until

CSV_LIMIT = 2 * 1024 * 1024  # small, so streaming past it takes a moment, not a minute
BATCH = 100


@pytest.fixture(scope="module")
def dripd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DripdProcess]:
    limits = {"csv_body_bytes": CSV_LIMIT, "import_batch_rows": BATCH}
    with running_dripd(tmp_path_factory.mktemp("hostile_csv"), api={"limits": limits}) as process:
        yield process


@pytest.fixture
def api(dripd: DripdProcess) -> Iterator[httpx.Client]:
    with dripd.client() as client:
        yield client


def sequence(api: httpx.Client, name: str) -> int:
    created = api.post("/api/sequences", json={"name": name, "mailboxId": "sales"})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def csv_post(api: httpx.Client, sequence_id: int, content: Any, **params: str) -> httpx.Response:
    return api.post(f"/api/sequences/{sequence_id}/enroll/csv", params=params, content=content,
                    headers={"content-type": "text/csv"})


def rows(count: int, start: int = 0, delimiter: str = ",") -> str:
    return "".join(f"user{n}@example.org{delimiter}Name{n}{delimiter}Co {n}\n" for n in range(start, start + count))


def raw_request(dripd: DripdProcess, head: bytes) -> bytes:
    """Send only a request head; the daemon's whole answer (it closes after a refusal)."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(dripd.socket))
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_declared_oversize_bodies_get_413_before_any_byte_is_read(dripd: DripdProcess, api: httpx.Client) -> None:
    seq = sequence(api, "oversize")
    # The audit's sizes: a 200 MB JSON body and a 359 MB CSV, refused from the headers alone.
    json_answer = raw_request(dripd, b"POST /api/contacts HTTP/1.1\r\nHost: dripd\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 200000000\r\n\r\n")
    assert json_answer.startswith(b"HTTP/1.1 413") and b'"code":"too_large"' in json_answer
    csv_answer = raw_request(dripd, f"POST /api/sequences/{seq}/enroll/csv HTTP/1.1\r\nHost: dripd\r\n"
                                    f"Content-Type: text/csv\r\nContent-Length: 359000000\r\n\r\n".encode())
    assert csv_answer.startswith(b"HTTP/1.1 413") and str(CSV_LIMIT).encode() in csv_answer


def test_streamed_bodies_get_413_as_they_pass_the_limit(api: httpx.Client) -> None:
    seq = sequence(api, "streamed")

    def json_chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it early
        yield b'{"email": "big@example.org", "firstName": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    refused = api.post("/api/contacts", content=json_chunks(), headers={"content-type": "application/json"})
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_large"

    def csv_chunks() -> Iterator[bytes]:
        yield b"email,firstName,company\n"
        for block in range(CSV_LIMIT // 30000 + 10):
            yield rows(1000, block * 1000).encode()

    refused = csv_post(api, seq, csv_chunks(), importId="too-big")
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["details"]["importId"] == "too-big"
    assert api.get("/api/imports/too-big").json()["state"] == "failed"
    assert api.get(f"/api/sequences/{seq}/contacts").json()["total"] == 0  # pass one enrolls nobody


def test_a_string_over_the_limit_is_refused_naming_its_field(api: httpx.Client) -> None:
    seq = sequence(api, "long names")
    answer = api.post(f"/api/sequences/{seq}/enroll",
                      json={"contactEmail": "long@example.org", "mergeFields": {"firstName": "x" * 100_001}})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["field"] == "mergeFields.firstName"
    assert "100000 characters" in answer.json()["error"]["message"]
    bad = csv_post(api, seq, "email,firstName\nlong@example.org," + "y" * 150_000 + "\n")
    assert bad.status_code == 422 and "line 2: firstName: is longer than 100000 characters" in bad.text


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_sniffed(api: httpx.Client, delimiter: str) -> None:
    seq = sequence(api, f"delimiter {delimiter!r}")
    text = f"email{delimiter}firstName{delimiter}company\n" + rows(3, delimiter=delimiter)
    text += f'"q@example.org"{delimiter}"Quoted{delimiter} Name"{delimiter}"A, B; C"\n'
    done = csv_post(api, seq, text, importId=f"sniff-{ord(delimiter)}")
    assert done.status_code == 201, done.text
    assert (done.json()["rows"], done.json()["enrolled"]) == (4, 4)
    contacts = api.get(f"/api/sequences/{seq}/contacts").json()
    assert contacts["total"] == 4
    job = api.get(f"/api/imports/sniff-{ord(delimiter)}").json()
    assert (job["state"], job["rows"], job["enrolled"]) == ("done", 4, 4)


def test_import_progress_is_visible_while_it_runs(api: httpx.Client, dripd: DripdProcess) -> None:
    seq = sequence(api, "watched")
    release = threading.Event()
    answers: list[httpx.Response] = []

    def body() -> Iterator[bytes]:
        yield b"email;firstName;company\n"
        yield rows(1000, delimiter=";").encode()
        assert release.wait(60), "the test never released the upload"
        yield rows(1500, 1000, delimiter=";").encode()

    def upload() -> None:
        with dripd.client() as uploader:
            answers.append(csv_post(uploader, seq, body(), importId="watched"))

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        seen = wait_until(lambda: (lambda r: r.json() if r.status_code == 200 and r.json()["rows"] >= 1000 else None)(
            api.get("/api/imports/watched")), timeout=30, what="the job's first 1000 rows")
        assert seen["state"] == "receiving" and seen["enrolled"] == 0 and seen["sequenceId"] == seq
        assert any(job["id"] == "watched" for job in api.get("/api/imports").json()["imports"])
    finally:
        release.set()
        thread.join(60)
    assert answers and answers[0].status_code == 201, answers
    assert answers[0].json()["enrolled"] == 2500
    assert api.get("/api/imports/watched").json()["state"] == "done"
    assert api.get("/api/imports/no-such-import").status_code == 404


def test_a_store_refusal_stops_at_its_batch_and_says_what_was_enrolled(api: httpx.Client) -> None:
    seq = sequence(api, "partial")
    taken = 450  # in the fifth batch of 100
    assert api.post(f"/api/sequences/{seq}/enroll", json={"contactEmail": f"user{taken}@example.org"}).status_code == 201
    refused = csv_post(api, seq, "email,firstName,company\n" + rows(1000), importId="partial")
    assert refused.status_code == 409, refused.text
    details = refused.json()["error"]["details"]
    assert details["enrolled"] == 400 and details["refused"][0]["line"] == taken + 2
    assert api.get(f"/api/sequences/{seq}/contacts").json()["total"] == 401
    skipped = csv_post(api, seq, "email,firstName,company\n" + rows(1000), skipInvalid="true")
    assert skipped.status_code == 201
    assert (skipped.json()["enrolled"], skipped.json()["skippedCount"]) == (599, 401)


def test_dripctl_enroll_csv_shows_the_server_side(dripd: DripdProcess, api: httpx.Client, tmp_path: Path) -> None:
    sequence(api, "Dripctl import")
    path = tmp_path / "people.csv"
    path.write_text("email\tfirstName\tcompany\n" + rows(2000, delimiter="\t"))
    done = dripd.dripctl("enroll", "Dripctl import", "--csv", str(path), "--progress")
    assert done.returncode == 0, done.stderr
    assert "2000 row(s): 2000 enrolled" in done.stdout
    assert "server: done, 2000 row(s) checked, 0 invalid, 2000 enrolled" in done.stderr
