"""The inbox poller: reads every connected mailbox's INBOX and hands each new message to
``domain.inbox`` (a bounce of our one-to-one email? a reply? none of ours?).

One thread per mailbox. It waits with IMAP IDLE where the server offers it (a new message is seen
within a second), otherwise it polls every ``interval`` seconds. The UIDVALIDITY/UID checkpoint is
kept on the ``Mailbox`` row and advanced only after a message was recorded and acted on, so a
restart (of the server or of bounceback) neither reprocesses nor misses a message; recording is
idempotent besides, so the rare message seen twice after a crash records nothing twice.

- First poll of a mailbox: the messages that arrived since it was connected (at most a day back).
- A changed UIDVALIDITY (the server rebuilt its index: UIDs mean nothing any more): the messages
  that arrived since the last poll (with a margin), said in ``last_error`` and the log.
- A broken connection: reconnect with a growing delay (``backoff``), the error in ``last_error``.

However many workers run, one poller reads a mailbox at a time: a watcher holds a lease on the row
(``poll_owner``, ``poll_lease_until``), renewed every cycle and released when it stops; another
process takes over when the lease runs out, or at once when the holder was a process of the same
machine that is gone (bounceback killed and started again).

Runs in the processes with the ``worker`` role (``runner.serve``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Mailbox, MailboxSecurity, utcnow
from bounceback.service.db.session import transaction
from bounceback.service.domain import inbox, mailboxes
from bounceback.service.domain.secrets_box import CredentialsUnreadable
from bounceback.service.receivers.imapconn import ImapConnection, ImapError
from bounceback.service.settings import Settings

log = logging.getLogger(__name__)

NOTICE = "Notice: "  # a last_error that is news, not a failure: kept until the next error


@dataclass(frozen=True)
class PollerOptions:
    """How the poller waits. The defaults suit production; tests shorten them."""

    use_idle: bool = True
    idle_cycle: float = 30.0  # IDLE is renewed (and the lease, and last_poll_at) this often
    interval: float = 60.0  # between polls where the server has no IDLE
    lease: float = 120.0  # how long a silent watcher keeps its mailbox from other processes
    refresh: float = 5.0  # how often the list of mailboxes is read again
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    timeout: float = 60.0  # of one IMAP command
    margin: timedelta = timedelta(minutes=10)  # looking back after a UIDVALIDITY change
    first_look_back: timedelta = timedelta(days=1)
    cafile: str = ""  # a CA bundle to trust besides the system's (a private CA, tests)


@dataclass(frozen=True)
class _Snapshot:
    """What a watcher needs from the row, read at the start of each connection."""

    id: int
    account_id: int
    host: str
    port: int
    security: MailboxSecurity
    login: str
    password: str
    uidvalidity: int | None
    last_uid: int
    since: datetime  # where a first look (or a look after a UIDVALIDITY change) starts


def fingerprint(mailbox: Mailbox) -> tuple[object, ...]:
    """What, when changed, means the watcher must connect again."""
    return (
        mailbox.imap_host,
        mailbox.imap_port,
        str(mailbox.imap_security),
        mailbox.imap_login,
        mailbox.imap_password,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# This process, told apart from an earlier one that had the same process id.
_INCARNATION = secrets.token_hex(4)


def owner_name() -> str:
    """A poller's name in ``poll_owner``: host, process id, this process, this poller."""
    return f"{socket.gethostname()}:{os.getpid()}:{_INCARNATION}:{secrets.token_hex(4)}"[:100]


def stale(owner: str) -> bool:
    """Whether ``owner`` is a poller of a process of this machine that is gone."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False  # another machine's: its lease runs out by itself
    pid, incarnation = int(parts[1]), parts[2]
    if pid == os.getpid():
        return incarnation != _INCARNATION
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


class LostLease(Exception):
    """Another poller has the mailbox now, or its IMAP account changed under us."""


class MailboxWatcher:
    """Reads one mailbox until stopped."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        mailbox_id: int,
        owner: str,
        options: PollerOptions,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.mailbox_id = mailbox_id
        self.owner = owner
        self.options = options
        self._stop = threading.Event()
        self._current: _Snapshot | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"bounceback-imap-{mailbox_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the loop --
    def _run(self) -> None:
        delay = self.options.backoff_min
        try:
            while not self._stop.is_set():
                if not self._claim():
                    self._stop.wait(self.options.lease / 3)
                    continue
                try:
                    self._session()
                    delay = self.options.backoff_min
                except LostLease:
                    continue
                except (ImapError, CredentialsUnreadable, SQLAlchemyError, OSError) as exc:
                    self._failed(str(exc))
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.options.backoff_max)
                except Exception as exc:  # a bug must not end the watcher for good
                    log.exception("inbox poller of mailbox %s", self.mailbox_id)
                    self._failed(f"internal error: {exc}")
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.options.backoff_max)
        finally:
            self._release()

    def _session(self) -> None:
        """One connection: catch up, then wait for news and read them, until stopped."""
        snapshot = self._current = self._snapshot()
        if snapshot is None:
            self._stop.set()  # the mailbox was disconnected
            return
        conn = ImapConnection(
            snapshot.host,
            snapshot.port,
            snapshot.security,
            snapshot.login,
            snapshot.password,
            timeout=self.options.timeout,
            cafile=self.options.cafile,
        )
        try:
            selected = conn.select_inbox()
            last_uid = self._start_point(conn, snapshot, selected.uidvalidity, selected.uidnext)
            while not self._stop.is_set():
                last_uid = self._read_new(conn, snapshot, selected.uidvalidity, last_uid)
                self._healthy()
                if self.options.use_idle and conn.can_idle:
                    conn.idle(self.options.idle_cycle, self._stop.is_set)
                else:
                    self._stop.wait(self.options.interval)
                    conn.noop()
        finally:
            conn.close()

    def _start_point(
        self, conn: ImapConnection, snapshot: _Snapshot, uidvalidity: int, uidnext: int
    ) -> int:
        """The UID after which messages are new. With no valid checkpoint: the recent messages
        are read first (first poll, or the server's UIDs changed), then the checkpoint set."""
        if snapshot.uidvalidity == uidvalidity:
            return snapshot.last_uid
        recent = conn.uids_since(snapshot.since)
        if snapshot.uidvalidity is not None:
            self._notice(
                f"the server renumbered the INBOX (UIDVALIDITY {snapshot.uidvalidity} became "
                f"{uidvalidity}): read again the messages that arrived since "
                f"{snapshot.since:%Y-%m-%d %H:%M} UTC"
            )
        top = max([uidnext - 1, *recent, 0])
        for uid in recent:
            self._handle(conn, snapshot, uid)
        self._checkpoint(uidvalidity, top)
        return top

    def _read_new(
        self, conn: ImapConnection, snapshot: _Snapshot, uidvalidity: int, last_uid: int
    ) -> int:
        for uid in conn.uids_after(last_uid):
            if self._stop.is_set():
                break
            self._handle(conn, snapshot, uid)
            self._checkpoint(uidvalidity, uid)
            last_uid = uid
        return last_uid

    def _handle(self, conn: ImapConnection, snapshot: _Snapshot, uid: int) -> None:
        """Record what the message means, then act on it in the mailbox (in this order: a
        crash between the two acts again after the restart; recording twice records once)."""
        fetched = conn.fetch(uid, self.settings.max_message_bytes)
        if fetched is None:
            return  # deleted meanwhile
        try:
            with transaction(self.factory) as session:
                decision, action = inbox.process_inbox_message(
                    session,
                    snapshot.account_id,
                    snapshot.id,
                    fetched.raw,
                    received_at=fetched.internal_date,
                )
        except SQLAlchemyError:
            raise  # the database is away: try again later, from this message
        except Exception as exc:  # one message we cannot read must not stop the mailbox
            log.exception("mailbox %s: message UID %s", snapshot.id, uid)
            self._failed(f"message UID {uid} could not be processed: {exc}")
            return
        if decision.kind is not inbox.InboxKind.NOT_OURS:
            log.info(
                "mailbox %s: UID %s is a %s (direct message %s, by %s)",
                snapshot.id,
                uid,
                decision.kind.value,
                decision.direct_message_id,
                decision.matched_by,
            )
        if action.flag:
            conn.flag(uid)
        if action.move_to:
            conn.move(uid, action.move_to)

    # -- the row --
    def _snapshot(self) -> _Snapshot | None:
        with self.factory() as session:
            mailbox = session.get(Mailbox, self.mailbox_id)
            if mailbox is None:
                return None
            endpoint = mailboxes.imap_endpoint(self.settings, mailbox)
            now = utcnow()
            if mailbox.uidvalidity is None:  # first look: since it was connected
                since = max(_aware(mailbox.created_at), now - self.options.first_look_back)
            else:
                since = _aware(mailbox.last_poll_at or mailbox.created_at)
            return _Snapshot(
                id=mailbox.id,
                account_id=mailbox.account_id,
                host=endpoint.host,
                port=endpoint.port,
                security=endpoint.security,
                login=endpoint.login,
                password=endpoint.password,
                uidvalidity=mailbox.uidvalidity,
                last_uid=mailbox.last_uid or 0,
                since=since - self.options.margin,
            )

    def _claim(self) -> bool:
        """Take (or renew) the lease on the mailbox; False while another poller holds it. A
        lease of a process of this machine that is gone (killed, then started again) is taken
        at once rather than when it runs out."""
        now = utcnow()
        try:
            with transaction(self.factory) as session:
                holder = session.scalar(
                    select(Mailbox.poll_owner).where(Mailbox.id == self.mailbox_id)
                )
                free = ["", self.owner]
                if holder and holder != self.owner and stale(holder):
                    free.append(holder)
                result = session.execute(
                    update(Mailbox)
                    .where(
                        Mailbox.id == self.mailbox_id,
                        or_(
                            Mailbox.poll_owner.in_(free),
                            Mailbox.poll_lease_until.is_(None),
                            Mailbox.poll_lease_until < now,
                        ),
                    )
                    .values(
                        poll_owner=self.owner,
                        poll_lease_until=now + timedelta(seconds=self.options.lease),
                    )
                    .execution_options(synchronize_session=False)
                )
                return getattr(result, "rowcount", 0) == 1
        except SQLAlchemyError:
            log.exception("mailbox %s: claiming it failed", self.mailbox_id)
            return False

    def _checkpoint(self, uidvalidity: int, last_uid: int) -> None:
        self._update(uidvalidity=uidvalidity, last_uid=last_uid)

    def _healthy(self) -> None:
        """A good poll: the time, the lease renewed, and a past failure forgotten."""
        now = utcnow()
        values: dict[str, object] = {
            "last_poll_at": now,
            "poll_lease_until": now + timedelta(seconds=self.options.lease),
        }
        with transaction(self.factory) as session:
            error = session.scalar(select(Mailbox.last_error).where(Mailbox.id == self.mailbox_id))
        if error and not error.startswith(NOTICE):
            values["last_error"] = ""
        self._update(**values)

    def _update(self, **values: object) -> None:
        """Write to the row while it is ours and still names the account we read (a user who
        points the mailbox elsewhere resets the checkpoint: it must not be written over)."""
        current = self._current
        assert current is not None
        with transaction(self.factory) as session:
            result = session.execute(
                update(Mailbox)
                .where(
                    Mailbox.id == self.mailbox_id,
                    Mailbox.poll_owner == self.owner,
                    Mailbox.imap_host == current.host,
                    Mailbox.imap_port == current.port,
                    Mailbox.imap_login == current.login,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise LostLease(f"mailbox {self.mailbox_id}: another poller has it, or it changed")

    def _failed(self, error: str) -> None:
        log.warning("mailbox %s: %s", self.mailbox_id, error)
        self._set_error(error[:2000])

    def _notice(self, text: str) -> None:
        log.warning("mailbox %s: %s", self.mailbox_id, text)
        self._set_error(NOTICE + text)

    def _set_error(self, text: str) -> None:
        try:
            with transaction(self.factory) as session:
                session.execute(
                    update(Mailbox)
                    .where(Mailbox.id == self.mailbox_id)
                    .values(last_error=text)
                    .execution_options(synchronize_session=False)
                )
        except SQLAlchemyError:
            log.exception("mailbox %s: recording its error failed", self.mailbox_id)

    def _release(self) -> None:
        try:
            with transaction(self.factory) as session:
                session.execute(
                    update(Mailbox)
                    .where(Mailbox.id == self.mailbox_id, Mailbox.poll_owner == self.owner)
                    .values(poll_owner="", poll_lease_until=None)
                    .execution_options(synchronize_session=False)
                )
        except SQLAlchemyError:
            log.exception("mailbox %s: releasing it failed", self.mailbox_id)


class InboxPoller:
    """Watches every connected mailbox: a watcher per mailbox, started and stopped as mailboxes
    are connected, changed and disconnected. ``stop`` ends them all and releases their leases."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        options: PollerOptions | None = None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.options = options or PollerOptions()
        self.owner = owner_name()
        self.watchers: dict[int, tuple[tuple[object, ...], MailboxWatcher]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the inbox poller is running already")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bounceback-imap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except SQLAlchemyError:
                log.exception("inbox poller: reading the mailboxes failed")
            self._stop.wait(self.options.refresh)

    def refresh(self) -> None:
        """Start a watcher for each new (or changed) mailbox, stop those of the others."""
        with self.factory() as session:
            current = {m.id: fingerprint(m) for m in session.scalars(select(Mailbox)).all()}
        for mailbox_id, (print_, watcher) in list(self.watchers.items()):
            if current.get(mailbox_id) != print_ or not watcher.alive:
                watcher.stop()
                watcher.join(self.options.timeout)
                del self.watchers[mailbox_id]
        for mailbox_id, print_ in current.items():
            if mailbox_id not in self.watchers and not self._stop.is_set():
                watcher = MailboxWatcher(
                    self.settings, self.factory, mailbox_id, self.owner, self.options
                )
                self.watchers[mailbox_id] = (print_, watcher)
                watcher.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for _, watcher in self.watchers.values():
            watcher.stop()
        for _, watcher in self.watchers.values():
            watcher.join(timeout)
        self.watchers.clear()
