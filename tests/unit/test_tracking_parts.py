"""Tokens, link rewriting, scanner rules, the funnel bar and the [tracking]/[metrics] config."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripd.config import parse_config
from dripd.ctl.cmd_stats import funnel_bar, render_html
from dripd.engagement import MessageRef
from dripd.errors import ConfigError, DripdError
from dripd.model import SequenceSettings
from dripd.plugins import Plugins
from dripd.tracking import scanners
from dripd.tracking.engagement import Tracking
from dripd.tracking.links import add_pixel, rewrite_links
from dripd.tracking.tokens import Kind, Signer, Token, load_secret

KEY = b"0123456789abcdef0123456789abcdef"


def test_tokens_round_trip_and_refuse_any_change() -> None:
    signer = Signer(KEY)
    click = Token(Kind.CLICK, "<1.2.abc@example.com>", 3, "https://example.org/a?b=c&d=é")
    text = signer.sign(click)
    assert signer.verify(text, Kind.CLICK) == click
    assert signer.verify(text, Kind.OPEN) is None  # a click token is no open token
    assert Signer(b"another-key-0123456789").verify(text, Kind.CLICK) is None
    for i in range(len(text)):
        changed = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
        assert signer.verify(changed, Kind.CLICK) is None, i
    assert signer.verify(text + "=", Kind.CLICK) is None
    assert signer.verify("", Kind.OPEN) is None and signer.verify("x" * 9000, Kind.OPEN) is None
    assert "0123" not in repr(signer)
    with pytest.raises(DripdError):
        Signer(b"short")


def test_secret_from_file_or_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "tracking").write_bytes(KEY + b"\n")
    assert load_secret(tmp_path / "tracking") == KEY
    assert load_secret(None, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == KEY
    with pytest.raises(DripdError, match="needs secret_file"):
        load_secret(None, {})
    (tmp_path / "weak").write_bytes(b"abc")
    with pytest.raises(DripdError, match="shorter") as err:
        load_secret(tmp_path / "weak")
    assert "abc" not in err.value.message


def test_links_are_rewritten_except_mailto_anchors_and_our_own() -> None:
    source = ('<p><a class="x" href="https://example.org/p?a=1&amp;b=2">one</a> <A HREF=\'http://e.org\'>two</A>'
              ' <a href="mailto:a@b.c">m</a> <a href="#top">t</a> <a href="https://t.example/u/tok">u</a>'
              ' <a name="n">plain</a> <a href="https://x.org/a&#10;b">odd</a></p>')
    out, originals = rewrite_links(source, "https://t.example/", lambda i, url: f"https://t.example/c/{i}")
    assert originals == ["https://example.org/p?a=1&b=2", "http://e.org"]
    assert 'href="https://t.example/c/0"' in out and "HREF='https://t.example/c/1'" in out
    assert 'href="https://x.org/a&#10;b"' in out  # left as written: not a safe redirect target
    assert 'href="mailto:a@b.c"' in out and 'href="#top"' in out and 'href="https://t.example/u/tok"' in out


def test_pixel_goes_before_the_body_end() -> None:
    assert add_pixel("<html><body><p>x</p></body></html>", "https://t/o/1").endswith(
        '<img src="https://t/o/1" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />'
        "</body></html>")
    assert add_pixel("<p>x</p>", "https://t/o/1").startswith("<p>x</p><img")


def test_tracking_engagement_follows_the_sequence_flags() -> None:
    from dripd.config import MailboxConfig

    tracking = Tracking("https://t.example.com/", Signer(KEY))
    ref = MessageRef("<m@x>", "sales", 1, 2, 3, "a@b.c")
    mailbox = MailboxConfig(id="sales", address="s@example.com")
    plain = SequenceSettings("s", "sales")
    html = '<p><a href="https://example.org">x</a></p>'
    assert tracking.decorate_html(ref, html, plain) == html
    both = tracking.decorate_html(ref, html, plain.replace(track_opens=True, track_clicks=True))
    assert "https://t.example.com/c/" in both and "https://t.example.com/o/" in both
    urls, one_click = tracking.list_unsubscribe(ref, mailbox)
    assert urls[0].startswith("https://t.example.com/u/") and urls[1].startswith("mailto:s@example.com")
    assert one_click
    assert not Tracking("http://t.local", Signer(KEY)).list_unsubscribe(ref, mailbox)[1]  # RFC 8058 needs https
    assert tracking.merge_fields(ref, mailbox)["unsubscribeUrl"] == urls[0]


@pytest.mark.parametrize(("method", "ua", "ip", "seen", "flag"), [
    ("GET", "Mozilla/5.0 (Macintosh) AppleWebKit", "203.0.113.5", False, None),
    ("GET", "Mozilla/5.0", "203.0.113.5", False, "Apple Mail Privacy Protection prefetch"),
    ("GET", "Mozilla/5.0 (Macintosh)", "17.58.1.2", False, "Apple Mail Privacy Protection prefetch"),
    ("GET", "Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "66.249.1.1", False, "Gmail image proxy first fetch"),
    ("GET", "Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "66.249.1.1", True, None),
    ("HEAD", "Mozilla/5.0 (X11)", None, False, "HEAD request"),
    ("GET", "", None, False, "no user agent"),
])
def test_open_classification(method: str, ua: str, ip: str | None, seen: bool, flag: str | None) -> None:
    assert scanners.open_flag(scanners.Hit(method, ua, ip, 60.0), seen) == flag


def test_click_classification() -> None:
    person = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
    assert scanners.click_flag(scanners.Hit("GET", person, None, 30.0), 5.0) is None
    assert scanners.click_flag(scanners.Hit("GET", person, None, 2.0), 5.0) == "within 5s of the send"
    assert scanners.click_flag(scanners.Hit("HEAD", person, None, 30.0), 5.0) == "HEAD request"
    assert "barracuda" in (scanners.click_flag(scanners.Hit("GET", "Barracuda Sentinel", None, 99.0), 5.0) or "")


def test_funnel_bar_shades_how_far_sends_got() -> None:
    step = {"sent": 10, "delivered": 8, "opened": 5, "clicked": 2, "replied": 1, "bounced": 0}
    assert funnel_bar(step, 10) == "███▓▓▓▒▒▒▒▒▒▒▒▒░░░░░░░░░······"
    assert funnel_bar({**step, "sent": 0, "delivered": 0, "opened": 0, "clicked": 0, "replied": 0}, 0) == ""


def test_html_page_is_self_contained_and_escaped() -> None:
    funnel = {"sent": 1, "delivered": 1, "opened": 0, "clicked": 0, "replied": 0, "bounced": 0, "unsubscribed": 0,
              "refused": 0, "flaggedOpens": 0, "flaggedClicks": 0,
              "rates": {"delivered": 1.0, "opened": 0.0, "clicked": 0.0, "replied": 0.0, "unsubscribed": 0.0,
                        "bounced": 0.0}}
    page = render_html({"sequenceId": 1, "name": "<script>x</script>", "status": "active", "generatedAt": "now",
                        "bounceWindowHours": 24, "steps": [{"stepIndex": 0, "subject": "Hi", **funnel}],
                        "total": funnel})
    assert "<script>" not in page and "&lt;script&gt;" in page and "http" not in page


def _config(**tables: object) -> object:
    plugins = Plugins()
    data = {"mailboxes": [{"id": "m", "address": "m@example.com", "maildir": {"path": "x"}}], **tables}
    return parse_config(data, plugins.config_sections(), plugins.transports)


@pytest.mark.parametrize(("tables", "key"), [
    ({"tracking": {"listen": "127.0.0.1:8080"}}, "tracking"),
    ({"tracking": {"base_url": "https://t.example.com"}}, "tracking"),
    ({"tracking": {"listen": "nope", "base_url": "https://t.example.com"}}, "tracking.listen"),
    ({"tracking": {"listen": "127.0.0.1:8080", "base_url": "ftp://x"}}, "tracking.base_url"),
    ({"tracking": {"listen": "127.0.0.1:8080", "base_url": "https://t.example.com/?q=1"}}, "tracking.base_url"),
    ({"tracking": {"secret": "x"}}, "tracking.secret"),
    ({"metrics": {"listen": "127.0.0.1:99999"}}, "metrics.listen"),
    ({"metrics": {"port": 1}}, "metrics.port"),
    ({"analytics": {"bounce_window_hours": 0}}, "analytics.bounce_window_hours"),
])
def test_tracking_metrics_and_analytics_config_is_strict(tables: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(**tables)
    assert err.value.message.startswith(key), err.value.message


def test_tracking_config_accepts_a_full_table() -> None:
    config = _config(tracking={"listen": "127.0.0.1:8080", "base_url": "https://t.example.com/",
                               "secret_file": "/run/credentials/dripd.service/tracking"},
                     metrics={"listen": "127.0.0.1:9464"})
    assert config.tracking.base_url == "https://t.example.com"  # type: ignore[attr-defined]
