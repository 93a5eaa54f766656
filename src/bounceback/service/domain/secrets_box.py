"""Mailbox passwords encrypted at rest.

bounceback must log in to users' mailboxes (IMAP to read bounces, SMTP to send as them), so it
keeps their passwords, which a database dump must not reveal. They are encrypted with Fernet
(AES-128-CBC with an HMAC-SHA256, from PyPI's ``cryptography``) under ``credentials_key``
(``BOUNCEBACK_CREDENTIALS_KEY``): one or more Fernet keys, comma-separated, the first encrypting
and every one decrypting, so that a key can be rotated. When it is empty the key is derived from
``secret_key`` with HKDF-SHA256 and a fixed label: nothing more to configure, and a key of its
own (not the HMAC secret itself) is used for encryption.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bounceback.service.settings import Settings, SettingsError

HKDF_LABEL = b"bounceback mailbox credentials v1"


class CredentialsUnreadable(Exception):
    """A stored password cannot be decrypted: the credentials key (or the secret key it is
    derived from) changed since it was saved. The user has to connect the mailbox again."""


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from the service's secret key."""
    if not secret_key:
        raise SettingsError(
            "encrypting mailbox passwords needs BOUNCEBACK_CREDENTIALS_KEY or a secret key"
        )
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_LABEL).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _fernets(settings: Settings) -> list[Fernet]:
    keys = [k.strip() for k in settings.credentials_key.split(",") if k.strip()]
    if not keys:
        return [Fernet(derived_key(settings.secret_key))]
    fernets = []
    for number, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except ValueError:
            raise SettingsError(
                f"BOUNCEBACK_CREDENTIALS_KEY: key {number} is not a Fernet key (32 bytes, "
                "url-safe base64: Fernet.generate_key())"
            ) from None
    return fernets


class SecretsBox:
    """Encrypts and decrypts short secrets with the settings' credentials key."""

    def __init__(self, settings: Settings) -> None:
        self._fernet = MultiFernet(_fernets(settings))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        if not token:
            return ""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise CredentialsUnreadable(
                "the stored mailbox password cannot be decrypted (the credentials key changed): "
                "connect the mailbox again"
            ) from None


def box(settings: Settings) -> SecretsBox:
    return SecretsBox(settings)
