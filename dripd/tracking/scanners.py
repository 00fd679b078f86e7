"""Tells machine hits from people: mail-privacy prefetchers and link scanners. Pure.

Such hits are still recorded (they are real traffic and useful when debugging), but flagged,
so by default they neither move the funnel nor satisfy ``if_opened`` / ``if_clicked``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# Apple Mail Privacy Protection fetches every image through Apple's proxies (17.0.0.0/8) with
# a bare "Mozilla/5.0" user agent, whether or not the message is ever read.
_APPLE_NET = ipaddress.ip_network("17.0.0.0/8")
_APPLE_UA = "Mozilla/5.0"
# Gmail's image proxy fetches once when the message lands (and caches); later fetches from
# it follow a person opening the message.
_GMAIL_PROXY = "googleimageproxy"
# Security gateways, link previewers and HTTP libraries: lower-case substrings of their UAs.
_SCANNER_UAS = (
    "barracuda", "mimecast", "proofpoint", "messagelabs", "symantec", "forcepoint", "trendmicro",
    "trend micro", "fortiguard", "sophos", "safelinks", "microsoft office existence discovery",
    "bingpreview", "bot", "spider", "crawler", "facebookexternalhit", "slack", "whatsapp",
    "python-requests", "python-urllib", "go-http-client", "java/", "libwww-perl", "wget", "curl/",
    "okhttp", "headlesschrome", "phantomjs",
)


@dataclass(frozen=True)
class Hit:
    method: str  # GET, HEAD, POST
    user_agent: str
    client_ip: str | None
    seconds_after_send: float | None  # None when the send time is unknown


def _apple(hit: Hit) -> bool:
    if hit.user_agent.strip() == _APPLE_UA:
        return True
    try:
        return hit.client_ip is not None and ipaddress.ip_address(hit.client_ip) in _APPLE_NET
    except ValueError:
        return False


def scanner_agent(user_agent: str) -> str | None:
    lowered = user_agent.lower()
    if not lowered.strip():
        return "no user agent"
    return next((f"scanner user agent ({needle})" for needle in _SCANNER_UAS if needle in lowered), None)


def open_flag(hit: Hit, gmail_proxy_seen_before: bool) -> str | None:
    """Why an open is not a person (None when it is one)."""
    if hit.method == "HEAD":
        return "HEAD request"
    if _apple(hit):
        return "Apple Mail Privacy Protection prefetch"
    if _GMAIL_PROXY in hit.user_agent.lower():
        return None if gmail_proxy_seen_before else "Gmail image proxy first fetch"
    return scanner_agent(hit.user_agent)


def click_flag(hit: Hit, scanner_seconds: float) -> str | None:
    """Why a click is not a person (None when it is one)."""
    if hit.method == "HEAD":
        return "HEAD request"
    if hit.seconds_after_send is not None and hit.seconds_after_send < scanner_seconds:
        return f"within {scanner_seconds:g}s of the send"
    return scanner_agent(hit.user_agent)


def is_gmail_proxy(user_agent: str) -> bool:
    return _GMAIL_PROXY in user_agent.lower()
