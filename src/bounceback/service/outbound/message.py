"""The RFC 5322 message of one delivery, and the envelope it travels in.

Everything a bounce might carry back names the delivery: the VERP return path (the envelope
sender, where every NDR goes), the DSN envelope id (RFC 3461 ENVID, echoed in the report), our
``X-Bounceback-Delivery`` header and our own Message-ID (both returned with the headers of the
original). The unsubscribe link uses a token of another purpose, so a VERP token seen in a bounce
cannot unsubscribe anyone and an unsubscribe token cannot be replayed as a bounce.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from html.parser import HTMLParser

from bounceback.service.db.models import Delivery, Email
from bounceback.service.domain import verp
from bounceback.service.settings import Settings

DELIVERY_HEADER = "X-Bounceback-Delivery"
# CRLF, and bodies encoded to 7 bits (quoted-printable or base64): any relay takes it as is.
POLICY = policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True)
class Outgoing:
    """One message ready for the relay: one recipient, its own envelope."""

    delivery_id: int
    envelope_from: str  # the VERP return path
    recipient: str
    envid: str  # RFC 3461 ENVID: the signed VERP token
    message_id: str
    data: bytes  # CRLF line endings, 7-bit clean


def unsubscribe_url(settings: Settings, delivery_id: int) -> str:
    token = verp.make_token(settings.secret_key, delivery_id, purpose="unsubscribe")
    return f"{settings.base_url}/u/{token}"


def build(settings: Settings, delivery: Delivery, email: Email, contact_name: str = "") -> Outgoing:
    """The message for ``delivery``. Stores the VERP token and Message-ID on the delivery (kept
    across retries, so a late bounce of an earlier attempt still matches)."""
    if not settings.secret_key:
        raise ValueError("a secret key is needed to sign return paths (Settings.secret_key)")
    if not settings.bounce_domains:
        raise ValueError("no bounce domain configured (BOUNCEBACK_BOUNCE_DOMAINS)")
    domain = settings.bounce_domains[0]
    token = verp.make_token(settings.secret_key, delivery.id)
    delivery.verp_token = token
    if not delivery.message_id:
        delivery.message_id = f"<d{delivery.id}.{secrets.token_hex(8)}@{domain}>"
    message = _message(settings, delivery, email, contact_name, token)
    return Outgoing(
        delivery_id=delivery.id,
        envelope_from=verp.return_path(settings.secret_key, delivery.id, domain),
        recipient=delivery.email,
        envid=token,
        message_id=delivery.message_id,
        data=message.as_bytes(),
    )


def _message(
    settings: Settings, delivery: Delivery, email: Email, contact_name: str, token: str
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = formataddr((email.from_name, email.from_address))
    message["To"] = formataddr((contact_name, delivery.email))
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = delivery.message_id
    message[DELIVERY_HEADER] = token
    # RFC 2369 and RFC 8058: mailbox providers show an unsubscribe button and POST to the URL.
    message["List-Unsubscribe"] = f"<{unsubscribe_url(settings, delivery.id)}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Gmail's feedback loop groups complaints by this (campaign:customer:sender).
    message["Feedback-ID"] = f"{delivery.send_id}:{delivery.account_id}:bounceback"
    html, text = email.html or "", email.text or ""
    message.set_content(text if text.strip() else html_to_text(html))
    if html.strip():
        message.add_alternative(html, subtype="html")
    return message


class _TextOf(HTMLParser):
    """Collects the visible text of HTML, one line per block element."""

    _BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
    _HIDDEN = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """A plain-text alternative for an email written only in HTML (readable, not pretty)."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
