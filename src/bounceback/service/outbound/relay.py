"""Sending one message through the SMTP relay named by ``BOUNCEBACK_RELAY_URL``.

URL forms: ``smtp://[user:pass@]host[:25]`` (plain), ``smtp+starttls://...[:587]`` (STARTTLS
required) and ``smtps://...[:465]`` (TLS from the first byte). Query options: ``timeout``
(seconds, default 60), ``helo`` (the name we greet with), ``cafile`` (a CA bundle to verify the
relay's certificate with) and ``verify=no`` (do not verify it: a relay with a self-signed
certificate on a private network).

Each recipient gets its own transaction (its own VERP envelope sender). Where the relay
advertises DSN (RFC 3461) we ask for notices of success, failure and delay, with the headers only
(``RET=HDRS``) and our token as the envelope id, so "delivered" is known and a bounce names its
delivery even when the return path was rewritten.

What the relay said is returned as data (never raised): accepted, temporary failure (4xx, or no
answer at all) or permanent rejection (5xx), with the reply code, the full response and the
command it answered. A failure before MAIL (connection, greeting, STARTTLS, login) says nothing
about the recipient, so it is always temporary: the message is retried, never bounced.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from bounceback.service.outbound.message import Outgoing

_SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
DEFAULT_TIMEOUT = 60.0


class RelayError(ValueError):
    """The relay URL is malformed; the message says what is wrong and what is expected."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # 4xx or no answer: retry later
    PERMANENT = "permanent"  # 5xx: a bounce of this recipient


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    reply_code: str = ""  # "250", "451", "550"; empty when the server never answered
    response: str = ""  # the server's full reply ("550 5.1.1 <x@y>: User unknown"), or the error
    command: str = ""  # CONN, EHLO, STARTTLS, AUTH, MAIL, RCPT or DATA
    dsn_requested: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def text(self) -> str:
        """The reply on one line without its codes: ``5.1.1 <x@y>: User unknown``."""
        code = self.reply_code
        if not code:
            return self.response
        lines = [
            line[len(code) + 1 :] if line.startswith(code) else line
            for line in self.response.splitlines()
        ]
        return " ".join(line.strip() for line in lines if line.strip())


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    security: str  # plain, starttls, tls
    username: str = ""
    password: str = ""
    timeout: float = DEFAULT_TIMEOUT
    helo: str = ""
    cafile: str = ""
    verify: bool = True

    @property
    def name(self) -> str:
        """How reports name the relay (never with the credentials)."""
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile or None)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


_EXPECTED = "expected smtp://[user:pass@]host[:port], smtp+starttls://... or smtps://..."


def parse_relay_url(url: str) -> RelayConfig:
    """The relay settings of ``url``; RelayError says what is wrong with it."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise RelayError(f"relay URL {_redacted(url)!r}: {exc}; {_EXPECTED}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise RelayError(f"relay URL {_redacted(url)!r}: unknown scheme {scheme!r}; {_EXPECTED}")
    if not parts.hostname:
        raise RelayError(f"relay URL {_redacted(url)!r}: no host; {_EXPECTED}")
    if parts.path not in ("", "/"):
        raise RelayError(f"relay URL {_redacted(url)!r}: a relay URL has no path; {_EXPECTED}")
    security, default_port = _SCHEMES[scheme]
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(options) - {"timeout", "helo", "cafile", "verify"}
    if unknown:
        raise RelayError(
            f"relay URL {_redacted(url)!r}: unknown option(s) {', '.join(sorted(unknown))}; "
            "known: timeout, helo, cafile, verify"
        )
    try:
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise RelayError(f"relay URL: timeout={options['timeout']!r} is not a number") from None
    if (parts.username is None) != (parts.password is None):
        raise RelayError(f"relay URL {_redacted(url)!r}: give both user and password, or neither")
    return RelayConfig(
        host=parts.hostname,
        port=port or default_port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        timeout=timeout,
        helo=options.get("helo", ""),
        cafile=options.get("cafile", ""),
        verify=options.get("verify", "yes").lower() not in ("no", "0", "false", "off"),
    )


def _redacted(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"


class _Failed(Exception):
    """A step of the session failed; ``result`` is what the caller gets."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.response)
        self.result = result


def reply_text(code: int, message: bytes | str) -> str:
    """The server's reply as it was on the wire: ``550-first line`` ... ``550 last line``."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    lines = text.splitlines() or [""]
    return "\n".join(
        f"{code}{'-' if i < len(lines) - 1 else ' '}{line}".rstrip() for i, line in enumerate(lines)
    )


def _result(code: int, message: bytes | str, command: str, *, dsn: bool = False) -> SendResult:
    if 200 <= code < 400:
        outcome = Outcome.ACCEPTED
    elif 500 <= code < 600:
        outcome = Outcome.PERMANENT
    else:
        outcome = Outcome.TEMPORARY
    return SendResult(outcome, str(code), reply_text(code, message), command, dsn)


def xtext(value: str) -> str:
    """RFC 3461 xtext: printable ASCII except ``+`` and ``=`` as is, the rest as ``+HH``."""
    return "".join(
        c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


class Relay:
    """A connection to the relay, opened on first use and kept for the next messages.

    Not thread-safe: one per worker thread. A connection the relay closed while idle is
    reopened once, transparently.
    """

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def send(self, message: Outgoing) -> SendResult:
        """Hand one message to the relay; what the relay answered, as data."""
        reused = self._smtp is not None
        try:
            result = self._transaction(self._connection(), message)
        except _Failed as failed:
            self._drop()  # the connection is gone or unusable
            result = failed.result
        if reused and result.command == "MAIL" and result.reply_code in ("", "421"):
            self._drop()  # it was closed while idle: one fresh try
            return self.send(message)
        return result

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        helo = config.helo or socket.getfqdn()
        try:
            if config.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    local_hostname=helo,
                    timeout=config.timeout,
                    context=config.ssl_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    config.host, config.port, local_hostname=helo, timeout=config.timeout
                )
        except smtplib.SMTPConnectError as exc:  # the greeting was a refusal
            raise _Failed(_temporary(exc.smtp_code, exc.smtp_error, "CONN")) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _Failed(_no_answer(exc, "CONN", config)) from None
        try:
            self._hello(smtp)
        except _Failed:
            smtp.close()
            raise
        return smtp

    def _hello(self, smtp: smtplib.SMTP) -> None:
        """EHLO, STARTTLS and login, as configured. Failures here are always temporary."""
        config = self.config
        step = "EHLO"
        try:
            ehlo(smtp)
            if config.security == "starttls":
                step = "STARTTLS"
                if not smtp.has_extn("starttls"):
                    raise _Failed(
                        SendResult(
                            Outcome.TEMPORARY,
                            "",
                            f"the relay {config.name} does not offer "
                            "STARTTLS, which the relay URL (smtp+starttls://) requires",
                            "STARTTLS",
                        )
                    )
                smtp.starttls(context=config.ssl_context())
                step = "EHLO"
                ehlo(smtp)
            if config.username:
                step = "AUTH"
                _login(smtp, config)
        except smtplib.SMTPResponseException as exc:
            raise _Failed(_temporary(exc.smtp_code, exc.smtp_error, step)) from None
        except (OSError, ValueError, smtplib.SMTPException) as exc:  # ValueError: non-ASCII login
            raise _Failed(_no_answer(exc, step, config)) from None

    def _transaction(self, smtp: smtplib.SMTP, message: Outgoing) -> SendResult:
        dsn = smtp.has_extn("dsn")
        mail_options, rcpt_options = [], []
        if smtp.has_extn("size"):
            mail_options.append(f"SIZE={len(message.data)}")
        if dsn:
            mail_options += ["RET=HDRS", f"ENVID={xtext(message.envid)}"]
            rcpt_options += [
                "NOTIFY=SUCCESS,FAILURE,DELAY",
                f"ORCPT=rfc822;{xtext(message.recipient)}",
            ]
        if not message.recipient.isascii():
            if not smtp.has_extn("smtputf8"):
                return SendResult(
                    Outcome.PERMANENT,
                    "553",
                    f"553 5.6.7 (bounceback) the relay {self.config.name}"
                    " does not offer SMTPUTF8, needed for a non-ASCII address",
                    "MAIL",
                    dsn,
                )
            mail_options.append("SMTPUTF8")
            smtp.command_encoding = "utf-8"
        try:
            return self._exchange(smtp, message, mail_options, rcpt_options, dsn)
        finally:
            smtp.command_encoding = "ascii"

    def _exchange(
        self,
        smtp: smtplib.SMTP,
        message: Outgoing,
        mail_options: list[str],
        rcpt_options: list[str],
        dsn: bool,
    ) -> SendResult:
        step = "MAIL"
        reply: bytes | str
        try:
            code, reply = smtp.mail(message.envelope_from, mail_options)
            if code == 250:
                step = "RCPT"
                code, reply = smtp.rcpt(message.recipient, rcpt_options)
            if code in (250, 251):
                step = "DATA"
                code, reply = smtp.data(message.data)
        except smtplib.SMTPResponseException as exc:  # DATA not answered by 354, or 421
            code, reply = exc.smtp_code, exc.smtp_error
        except (OSError, smtplib.SMTPException) as exc:
            raise _Failed(_no_answer(exc, step, self.config)) from None
        result = _result(code, reply, step, dsn=dsn)
        if code == 421:  # the relay is closing the connection
            self._drop()
        elif not result.accepted or step != "DATA":
            self._reset(smtp)
        return result

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()


def ehlo(smtp: smtplib.SMTP) -> None:
    """EHLO, or HELO from a server that does not speak ESMTP; raises when neither is taken."""
    code, reply = smtp.ehlo()
    if code != 250:
        code, reply = smtp.helo()
        if code != 250:
            raise smtplib.SMTPHeloError(code, reply)


_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")  # smtplib's; the first the relay offers is used


def _login(smtp: smtplib.SMTP, config: RelayConfig) -> None:
    """Log in with one mechanism. Unlike ``smtplib.SMTP.login`` a refused password is not
    tried again with the next mechanism (which some servers count as more failed logins)."""
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPNotSupportedError(
            f"the relay {config.name} offers no login mechanism we know ({' '.join(offered)})"
        )
    smtp.user, smtp.password = config.username, config.password
    method = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
    smtp.auth(mechanism, method, initial_response_ok=True)  # raises SMTPAuthenticationError


def _temporary(code: int, message: bytes | str, command: str) -> SendResult:
    """A refusal before the transaction: whatever its code, nothing about the recipient."""
    result = _result(code, message, command)
    return SendResult(Outcome.TEMPORARY, result.reply_code, result.response, command)


def _no_answer(error: BaseException, command: str, config: RelayConfig) -> SendResult:
    detail = str(error) or type(error).__name__
    return SendResult(
        Outcome.TEMPORARY,
        "",
        f"{command} failed at the relay {config.name}: {detail}",
        command,
    )
