"""Signed VERP return paths: ``b+<token>@<bounce domain>`` where the token names a delivery and
carries an HMAC of the server secret, so that a forged bounce can name no delivery.

Token: ``<delivery id in base 36>.<first 16 hex digits of HMAC-SHA256(secret, "verp:" + id)>``.
Short enough for any local part (RFC 5321 allows 64 octets), case-insensitive (some MTAs
lower-case the local part of the return path), and verified in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "b"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("delivery ids are positive")
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _DIGITS[rest] + out
        if number == 0:
            return out


def _mac(secret: str, delivery_id: int, purpose: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}:{delivery_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def make_token(secret: str, delivery_id: int, purpose: str = "verp") -> str:
    """A signed token naming ``delivery_id``. ``purpose`` keeps tokens of one use (VERP return
    paths) from being accepted for another (unsubscribe links, "unsubscribe")."""
    return f"{_base36(delivery_id)}.{_mac(secret, delivery_id, purpose)}"


def return_path(secret: str, delivery_id: int, domain: str) -> str:
    return f"{PREFIX}+{make_token(secret, delivery_id)}@{domain}"


def verify_token(secret: str, token: str, purpose: str = "verp") -> int | None:
    """The delivery id a token names, or None when it is malformed or its signature is wrong."""
    head, sep, mac = token.strip().lower().partition(".")
    if not sep or not head or len(head) > 13 or any(c not in _DIGITS for c in head):
        return None
    delivery_id = int(head, 36)
    if not hmac.compare_digest(mac, _mac(secret, delivery_id, purpose)):
        return None
    return delivery_id


def token_of(address: str) -> str:
    """The token of a VERP address (``b+TOKEN@domain``), or ""."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    prefix = PREFIX + "+"
    return local[len(prefix) :] if local.startswith(prefix) else ""
