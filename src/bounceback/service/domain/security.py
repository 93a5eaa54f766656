"""Passwords, API keys and CSRF tokens. Standard library only.

Passwords: scrypt (RFC 7914) with a random salt, parameters stored with the hash so they can be
raised later. API keys: 32 random bytes shown once; only their SHA-256 is stored (a key has full
entropy, so a slow hash adds nothing). CSRF: an HMAC of the session id, checked on every form post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_N}${_R}${_P}${encoded[0]}${encoded[1]}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def new_api_key() -> tuple[str, str, str]:
    """(the key to show once, its public prefix, the hash to store)."""
    prefix = "bb_" + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_prefix(key: str) -> str:
    parts = key.split("_")
    return "_".join(parts[:2]) if len(parts) >= 3 and parts[0] == "bb" else ""


def csrf_token(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def check_csrf(secret: str, session_id: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(secret, session_id), token)
