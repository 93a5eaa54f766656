"""Email addresses found in bounce text: extract, clean, compare."""

from __future__ import annotations

import re

# Deliberately permissive on the local part (bounces quote "%"-routed and odd addresses) and
# strict enough on the domain to skip "user@localhost."-style sentence ends.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-][A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]{0,127}"
    r"@[A-Za-z0-9\-\[](?:[A-Za-z0-9\-.\]:]{0,252}[A-Za-z0-9\]])?"
)


def find_addresses(text: str, limit: int = 100) -> list[str]:
    """Every address in ``text``, in order, without duplicates (case-insensitive)."""
    seen: set[str] = set()
    out: list[str] = []
    for match in _ADDRESS.finditer(text):
        address = clean(match.group(0))
        key = address.lower()
        if address and key not in seen:
            seen.add(key)
            out.append(address)
            if len(out) >= limit:
                break
    return out


def find_address(text: str) -> str:
    match = _ADDRESS.search(text)
    return clean(match.group(0)) if match else ""


def clean(value: str) -> str:
    """``rfc822; <User@Example.COM>`` -> ``User@Example.COM``."""
    value = value.strip()
    if ";" in value[:12]:  # an address-type prefix: "rfc822;", "RFC822; ", "x-unix;"
        value = value.split(";", 1)[1].strip()
    value = value.strip("<>\"'()[]{}:;, \t")
    if "<" in value and ">" in value:
        value = value[value.find("<") + 1 : value.rfind(">")]
    value = value.rstrip(".")
    return value if "@" in value or value else ""


def is_address(value: str) -> bool:
    return bool(value) and _ADDRESS.fullmatch(value) is not None


def same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()
