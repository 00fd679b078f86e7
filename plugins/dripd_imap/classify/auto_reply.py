"""RFC 3834 auto-replies (out of office, autoresponders) and the return date they state, read in
the languages seen in the field and resolved against the date the reply was sent."""

from __future__ import annotations

import datetime
import email.message
import email.utils
import re

from dripd_imap.classify.bounce_text import _failure_section, _original_message_id
from dripd_imap.classify.decode import _header
from dripd_imap.classify.result import Classification, Kind
from dripd_imap.classify.view import _MessageView

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|ooo\b|automatic reply|auto[- ]?reply|auto[- ]?response|autorespons"
    r"|automatische antwort|abwesenheitsnotiz|abwesend|r[ée]ponse automatique|absence|risposta automatica"
    r"|respuesta autom[áa]tica|automatisch antwoord|vacation|away (?:from|until)|on vacation|on leave"
    r"|auto:|自動応答|不在)",
    re.I,
)


def _as_auto_reply(view: _MessageView) -> Classification | None:
    if not _is_auto_reply(view):
        return None
    return view.verdict(
        Kind.AUTO_REPLY,
        return_date=_return_date(view),
        original_message_id=view.references[0] if view.references else _original_message_id(view),
    )


def _is_auto_reply(view: _MessageView) -> bool:
    msg = view.msg
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")):
        return True
    if _header(msg, "X-Apple-Action").upper() == "VACATION":
        return True
    precedence = _header(msg, "Precedence").lower()
    if precedence == "auto_reply":
        return True
    subject_says_so = bool(_AUTO_SUBJECT.search(view.subject))
    # bulk/junk alone is every newsletter; with an auto-reply subject it is an autoresponder.
    # X-Auto-Response-Suppress alone is only Exchange asking others not to answer.
    return subject_says_so


_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan", "januar", "janvier", "jänner", "enero", "gennaio", "januari"),
            ("february", "feb", "februar", "février", "fevrier", "febrero", "febbraio", "februari"),
            ("march", "mar", "märz", "maerz", "mars", "marzo", "maart", "mrt"),
            ("april", "apr", "avril", "abril", "aprile"),
            ("may", "mai", "mayo", "maggio", "mei"),
            ("june", "jun", "juni", "juin", "junio", "giugno"),
            ("july", "jul", "juli", "juillet", "julio", "luglio"),
            ("august", "aug", "août", "aout", "agosto", "augustus"),
            ("september", "sep", "sept", "septembre", "septiembre", "settembre"),
            ("october", "oct", "oktober", "okt", "octobre", "octubre", "ottobre"),
            ("november", "nov", "novembre", "noviembre"),
            ("december", "dec", "dezember", "dez", "décembre", "decembre", "diciembre", "dicembre"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        [
            ("monday", "mon", "montag", "lundi", "lunes", "maandag"),
            ("tuesday", "tue", "tues", "dienstag", "mardi", "martes", "dinsdag"),
            ("wednesday", "wed", "mittwoch", "mercredi", "miércoles", "miercoles", "woensdag"),
            ("thursday", "thu", "thur", "thurs", "donnerstag", "jeudi", "jueves", "donderdag"),
            ("friday", "fri", "freitag", "vendredi", "viernes", "vrijdag"),
            ("saturday", "sat", "samstag", "samedi", "sábado", "sabado", "zaterdag"),
            ("sunday", "sun", "sonntag", "dimanche", "domingo", "zondag"),
        ]
    )
    for name in names
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th|\.|er|e)?"

# The phrase that introduces the day the person is back (English, German, French, Spanish, Dutch).
_RETURN_CUE = re.compile(
    r"\b(?:back|return(?:ing|s)?|in the office|available|reachable|until|till|through|thru"
    r"|zurück|wieder|ab dem|ab|bis(?: zum| einschließlich)?|de retour|retour|jusqu'au|à partir du"
    r"|hasta(?: el)?|volver[ée]|regres(?:o|ar[ée])|de vuelta|a partir del"
    r"|terug|tot en met|t/m|tot|vanaf|weer)\b",
    re.I,
)
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2}(?!\d))?"), "dm.y"),
    (re.compile(rf"(?:(?:{_WEEKDAY_ALT})\.?,?\s+)?(\d{{1,2}}){_ORD}\s+(?:of\s+|de\s+)?({_MONTH_ALT})\.?,?(?:\s+(?:de\s+)?(\d{{4}}))?", re.I), "d m y"),
    (re.compile(rf"(?:(?:{_WEEKDAY_ALT})\.?,?\s+)?({_MONTH_ALT})\.?\s+(\d{{1,2}}){_ORD}(?:,?\s+(\d{{4}}))?", re.I), "m d y"),
    (re.compile(rf"({_WEEKDAY_ALT})\.?,?\s+(?:the\s+)?(\d{{1,2}}){_ORD}(?![\d:])", re.I), "wd d"),
    (re.compile(rf"({_WEEKDAY_ALT})\b", re.I), "wd"),
]
_DATE_SEARCHES = [(re.compile(r"(?<![\w.])(?:" + p.pattern + ")", p.flags), shape) for p, shape in _DATE_PATTERNS]


def _return_date(view: _MessageView) -> datetime.date | None:
    sent = _message_date(view.msg)
    apple = re.search(r"endDate=(\d{4})-(\d{2})-(\d{2})", _header(view.msg, "X-Apple-Criteria"))
    if apple:
        return _safe_date(*(int(g) for g in apple.groups()))
    text = view.subject + "\n" + _failure_section(view.body)
    for cue in _RETURN_CUE.finditer(text):
        found = _date_at(text, cue.end(), sent)
        if found:
            return found
    return None


def _date_at(text: str, position: int, sent: datetime.date | None) -> datetime.date | None:
    """The first date within a few words after the cue, resolved against ``sent``."""
    window = text[position : position + 45].split("\n\n")[0]
    best: tuple[int, int, re.Match[str], str] | None = None
    for rank, (pattern, shape) in enumerate(_DATE_SEARCHES):
        match = pattern.search(window)
        # Earliest wins; at the same offset the more specific pattern (listed first) wins.
        if match and (best is None or (match.start(), rank) < best[:2]):
            best = (match.start(), rank, match, shape)
    return _resolve(best[3], best[2].groups(), sent) if best else None


def _resolve(shape: str, groups: tuple[str | None, ...], sent: datetime.date | None) -> datetime.date | None:
    if shape == "ymd":
        return _safe_date(int(groups[0] or 0), int(groups[1] or 0), int(groups[2] or 0))
    if shape in {"dm.y", "d m y", "m d y"}:
        if shape == "m d y":
            month, day, year = _MONTHS[str(groups[0]).lower()], int(groups[1] or 0), groups[2]
        elif shape == "d m y":
            day, month, year = int(groups[0] or 0), _MONTHS[str(groups[1]).lower()], groups[2]
        else:
            day, month, year = int(groups[0] or 0), int(groups[1] or 0), groups[2]
        if year:
            full = int(year) + (2000 if len(year) == 2 else 0)
            return _safe_date(full, month, day)
        return _next_on_or_after(sent, month, day)
    if sent is None:
        return None
    weekday = _WEEKDAYS[str(groups[0]).lower()]
    if shape == "wd d":
        return _next_day_of_month(sent, int(groups[1] or 0), weekday)
    return sent + datetime.timedelta(days=(weekday - sent.weekday()) % 7 or 7)


def _next_on_or_after(sent: datetime.date | None, month: int, day: int) -> datetime.date | None:
    # No year written: the first such day not long before the message was sent.
    if sent is None:
        return None
    candidate = _safe_date(sent.year, month, day)
    if candidate is not None and candidate < sent - datetime.timedelta(days=31):
        candidate = _safe_date(sent.year + 1, month, day)
    return candidate


def _next_day_of_month(sent: datetime.date, day: int, weekday: int) -> datetime.date | None:
    # "Monday 7th": the next 7th after the message, preferring one that is a Monday.
    fallback = None
    year, month = sent.year, sent.month
    for _ in range(14):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= sent:
            if candidate.weekday() == weekday:
                return candidate
            fallback = fallback or candidate
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return fallback


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _message_date(msg: email.message.Message) -> datetime.date | None:
    try:
        parsed = email.utils.parsedate_tz(_header(msg, "Date"))
    except Exception:  # noqa: BLE001
        return None
    if not parsed:
        return None
    return _safe_date(parsed[0], parsed[1], parsed[2])
