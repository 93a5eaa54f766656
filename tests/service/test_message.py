"""The message of one delivery: headers that name the delivery, RFC 8058 unsubscribe, MIME."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

from bounceback.service.db.models import Delivery, Email
from bounceback.service.domain import verp
from bounceback.service.outbound.message import build, html_to_text

from outbound_support import BOUNCE_DOMAIN, SECRET, settings


def _email(html: str = "<p>Hello <b>there</b> &amp; welcome</p>", text: str = "") -> Email:
    return Email(
        account_id=1,
        from_address="news@shop.example",
        from_name="Shöp News",
        subject="Spring sale — 50% off",
        html=html,
        text=text,
    )


def _delivery(delivery_id: int = 42) -> Delivery:
    return Delivery(
        id=delivery_id,
        account_id=1,
        send_id=7,
        contact_id=3,
        email="ann@example.org",
        message_id="",
    )


def _parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_headers_name_the_delivery() -> None:
    delivery = _delivery()
    out = build(settings(), delivery, _email(), "Ann Bérénice")
    message = _parsed(out.data)
    assert message["From"].addresses[0].addr_spec == "news@shop.example"
    assert message["From"].addresses[0].display_name == "Shöp News"
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    assert message["To"].addresses[0].display_name == "Ann Bérénice"
    assert str(message["Subject"]) == "Spring sale — 50% off"
    assert message["Date"].datetime is not None
    # Our own Message-ID, stored on the delivery.
    assert re.fullmatch(rf"<d42\.[0-9a-f]{{16}}@{re.escape(BOUNCE_DOMAIN)}>", out.message_id)
    assert message["Message-ID"] == out.message_id == delivery.message_id
    # The delivery header and the envelope carry the signed VERP token.
    assert verp.verify_token(SECRET, message["X-Bounceback-Delivery"]) == 42
    assert delivery.verp_token == message["X-Bounceback-Delivery"] == out.envid
    assert out.envelope_from == verp.return_path(SECRET, 42, BOUNCE_DOMAIN)
    assert out.recipient == "ann@example.org"


def test_unsubscribe_is_one_click_with_its_own_token() -> None:
    message = _parsed(build(settings(), _delivery(), _email()).data)
    header = str(message["List-Unsubscribe"])
    found = re.fullmatch(r"<https://bb\.example/u/([0-9a-z.]+)>", header)
    assert found, header
    token = found.group(1)
    assert verp.verify_token(SECRET, token, purpose="unsubscribe") == 42
    assert verp.verify_token(SECRET, token, purpose="verp") is None  # not a bounce token
    assert token != message["X-Bounceback-Delivery"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_body_is_multipart_alternative_and_seven_bit() -> None:
    out = build(settings(), _delivery(), _email(html="<p>Grüße</p>", text="Grüße, plain"))
    assert all(byte < 128 for byte in out.data)  # any relay takes it, 8BITMIME or not
    assert b"\r\n" in out.data and b"\n" not in out.data.replace(b"\r\n", b"")
    message = _parsed(out.data)
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert parts["text/plain"].strip() == "Grüße, plain"
    assert parts["text/html"].strip() == "<p>Grüße</p>"


def test_html_only_email_gets_a_text_alternative() -> None:
    message = _parsed(build(settings(), _delivery(), _email()).data)
    text = next(p for p in message.iter_parts() if p.get_content_type() == "text/plain")
    assert text.get_content().strip() == "Hello there & welcome"


def test_text_only_email_is_a_single_part() -> None:
    message = _parsed(build(settings(), _delivery(), _email(html="", text="Just text")).data)
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Just text"


def test_message_id_is_kept_across_retries() -> None:
    delivery = _delivery()
    first = build(settings(), delivery, _email())
    second = build(settings(), delivery, _email())
    assert first.message_id == second.message_id  # a late bounce of try 1 still matches
    other = build(settings(), _delivery(43), _email())
    assert other.message_id != first.message_id


def test_html_to_text_skips_styles_and_keeps_blocks() -> None:
    markup = "<html><head><style>p {color: red}</style></head><body><h1>Hi</h1><p>a<br>b</p>"
    assert html_to_text(markup) == "Hi\n\na\nb\n"
