"""Out-of-office return dates in the languages cold outreach meets most (the classifier reads
them; policy resumes the contact the day after)."""

from __future__ import annotations

import datetime as dt

import pytest

from dripd import policy
from dripd_imap.classify import classify


def _auto_reply(subject: str, body: str) -> bytes:
    return (f"From: Ana <ana@empresa.es>\r\nTo: me@example.org\r\nSubject: {subject}\r\n"
            "Date: Mon, 14 Dec 2026 09:00:00 +0100\r\nAuto-Submitted: auto-replied\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n").encode()


@pytest.mark.parametrize(("subject", "body", "expected"), [
    ("Out of office", "I am out of the office and will be back on January 4th, 2027.", dt.date(2027, 1, 4)),
    ("Abwesenheitsnotiz", "Ich bin bis zum 04.01.2027 nicht im Büro.", dt.date(2027, 1, 4)),
    ("Absence", "Je suis absent et serai de retour le 4 janvier 2027.", dt.date(2027, 1, 4)),
    ("Fuera de la oficina", "Estaré fuera de la oficina hasta el 4 de enero de 2027.", dt.date(2027, 1, 4)),
    ("Respuesta automática", "Volveré el lunes 4 de enero.", dt.date(2027, 1, 4)),
    ("Afwezig", "Ik ben afwezig tot en met 4 januari 2027.", dt.date(2027, 1, 4)),
    ("Automatisch antwoord", "Vanaf maandag 4 januari ben ik weer bereikbaar.", dt.date(2027, 1, 4)),
])
def test_return_date_in_five_languages(subject: str, body: str, expected: dt.date) -> None:
    result = classify(_auto_reply(subject, body))
    assert result.kind == "auto_reply"
    assert result.return_date == expected


def test_the_contact_resumes_the_day_after_the_return_date_in_the_sequence_zone() -> None:
    now = dt.datetime(2026, 12, 14, 9, tzinfo=dt.timezone.utc).timestamp()
    resume = policy.auto_reply_resume_at(dt.date(2027, 1, 4), "Europe/Madrid", now, 3)
    assert dt.datetime.fromtimestamp(resume, dt.timezone.utc) == dt.datetime(2027, 1, 4, 23, tzinfo=dt.timezone.utc)
    # No date stated, or one already past: autoReplyDelayDays after now.
    assert policy.auto_reply_resume_at(None, "UTC", now, 3) == now + 3 * 86400
    assert policy.auto_reply_resume_at(dt.date(2026, 12, 1), "UTC", now, 3) == now + 3 * 86400


@pytest.mark.parametrize("domain", ["gmail.com", "yahoo.co.uk", "yahoo.fr", "gmx.at", "gmx.net", "web.de",
                                    "outlook.de", "hotmail.it", "icloud.com", "orange.fr", "t-online.de"])
def test_a_reply_from_a_freemail_user_stops_no_colleague(domain: str) -> None:
    assert policy.colleague_domain(f"someone@{domain}", True, True) is None


def test_a_reply_from_a_company_stops_its_colleagues() -> None:
    assert policy.colleague_domain("cto@Acme.io", True, True) == "acme.io"
    assert policy.colleague_domain("cto@orange.com", True, True) == "orange.com"  # the company, not the ISP
    assert policy.colleague_domain("cto@acme.io", False, True) is None
