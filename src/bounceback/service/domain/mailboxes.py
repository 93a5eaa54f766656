"""A user's connected mailbox: IMAP to read (the bounces of their one-to-one email land in their
INBOX) and SMTP submission to send as themselves.

Saving checks both sides before anything is stored (IMAP: login and SELECT INBOX; SMTP: EHLO,
STARTTLS as configured and login when a password is given), and a failure is an ``Invalid`` that
names the side and the step: "IMAP: logging in at imap.example.com:993 failed: ...". Passwords are
stored encrypted (``secrets_box``) and never shown again. A stored password is kept when the form
leaves it empty, but only for the same host, port and login: a password is never sent to a server
it was not typed for.

The poller (another module) reads the mailboxes and writes their health: ``last_poll_at`` and
``last_error``, and the INBOX checkpoint (``uidvalidity``, ``last_uid``), which is reset here when
the IMAP account changes.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bounceback.service.db.models import DirectMessage, Mailbox, MailboxSecurity, User
from bounceback.service.domain.contacts import normalize_email
from bounceback.service.domain.errors import Conflict, Invalid, NotFound
from bounceback.service.domain.secrets_box import box
from bounceback.service.outbound import submission
from bounceback.service.settings import Settings

CHECK_TIMEOUT = 15.0
_LABEL = r"[a-z0-9_][a-z0-9_-]{0,62}"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True)
class Endpoint:
    """One side of a mailbox. An empty password means: keep the stored one (same server and
    login), or for SMTP when nothing is stored: send without logging in."""

    host: str
    port: int
    security: MailboxSecurity
    login: str
    password: str = ""

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailboxForm:
    """What a user gives to connect a mailbox."""

    imap: Endpoint
    smtp: Endpoint
    address: str = ""  # the From of their email; empty: the user's login address
    bounce_folder: str = ""  # where detected bounces are moved; empty: flagged in the INBOX


class ImapFailed(Exception):
    """The IMAP side could not be used; the message says which step failed and why."""


# --- reading ----------------------------------------------------------------------------------


def get_mailbox(session: Session, account_id: int, user_id: int) -> Mailbox | None:
    return session.scalar(
        select(Mailbox).where(Mailbox.account_id == account_id, Mailbox.user_id == user_id)
    )


def require_mailbox(session: Session, account_id: int, user_id: int) -> Mailbox:
    """The user's mailbox, or Conflict: sending as a user needs their mailbox connected."""
    mailbox = get_mailbox(session, account_id, user_id)
    if mailbox is None:
        raise Conflict(
            "no mailbox is connected for this user: connect one first (the Mailbox page, or "
            "POST /api/me/mailbox)"
        )
    return mailbox


def imap_endpoint(settings: Settings, mailbox: Mailbox) -> Endpoint:
    """The IMAP side with its password decrypted (for the poller)."""
    return imap_endpoint_of(mailbox, box(settings).decrypt)


def imap_endpoint_of(mailbox: Mailbox, decrypt: Callable[[str], str]) -> Endpoint:
    return Endpoint(
        mailbox.imap_host,
        mailbox.imap_port,
        MailboxSecurity(mailbox.imap_security),
        mailbox.imap_login,
        decrypt(mailbox.imap_password),
    )


def smtp_server(settings: Settings, mailbox: Mailbox, timeout: float = 60.0) -> submission.Server:
    """The SMTP side with its password decrypted, ready for ``submission.submit``."""
    return submission.Server(
        mailbox.smtp_host,
        mailbox.smtp_port,
        MailboxSecurity(mailbox.smtp_security),
        mailbox.smtp_login,
        box(settings).decrypt(mailbox.smtp_password),
        timeout=timeout,
    )


# --- connecting -------------------------------------------------------------------------------


def connect(
    session: Session,
    account_id: int,
    user_id: int,
    form: MailboxForm,
    settings: Settings,
    *,
    check: bool = True,
    timeout: float = CHECK_TIMEOUT,
) -> Mailbox:
    """Connect (or change) the user's mailbox after checking both sides. Nothing is written
    before the checks pass, so a caller's transaction holds no write lock while servers answer."""
    user = session.get(User, user_id)
    if user is None or user.account_id != account_id or not user.is_active:
        raise NotFound("no such user")
    address = normalize_email(form.address or user.email)
    folder = form.bounce_folder.strip()
    if len(folder) > 200 or any(c in folder for c in "\r\n\0"):
        raise Invalid("the bounce folder name is too long or has line breaks")
    existing = get_mailbox(session, account_id, user_id)
    secrets = box(settings)
    imap = _complete("IMAP", _valid("IMAP", form.imap), _stored(existing, "IMAP", secrets.decrypt))
    smtp = _complete("SMTP", _valid("SMTP", form.smtp), _stored(existing, "SMTP", secrets.decrypt))
    if not imap.password:
        raise Invalid("IMAP: a password is needed")
    if check:
        check_imap(imap, timeout)
        check_smtp(smtp, timeout)
    mailbox = existing or Mailbox(account_id=account_id, user_id=user_id, last_uid=0)
    if existing is None or (imap.host, imap.port, imap.login) != (
        existing.imap_host,
        existing.imap_port,
        existing.imap_login,
    ):  # another IMAP account: its UIDs mean nothing here, and its health is unknown
        mailbox.uidvalidity, mailbox.last_uid = None, 0
        mailbox.last_poll_at, mailbox.last_error = None, ""
    mailbox.address = address
    mailbox.bounce_folder = folder
    mailbox.imap_host, mailbox.imap_port = imap.host, imap.port
    mailbox.imap_security, mailbox.imap_login = imap.security, imap.login
    mailbox.imap_password = secrets.encrypt(imap.password)
    mailbox.smtp_host, mailbox.smtp_port = smtp.host, smtp.port
    mailbox.smtp_security, mailbox.smtp_login = smtp.security, smtp.login
    mailbox.smtp_password = secrets.encrypt(smtp.password) if smtp.password else ""
    session.add(mailbox)
    session.flush()
    return mailbox


def disconnect(session: Session, account_id: int, user_id: int) -> None:
    """Forget the mailbox and its passwords. Its one-to-one emails stay in the history."""
    mailbox = get_mailbox(session, account_id, user_id)
    if mailbox is None:
        raise NotFound("no mailbox is connected")
    session.execute(
        update(DirectMessage)
        .where(DirectMessage.account_id == account_id, DirectMessage.mailbox_id == mailbox.id)
        .values(mailbox_id=None)
        .execution_options(synchronize_session=False)
    )
    session.delete(mailbox)
    session.flush()


def _valid(side: str, endpoint: Endpoint) -> Endpoint:
    host = endpoint.host.strip().lower().rstrip(".")
    if not (_HOST.match(host) or _is_ip(host)):
        raise Invalid(f"{side}: {endpoint.host!r} is not a host name or IP address")
    if not 1 <= endpoint.port <= 65535:
        raise Invalid(f"{side}: the port must be between 1 and 65535")
    login = endpoint.login.strip()
    if len(login) > 320 or any(c in login for c in "\r\n\0"):
        raise Invalid(f"{side}: the login is too long or has line breaks")
    if any(c in endpoint.password for c in "\r\n\0"):
        raise Invalid(f"{side}: the password cannot contain line breaks")
    return replace(endpoint, host=host, login=login, security=MailboxSecurity(endpoint.security))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _stored(mailbox: Mailbox | None, side: str, decrypt: Callable[[str], str]) -> Endpoint | None:
    if mailbox is None:
        return None
    if side == "IMAP":
        return imap_endpoint_of(mailbox, decrypt)
    return Endpoint(
        mailbox.smtp_host,
        mailbox.smtp_port,
        MailboxSecurity(mailbox.smtp_security),
        mailbox.smtp_login,
        decrypt(mailbox.smtp_password),
    )


def _complete(side: str, given: Endpoint, stored: Endpoint | None) -> Endpoint:
    """The given endpoint, with the stored password when none was typed and the server and
    login are the same (a stored password is never sent anywhere else)."""
    if given.password or not stored:
        return given
    if (given.host, given.port, given.login) == (stored.host, stored.port, stored.login):
        return replace(given, password=stored.password)
    if stored.password:
        raise Invalid(f"{side}: the server or login changed: type the password again")
    return given


# --- checking ---------------------------------------------------------------------------------


def check_smtp(endpoint: Endpoint, timeout: float = CHECK_TIMEOUT) -> None:
    """EHLO, STARTTLS as configured, and login when a password is given."""
    server = submission.Server(
        endpoint.host,
        endpoint.port,
        endpoint.security,
        endpoint.login,
        endpoint.password,
        timeout=timeout,
    )
    try:
        submission.check(server)
    except submission.SubmissionFailed as exc:
        raise Invalid(f"SMTP: {exc}") from None


def check_imap(endpoint: Endpoint, timeout: float = CHECK_TIMEOUT) -> None:
    """Log in and open the INBOX (read-only), as the poller will."""
    try:
        _imap_session(endpoint, timeout)
    except ImapFailed as exc:
        raise Invalid(f"IMAP: {exc}") from None


def _imap_session(endpoint: Endpoint, timeout: float) -> None:
    context = ssl.create_default_context()
    try:
        if endpoint.security is MailboxSecurity.TLS:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                endpoint.host, endpoint.port, ssl_context=context, timeout=timeout
            )
        else:
            conn = imaplib.IMAP4(endpoint.host, endpoint.port, timeout=timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapFailed(f"connecting to {endpoint.name} failed: {_why(exc)}") from None
    step = "starting TLS (STARTTLS)"
    try:
        if endpoint.security is MailboxSecurity.STARTTLS:
            conn.starttls(ssl_context=context)
        step = "logging in"
        conn.login(endpoint.login, endpoint.password)
        step = "opening the INBOX (SELECT)"
        status, data = conn.select("INBOX", readonly=True)
        if status != "OK":
            raise imaplib.IMAP4.error(data[-1] if data else status)
    except (OSError, UnicodeError, imaplib.IMAP4.error) as exc:
        raise ImapFailed(f"{step} at {endpoint.name} failed: {_why(exc)}") from None
    finally:
        _logout(conn)


def _why(error: BaseException) -> str:
    if isinstance(error, UnicodeError):
        return "the login and password must be ASCII for IMAP LOGIN"
    detail = error.args[0] if error.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return " ".join(str(detail).split()) or type(error).__name__


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        with contextlib.suppress(OSError):
            conn.shutdown()
