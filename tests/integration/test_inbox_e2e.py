"""The reply inbox end to end: the real daemon sends through its Maildir transport, a reply
written the way German Outlook writes it is delivered into the real Dovecot, the real IMAP
detector sees it, and it shows through the daemon's API and dripctl: headers, new text, category,
the raw message's folder and UID; the user's mailbox is left unread. A person's relabel to
an unsubscribe request suppresses the address, and an answer goes out threaded under the reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.daemon_process import MakeDripd, fast_mailbox
from tests.integration.servers import Dovecot
from tests.integration.waiting import wait_until


def outlook_reply(to: str, sender: str, message_id: str, subject: str) -> bytes:
    return (
        f"From: =?utf-8?q?J=C3=BCrgen_Wei=C3=9F?= <{sender}>\r\nTo: Sales <{to}>\r\nSubject: AW: {subject}\r\n"
        "Date: Thu, 3 Dec 2026 10:15:00 +0100\r\nMessage-ID: <AM0PR01MB77@eurprd01.prod.outlook.com>\r\n"
        f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\nContent-Language: de-DE\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hallo,\r\n\r\nklingt interessant. Schicken Sie mir bitte mehr Informationen.\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
        "J=C3=BCrgen\r\n\r\n________________________________\r\nVon: Sales <" + to + ">\r\n"
        "Gesendet: Donnerstag, 3. Dezember 2026 09:00\r\nAn: J=C3=BCrgen Wei=C3=9F <" + sender + ">\r\n"
        f"Betreff: {subject}\r\n\r\nHallo J=C3=BCrgen, kurze Frage.\r\n"
    ).encode()


def test_a_reply_through_dovecot_shows_in_the_api_and_dripctl(tmp_path: Path, dripd_process: MakeDripd,
                                                              imap_server: Dovecot) -> None:
    user = imap_server.new_user("inbox")
    box = fast_mailbox(tmp_path, address=user, imap=imap_server.imap_table(user, idle_seconds=600))
    process = dripd_process(tmp_path, mailboxes=[box])
    process.start()
    try:
        with process.client() as client:
            created = client.post("/api/sequences", json={
                "name": "inbox", "mailboxId": "sales",
                "steps": [{"type": "email", "subject": "Kurze Frage", "body": "<p>Hallo, kurze Frage.</p>"},
                          {"type": "wait", "waitDays": 2},
                          {"type": "email", "subject": "", "body": "<p>Nachfrage</p>"}]})
            assert created.status_code == 201, created.text
            sequence_id = created.json()["id"]
            enrolled = client.post(f"/api/sequences/{sequence_id}/enroll", json={"contactEmail": "juergen@kunde.example"})
            assert enrolled.status_code == 201, enrolled.text
            assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
            [sent] = process.wait_for_messages(1)

            imap_server.deliver(user, outlook_reply(user, "juergen@kunde.example", str(sent["Message-ID"]),
                                                    "Kurze Frage"))

            def listed() -> dict[str, Any] | None:
                page: dict[str, Any] = client.get("/api/replies", params={"sequence": sequence_id}).json()
                return page if page["total"] else None

            page = wait_until(listed, timeout=60, what=process.log)
            [item] = page["replies"]
            reply = client.get(f"/api/replies/{item['id']}").json()
            assert reply["from"] == "Jürgen Weiß <juergen@kunde.example>"
            assert reply["subject"] == "AW: Kurze Frage"
            assert reply["date"] == "Thu, 3 Dec 2026 10:15:00 +0100"
            assert reply["messageId"] == "<AM0PR01MB77@eurprd01.prod.outlook.com>"
            assert reply["text"] == ("Hallo,\n\nklingt interessant. Schicken Sie mir bitte mehr Informationen.\n\n"
                                     "Grüße\nJürgen")
            assert (reply["category"], reply["categoryBy"], reply["kind"]) == ("interested", "rules", "replied")
            assert (reply["contactEmail"], reply["mailboxId"], reply["sequenceId"]) == (
                "juergen@kunde.example", "sales", sequence_id)
            assert reply["raw"]["folder"] == "INBOX" and reply["raw"]["uid"] == 1 and reply["raw"]["uidvalidity"]
            assert reply["unread"] is True
            assert not any("\\Seen" in flags for flags in imap_server.flags(user))  # the user's mailbox is untouched
            assert client.get("/api/replies", params={"category": "not_interested"}).json()["total"] == 0
            assert client.get("/api/replies", params={"since": "2999-01-01T00:00:00"}).json()["total"] == 0
            paged = client.get("/api/replies", params={"since": "2020-01-01T00:00:00+01:00", "limit": 1}).json()
            assert (paged["total"], paged["nextOffset"], paged["limit"]) == (1, None, 1)
            assert client.get("/api/replies", params={"offset": 1}).json()["replies"] == []
            bad = client.get("/api/replies", params={"category": "spam"})
            assert bad.status_code == 422 and "category" in bad.text

            # dripctl: list, show (marks it read in dripd only), label.
            listing = process.dripctl("inbox", "list", "--unread")
            assert listing.returncode == 0 and "juergen@kunde.example" in listing.stdout and "interested" in listing.stdout
            shown = process.dripctl("inbox", "show", str(reply["id"]))
            assert shown.returncode == 0 and "klingt interessant" in shown.stdout and "INBOX UID 1" in shown.stdout
            assert client.get("/api/replies", params={"unread": "true"}).json()["total"] == 0
            assert not any("\\Seen" in flags for flags in imap_server.flags(user))
            labelled = process.dripctl("--json", "inbox", "label", str(reply["id"]), "unsubscribe_request")
            assert labelled.returncode == 0, labelled.stderr
            assert json.loads(labelled.stdout)["relabels"][0]["previous"] == "interested"
            suppressed = client.get("/api/suppressions").json()
            assert "juergen@kunde.example" in json.dumps(suppressed)
            unread = client.patch(f"/api/replies/{reply['id']}", json={"read": False})
            assert unread.status_code == 200 and unread.json()["unread"] is True
            assert client.patch(f"/api/replies/{reply['id']}", json={"category": 3}).status_code == 422
            assert client.patch("/api/replies/999999", json={"read": True}).status_code == 404
            refused = process.dripctl("inbox", "label", str(reply["id"]), "spam")
            assert refused.returncode != 0 and "invalid choice" in refused.stderr

            # An answer from dripd, threaded under the reply, through the mailbox's transport.
            answered = client.post(f"/api/replies/{reply['id']}/answer", json={"text": "Gerne, anbei die Infos."})
            assert answered.status_code == 200, answered.text
            assert answered.json()["answers"][0]["status"] == "accepted"
            messages = process.wait_for_messages(2)
            answer = messages[-1]
            assert answer["In-Reply-To"] == "<AM0PR01MB77@eurprd01.prod.outlook.com>"
            assert str(sent["Message-ID"]) in str(answer["References"])
            assert (str(answer["Subject"]), str(answer["To"])) == ("AW: Kurze Frage", "juergen@kunde.example")
            assert client.post("/api/replies/999999/answer", json={"text": "x"}).status_code == 404
            by_ctl = process.dripctl("inbox", "answer", str(reply["id"]), "--file", "-", input="Noch eine Frage?\n".encode())
            assert by_ctl.returncode == 0 and "answered" in by_ctl.stdout, by_ctl.stderr
            last = process.wait_for_messages(3)[-1].get_body(("plain",))
            assert last is not None and "Noch eine Frage?" in last.get_content()
    finally:
        assert process.stop() == 0
