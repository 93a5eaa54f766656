"""One IMAP connection to a user's mailbox, with what the inbox poller needs and nothing more:
open (TLS, STARTTLS or plain), SELECT INBOX, search by UID and by date, fetch without marking
anything read (BODY.PEEK), flag, move, and IDLE (RFC 2177), which Python 3.11's imaplib lacks.

Reading never changes the user's mailbox: messages are fetched with BODY.PEEK, so a message we
decide is not ours stays exactly as it was (unread if it was unread). Only the notices about our
own email are flagged, or moved to a folder.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import selectors
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from bounceback.service.db.models import MailboxSecurity

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UID = re.compile(rb"\bUID (\d+)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_CHANGED = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.I)
_Error = (OSError, EOFError, imaplib.IMAP4.error)  # imaplib's abort is an IMAP4.error


class ImapError(Exception):
    """The server refused a command, or the connection broke: the poller reconnects."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    internal_date: datetime | None


@dataclass(frozen=True)
class Selected:
    uidvalidity: int
    uidnext: int  # 0 when the server did not say


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def folder_name(name: str) -> str:
    """A folder name as IMAP writes it: modified UTF-7 (RFC 3501 section 5.1.3), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return quoted("".join(out))


def imap_date(when: datetime) -> str:
    """A date for SEARCH SINCE (English month names whatever the locale)."""
    return f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year}"


def parse_internal_date(value: bytes) -> datetime | None:
    try:
        day, month, rest = value.decode().strip().split("-", 2)
        parsed = datetime.strptime(
            f"{int(day):02d}-{_MONTHS.index(month.title()) + 1:02d}-{rest}", "%d-%m-%Y %H:%M:%S %z"
        )
    except ValueError:
        return None
    return parsed.astimezone(UTC)


class ImapConnection:
    """A logged-in connection; every failure is an ``ImapError``."""

    def __init__(
        self,
        host: str,
        port: int,
        security: MailboxSecurity,
        login: str,
        password: str,
        *,
        timeout: float = 60.0,
        cafile: str = "",
    ) -> None:
        self.name = f"{host}:{port}"
        context = ssl.create_default_context(cafile=cafile or None)
        try:
            if security is MailboxSecurity.TLS:
                self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    host, port, ssl_context=context, timeout=timeout
                )
            else:
                self.conn = imaplib.IMAP4(host, port, timeout=timeout)
        except (*_Error, ssl.SSLError) as exc:
            raise ImapError(f"connecting to {self.name} failed: {_why(exc)}") from None
        step = "starting TLS (STARTTLS)"
        try:
            if security is MailboxSecurity.STARTTLS:
                self.conn.starttls(ssl_context=context)
            step = "logging in"
            self.conn.login(login, password)
            self.capabilities = self._capabilities()
        except (*_Error, UnicodeError) as exc:
            self.close()
            raise ImapError(f"{step} at {self.name} failed: {_why(exc)}") from None
        self._created: set[str] = set()

    def _capabilities(self) -> frozenset[str]:
        _, data = self.conn.capability()
        words = " ".join(_text(d) for d in data if d).upper().split()
        return frozenset(words) | frozenset(c.upper() for c in self.conn.capabilities)

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def _run(self, what: str, call: Callable[[], tuple[str, Sequence[Any]]]) -> Sequence[Any]:
        try:
            status, data = call()
        except _Error as exc:
            raise ImapError(f"{what} at {self.name} failed: {_why(exc)}") from None
        if status != "OK":
            detail = " ".join(_text(d) for d in data if d)
            raise ImapError(f"{what} at {self.name} failed: {status} {detail}")
        return data

    # -- reading --
    def select_inbox(self) -> Selected:
        """SELECT INBOX read-write (flags can be set; nothing is marked read by it)."""
        self._run("opening the INBOX (SELECT)", lambda: self.conn.select("INBOX"))
        validity = self._number("UIDVALIDITY")
        if validity is None:
            raise ImapError(f"the INBOX at {self.name} has no UIDVALIDITY")
        return Selected(validity, self._number("UIDNEXT") or 0)

    def _number(self, code: str) -> int | None:
        _, values = self.conn.response(code)
        for value in reversed(values or []):
            with contextlib.suppress(ValueError):
                return int(_text(value).split()[0])
        return None

    def _uids(self, what: str, *criteria: str) -> list[int]:
        data = self._run(what, lambda: self.conn.uid("SEARCH", *criteria))
        words = " ".join(_text(d) for d in data if d).split()
        return sorted({int(w) for w in words if w.isdigit()})

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid`` ("n:*" also names the last message: filtered)."""
        found = self._uids("searching new messages", "UID", f"{last_uid + 1}:*")
        return [uid for uid in found if uid > last_uid]

    def uids_since(self, when: datetime) -> list[int]:
        """UIDs of the messages that arrived at ``when`` or after (by INTERNALDATE)."""
        # SINCE compares dates in the server's time zone: a day earlier, then the exact times.
        day_before = imap_date(when - timedelta(days=1))
        candidates = self._uids("searching recent messages", "SINCE", day_before)
        if not candidates:
            return []
        dates = self.internal_dates(candidates)
        return [uid for uid in candidates if (dates.get(uid) or when) >= when]

    def internal_dates(self, uids: list[int]) -> dict[int, datetime | None]:
        data = self._run(
            "reading arrival dates",
            lambda: self.conn.uid("FETCH", ",".join(map(str, uids)), "(UID INTERNALDATE)"),
        )
        dates: dict[int, datetime | None] = {}
        for item in data:
            meta = item[0] if isinstance(item, tuple) else item
            if isinstance(meta, bytes) and (uid := _UID.search(meta)):
                date = _DATE.search(meta)
                dates[int(uid.group(1))] = parse_internal_date(date.group(1)) if date else None
        return dates

    def fetch(self, uid: int, max_bytes: int) -> Fetched | None:
        """The message (its first ``max_bytes``) without marking it read; None when it is gone."""
        data = self._run(
            f"reading message {uid}",
            lambda: self.conn.uid(
                "FETCH", str(uid), f"(UID INTERNALDATE BODY.PEEK[]<0.{max_bytes}>)"
            ),
        )
        for item in data:
            if isinstance(item, tuple) and len(item) >= 2:
                meta, raw = item[0], item[1]
                found = _UID.search(meta) if isinstance(meta, bytes) else None
                if found and int(found.group(1)) == uid and isinstance(raw, bytes):
                    date = _DATE.search(meta)
                    return Fetched(uid, raw, parse_internal_date(date.group(1)) if date else None)
        return None

    # -- changing (our own notices only) --
    def flag(self, uid: int) -> None:
        self._run(
            f"flagging message {uid}",
            lambda: self.conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Flagged)"),
        )

    def move(self, uid: int, folder: str) -> None:
        """Move to ``folder``, created when missing (MOVE, or COPY and UID EXPUNGE)."""
        name = folder_name(folder)
        if name not in self._created:
            with contextlib.suppress(*_Error):  # exists already: NO [ALREADYEXISTS]
                self.conn.create(name)
            self._created.add(name)
        if "MOVE" in self.capabilities:
            self._run(f"moving message {uid}", lambda: self.conn.uid("MOVE", str(uid), name))
            return
        self._run(f"copying message {uid}", lambda: self.conn.uid("COPY", str(uid), name))
        self._run(
            f"removing message {uid} from the INBOX",
            lambda: self.conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"),
        )
        if "UIDPLUS" in self.capabilities:  # expunges this message only, never the user's others
            self._run(f"expunging message {uid}", lambda: self.conn.uid("EXPUNGE", str(uid)))

    # -- waiting --
    def idle(self, seconds: float, stop: Callable[[], bool]) -> bool:
        """Wait in IDLE until the INBOX changes, ``seconds`` pass or ``stop()``; whether it
        changed. The server's answers are read from the socket directly (imaplib's buffer is
        empty between commands), polling ``stop`` twice a second."""
        lines = _Lines(self.conn.sock)
        tag = self.conn._new_tag()  # imaplib's own tag counter: responses stay in step
        try:
            self.conn.send(tag + b" IDLE\r\n")
            changed = self._until_continuation(lines, tag)
            deadline = monotonic() + seconds
            while not changed and not stop() and monotonic() < deadline:
                if lines.ready(0.5):
                    changed = self._idle_line(lines.line())
            self.conn.send(b"DONE\r\n")
            while True:
                line = lines.line()
                if line.startswith(tag):
                    if not line[len(tag) :].strip().upper().startswith(b"OK"):
                        raise ImapError(f"IDLE at {self.name} ended with {_text(line).strip()}")
                    return changed
                changed = self._idle_line(line) or changed
        except (OSError, EOFError, imaplib.IMAP4.error) as exc:
            raise ImapError(f"waiting (IDLE) at {self.name} failed: {_why(exc)}") from None
        finally:
            lines.close()
            self.conn.tagged_commands.pop(tag, None)  # answered here, not through imaplib

    def _until_continuation(self, lines: _Lines, tag: bytes) -> bool:
        changed = False
        while True:
            line = lines.line()
            if line.startswith(b"+"):
                return changed
            if line.startswith(tag):
                raise ImapError(f"the server refused IDLE: {_text(line).strip()}")
            changed = self._idle_line(line) or changed

    def _idle_line(self, line: bytes) -> bool:
        if line.upper().startswith(b"* BYE"):
            raise ImapError(f"the server at {self.name} closed the connection: {_text(line)}")
        return bool(_CHANGED.match(line))

    def noop(self) -> None:
        self._run("NOOP", self.conn.noop)

    def close(self) -> None:
        """Log out politely, or just drop the connection."""
        try:
            self.conn.logout()
        except (*_Error, ValueError):
            with contextlib.suppress(OSError, ValueError):
                self.conn.shutdown()


class _Lines:
    """Lines read from a socket with our own buffer (ready() can look before blocking)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.selector = selectors.DefaultSelector()  # epoll: no limit on descriptor numbers
        self.selector.register(sock, selectors.EVENT_READ)

    def ready(self, timeout: float) -> bool:
        if b"\n" in self.buffer:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        return bool(self.selector.select(timeout))

    def close(self) -> None:
        self.selector.close()

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buffer += chunk
        end = self.buffer.index(b"\n") + 1
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        return line


def _why(error: BaseException) -> str:
    if isinstance(error, UnicodeError):
        return "the login and password must be ASCII for IMAP LOGIN"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return " ".join(str(error).split())  # its args[0] is a bare number
    detail = error.args[0] if error.args else ""
    return " ".join(_text(detail).split()) or type(error).__name__
