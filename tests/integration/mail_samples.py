"""Messages the integration tests deliver into Dovecot: a reply, an out-of-office, a DSN."""

from __future__ import annotations


def reply(to: str, sender: str, message_id: str, subject: str = "Re: Hi", n: int = 1) -> bytes:
    return (
        f"From: Bob <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        f"Message-ID: <reply-{n}@example.org>\r\nIn-Reply-To: {message_id}\r\nReferences: {message_id}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nSounds good, let's talk.\r\n\r\n> Hello Bob\r\n"
    ).encode()


def out_of_office(to: str, sender: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: Automatic reply: Hi\r\nAuto-Submitted: auto-replied\r\n"
        f"X-Autoreply: yes\r\nMessage-ID: <ooo-1@example.org>\r\nIn-Reply-To: {message_id}\r\n"
        f"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nI am out of the office until 7 December 2026.\r\n"
    ).encode()


def dsn(to: str, failed: str, message_id: str) -> bytes:
    boundary = "dsn-boundary-1"
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <dsn-1@mx.example.com>\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
        f"be delivered to one or more recipients.\r\n\r\n<{failed}>: host mx.example.org said: 550 5.1.1 "
        f"<{failed}>: Recipient address rejected: User unknown\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nOriginal-Recipient: rfc822;{failed}\r\nAction: failed\r\n"
        f"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected: User unknown\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {to}\r\nTo: {failed}\r\nSubject: Hi\r\n"
        f"Message-ID: {message_id}\r\n\r\n--{boundary}--\r\n"
    ).encode()
