"""Sending as a user, through their own SMTP submission server.

One-to-one emails and sequence steps leave from the user's mailbox (not from the marketing relay):
the envelope sender is the user's own address, so every bounce lands in their INBOX, where the
poller finds it. No DSN is requested (RFC 3461): success notices would fill the user's inbox.

``check`` is what saving a mailbox runs (connect, EHLO, STARTTLS as configured, login when a
password is given). ``submit`` sends one message on a fresh connection and returns what the server
said as data, never raising: accepted, temporary (4xx, or no answer) or permanent (5xx), with the
command it answered. Only a refusal at RCPT or DATA is about the recipient (a bounce); anything
before (connection, login, MAIL) is a problem of the user's mailbox settings.
"""

from __future__ import annotations

import functools
import smtplib
import socket
import ssl
from dataclasses import dataclass

from bounceback.service.db.models import MailboxSecurity
from bounceback.service.outbound.relay import Outcome, SendResult, ehlo, reply_text

DEFAULT_TIMEOUT = 30.0
RECIPIENT_COMMANDS = frozenset({"RCPT", "DATA"})
_DOING = {
    "CONN": "connecting",
    "EHLO": "greeting (EHLO)",
    "STARTTLS": "starting TLS (STARTTLS)",
    "AUTH": "logging in",
    "MAIL": "giving the sender (MAIL FROM)",
    "RCPT": "giving the recipient (RCPT TO)",
    "DATA": "sending the message (DATA)",
}


@dataclass(frozen=True)
class Server:
    """A user's submission server. No login is attempted without a password."""

    host: str
    port: int
    security: MailboxSecurity
    login: str = ""
    password: str = ""
    timeout: float = DEFAULT_TIMEOUT
    cafile: str = ""  # a CA bundle to trust besides the system's (a private CA, tests)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile or None)


@dataclass(frozen=True)
class Composed:
    """One message for one recipient, ready to submit."""

    envelope_from: str
    recipient: str
    message_id: str
    data: bytes  # CRLF line endings, 7-bit clean


class SubmissionFailed(Exception):
    """The server could not be used; ``str()`` says which step failed and what it answered."""

    def __init__(self, result: SendResult, server: Server) -> None:
        super().__init__(describe(result, server.name))
        self.result = result


def describe(result: SendResult, server: str) -> str:
    """What went wrong, for people: ``logging in at smtp.example.com:587 failed: 535 ...``."""
    doing = _DOING.get(result.command, result.command or "talking")
    detail = " ".join(result.response.split()) or "no answer"
    return f"{doing} at {server} failed: {detail}"


def is_bounce(result: SendResult) -> bool:
    """A permanent refusal of the recipient (not of the sender, the login or the connection)."""
    return result.outcome is Outcome.PERMANENT and result.command in RECIPIENT_COMMANDS


def check(server: Server) -> None:
    """Connect, greet, start TLS and log in as configured; SubmissionFailed says what failed."""
    try:
        smtp = _open(server)
    except _Failed as failed:
        raise SubmissionFailed(failed.result, server) from None
    _quit(smtp)


def submit(server: Server, message: Composed) -> SendResult:
    """Send ``message`` on a new connection; what the server answered, as data."""
    try:
        smtp = _open(server)
    except _Failed as failed:
        return failed.result
    try:
        return _transaction(smtp, server, message)
    finally:
        _quit(smtp)


class _Failed(Exception):
    def __init__(self, result: SendResult) -> None:
        super().__init__(result.response)
        self.result = result


@functools.lru_cache(maxsize=1)
def _helo_name() -> str:
    return socket.getfqdn() or "localhost"


def _open(server: Server) -> smtplib.SMTP:
    try:
        if server.security is MailboxSecurity.TLS:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=_helo_name(),
                timeout=server.timeout,
                context=server.ssl_context(),
            )
        else:
            smtp = smtplib.SMTP(
                server.host, server.port, local_hostname=_helo_name(), timeout=server.timeout
            )
    except smtplib.SMTPConnectError as exc:  # the greeting was a refusal
        raise _Failed(_result(exc.smtp_code, exc.smtp_error, "CONN", temporary=True)) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise _Failed(_no_answer(exc, "CONN")) from None
    try:
        _hello(smtp, server)
    except _Failed:
        smtp.close()
        raise
    return smtp


def _hello(smtp: smtplib.SMTP, server: Server) -> None:
    """EHLO, STARTTLS and login. A failure here says nothing about any recipient."""
    step = "EHLO"
    try:
        ehlo(smtp)
        if server.security is MailboxSecurity.STARTTLS:
            step = "STARTTLS"
            if not smtp.has_extn("starttls"):
                raise _Failed(
                    SendResult(
                        Outcome.TEMPORARY,
                        "",
                        "the server does not offer STARTTLS (choose TLS or no encryption)",
                        step,
                    )
                )
            smtp.starttls(context=server.ssl_context())
            step = "EHLO"
            ehlo(smtp)
        if server.password:
            step = "AUTH"
            _login(smtp, server)
    except smtplib.SMTPResponseException as exc:
        raise _Failed(_result(exc.smtp_code, exc.smtp_error, step, temporary=True)) from None
    except (OSError, ValueError, smtplib.SMTPException) as exc:  # ValueError: non-ASCII login
        raise _Failed(_no_answer(exc, step)) from None


_MECHANISMS = ("PLAIN", "LOGIN")


def _login(smtp: smtplib.SMTP, server: Server) -> None:
    """Log in with one mechanism: a refused password is not tried again with the next one
    (which servers count as more failed logins, and may lock the user out for)."""
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        detail = " ".join(offered) or "none: it may want STARTTLS first"
        raise smtplib.SMTPNotSupportedError(
            f"the server offers no login mechanism we use (PLAIN, LOGIN); it offers {detail}"
        )
    smtp.user, smtp.password = server.login, server.password
    method = getattr(smtp, "auth_" + mechanism.lower())
    smtp.auth(mechanism, method, initial_response_ok=True)  # raises SMTPAuthenticationError


def _transaction(smtp: smtplib.SMTP, server: Server, message: Composed) -> SendResult:
    options = [f"SIZE={len(message.data)}"] if smtp.has_extn("size") else []
    if not (message.recipient.isascii() and message.envelope_from.isascii()):
        if not smtp.has_extn("smtputf8"):
            return SendResult(
                Outcome.PERMANENT,
                "553",
                "553 5.6.7 (bounceback) the server does not offer SMTPUTF8, needed for a "
                "non-ASCII address",
                "MAIL",
            )
        options.append("SMTPUTF8")
        smtp.command_encoding = "utf-8"
    step = "MAIL"
    reply: bytes | str
    try:
        code, reply = smtp.mail(message.envelope_from, options)
        if code == 250:
            step = "RCPT"
            code, reply = smtp.rcpt(message.recipient)
        if code in (250, 251):
            step = "DATA"
            code, reply = smtp.data(message.data)
    except smtplib.SMTPResponseException as exc:  # DATA not answered by 354, or 421
        code, reply = exc.smtp_code, exc.smtp_error
    except (OSError, smtplib.SMTPException) as exc:
        return _no_answer(exc, step)
    return _result(code, reply, step)


def _result(code: int, reply: bytes | str, command: str, *, temporary: bool = False) -> SendResult:
    if 200 <= code < 400:
        outcome = Outcome.ACCEPTED
    elif 500 <= code < 600 and not temporary:
        outcome = Outcome.PERMANENT
    else:
        outcome = Outcome.TEMPORARY
    return SendResult(outcome, str(code), reply_text(code, reply), command)


def _no_answer(error: BaseException, command: str) -> SendResult:
    return SendResult(Outcome.TEMPORARY, "", str(error) or type(error).__name__, command)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
