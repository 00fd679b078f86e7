"""The real ``Engagement``: signed unsubscribe links, open pixel and click redirects."""

from __future__ import annotations

from dripd.config import MailboxConfig
from dripd.engagement import MessageRef, mailto_unsubscribe
from dripd.model import SequenceSettings
from dripd.tracking.links import add_pixel, rewrite_links
from dripd.tracking.tokens import Kind, Signer, Token


class Tracking:
    """Builds every tracked URL of a message from its Message-ID; no state, no I/O."""

    def __init__(self, base_url: str, signer: Signer) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def url(self, token: Token) -> str:
        path = {Kind.OPEN: "o", Kind.CLICK: "c", Kind.UNSUBSCRIBE: "u"}[token.kind]
        return f"{self.base_url}/{path}/{self.signer.sign(token)}"

    def unsubscribe_url(self, ref: MessageRef) -> str:
        return self.url(Token(Kind.UNSUBSCRIBE, ref.message_id))

    def merge_fields(self, ref: MessageRef, mailbox: MailboxConfig) -> dict[str, str]:
        return {"unsubscribeUrl": self.unsubscribe_url(ref)}

    def decorate_html(self, ref: MessageRef, html: str, settings: SequenceSettings) -> str:
        if settings.track_clicks:
            html, _ = rewrite_links(html, self.base_url + "/",
                                    lambda index, url: self.url(Token(Kind.CLICK, ref.message_id, index, url)))
        if settings.track_opens:
            html = add_pixel(html, self.url(Token(Kind.OPEN, ref.message_id)))
        return html

    def list_unsubscribe(self, ref: MessageRef, mailbox: MailboxConfig) -> tuple[tuple[str, ...], bool]:
        # RFC 8058 one-click needs an https URL; over plain http only the headers' URLs go out.
        https = self.base_url.startswith("https://")
        return (self.unsubscribe_url(ref), mailto_unsubscribe(mailbox)), https
