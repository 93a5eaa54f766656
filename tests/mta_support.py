"""A real MTA for the tests: a private, systemd-free Postfix on loopback, a fake remote MX that
answers like real servers, a plain sink, and ``bounceback serve`` run as a subprocess by role.

Postfix runs with its own configuration and queue under a temporary folder (``postfix -c``), DNS
off, listening on a free loopback port, with queue timers of seconds: a deferred message is
retried every couple of seconds, a "delayed" notice goes out after a few seconds and a message
is given up (a "failed" notice) after ``lifetime``. Routing:

- the local domain (``local.test``): Postfix's own; unknown users are refused at RCPT (the
  default ``local_recipient_maps``), so no notice is generated: the sender sees the 550;
- each bounce domain: to the SMTP server named for it (bounceback's receiver, or a sink), through
  the ``bounces`` transport, which ``hold_bounces`` can stop (notices wait in the queue);
- every other domain: the fake remote MX.

Postfix refuses to run without root (its master starts as root and drops to ``postfix``), and it
must be installed (Debian's package; CI installs it). ``require_postfix`` skips otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Email,
    RawBounce,
    RawStatus,
    Send,
    SendStatus,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, verp
from bounceback.service.outbound import message as outbound
from bounceback.service.outbound.message import Outgoing
from bounceback.service.outbound.relay import Relay, parse_relay_url
from bounceback.service.receivers.smtp import ThreadedController
from bounceback.service.settings import Settings, load

POSTFIX_SBIN = Path("/usr/sbin")
LOCAL_DOMAIN = "local.test"
HOSTNAME = "mta.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str | Callable[[], str], check: Callable[[], Any], timeout: float, every: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` at the deadline
    (a function is called then: it can describe the state things were left in)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {said}")
        time.sleep(every)


def postfix_problem() -> str:
    """Why a private Postfix cannot run here, or "" when it can."""
    if not (POSTFIX_SBIN / "postfix").exists():
        return (
            "Postfix is not installed (apt-get install postfix; CI installs it): "
            "the tests with a real MTA need it"
        )
    if os.geteuid() != 0:
        return "a private Postfix needs root (its master process starts as root)"
    return ""


def require_postfix() -> None:
    problem = postfix_problem()
    if problem:
        pytest.skip(problem)


# --- the fake remote MX -------------------------------------------------------------------------

# RCPT answers by the beginning of the recipient's local part.
REFUSALS = {
    "unknown": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown in virtual mailbox "
    "table",
    "full": "552 5.2.2 <{addr}>: Mailbox full: quota exceeded",
    "spam": "554 5.7.1 <{addr}>: Message rejected as spam by Content Filtering",
    "dmarc": "550 5.7.26 Unauthenticated email from acme.test is not accepted due to domain's "
    "DMARC policy. Please contact the administrator of acme.test domain.",
    "tempfail": "421 4.7.0 mx.remote.test Service not available, try again later",
}
GREYLIST = "450 4.2.0 <{addr}>: Recipient address rejected: Greylisted, please try again later"
DATA_REJECT = "554 5.6.0 Message content rejected by remote policy"
RECOVERS_AFTER = 10.0  # seconds: "later*" answers 421 until then, then accepts


@dataclass
class RemoteMX:
    """Answers like receiving servers, per recipient local part: ``unknown`` 550 5.1.1, ``full``
    552 5.2.2, ``spam`` 554 5.7.1, ``dmarc`` 550 5.7.26, ``tempfail`` 421 4.7.0 (always),
    ``greylist`` 450 the first time then accepted, ``later`` 421 for ``RECOVERS_AFTER`` seconds
    then accepted, ``datareject`` 554 5.6.0 after DATA; anyone else is accepted."""

    recovers_after: float = RECOVERS_AFTER
    port: int = 0  # where it listens, once started
    accepted: list[Envelope] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # address -> RCPT refusals
    first_seen: dict[str, float] = field(default_factory=dict)

    def answer(self, address: str) -> str | None:
        """The refusal for ``address`` now, or None to accept it."""
        local = address.rpartition("@")[0].lower()
        self.first_seen.setdefault(address, time.monotonic())
        for prefix, reply in REFUSALS.items():
            if local.startswith(prefix):
                return reply.format(addr=address)
        if local.startswith("greylist") and address not in self.refused:
            return GREYLIST.format(addr=address)
        waited = time.monotonic() - self.first_seen[address]
        if local.startswith("later") and waited < self.recovers_after:
            return REFUSALS["tempfail"]
        return None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.answer(address)
        if refusal is not None:
            self.refused[address] = self.refused.get(address, 0) + 1
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        if any(r.lower().startswith("datareject") for r in envelope.rcpt_tos):
            return DATA_REJECT
        self.accepted.append(envelope)
        return "250 2.0.0 Ok: queued as F4K3"

    def accepted_for(self, address: str) -> int:
        return sum(address in e.rcpt_tos for e in self.accepted)


class Sink:
    """A plain SMTP server that accepts and counts every message (nothing stored)."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        self.count += 1
        return "250 2.0.0 Ok"


def start_smtp(handler: Any, port: int = 0, name: str = "mx.remote.test") -> ThreadedController:
    """An aiosmtpd server in a thread on 127.0.0.1 (port 0: any free port; see ``.port``)."""
    controller = ThreadedController(
        handler, hostname="127.0.0.1", port=port, server_hostname=name, ident="fake"
    )
    controller.start()
    return controller


# --- Postfix ------------------------------------------------------------------------------------


MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
bounces   unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
# chroot is off everywhere: a chroot under a private queue directory would need /etc files in it.

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


@dataclass
class Timers:
    """Queue timers, in Postfix's syntax. ``lifetime``: a message still deferred after this is
    given up ("failed" notice); ``delay_warning``: a "delayed" notice after this."""

    lifetime: str = "20s"
    bounce_lifetime: str = "20s"
    delay_warning: str = "3s"
    backoff: tuple[str, str] = ("2s", "4s")


class Postfix:
    """A private Postfix: ``start()``, ``stop()``; ``port`` is where it takes mail (no login,
    from loopback), ``queued()`` how many messages are in its queue."""

    def __init__(
        self,
        remote_port: int,
        bounce_routes: dict[str, int],
        *,
        timers: Timers | None = None,
        concurrency: int = 20,
    ) -> None:
        # Postfix's daemons run as the postfix user: every folder above the queue must be
        # traversable by it (pytest's tmp_path is not), and socket paths must stay short.
        self.root = Path(tempfile.mkdtemp(prefix="bb-postfix-"))
        self.root.chmod(0o755)
        self.config = self.root / "etc"
        self.spool = self.root / "spool"
        self.log = self.root / "maillog"
        self.port = free_port()
        self.remote_port = remote_port
        self.bounce_routes = dict(bounce_routes)
        self.timers = timers or Timers()
        self.concurrency = concurrency
        self.held = False

    # -- configuration --
    def main_cf(self) -> str:
        routes = [f"{d}=bounces:[127.0.0.1]:{p}" for d, p in self.bounce_routes.items()]
        t = self.timers
        # While held, a notice is not retried for an hour: nothing is in flight when the hold is
        # lifted (a reload in the middle of deliveries leaves some behind for minutes).
        backoff = ("1h", "1h") if self.held else t.backoff
        return f"""\
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.root / "data"}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.log}
maillog_file_prefixes = {self.root}
# the machine's own name may not be fully qualified: Postfix would refuse to start
myhostname = {HOSTNAME}
mydomain = {HOSTNAME}
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP private test Postfix
# local domains; the default local_recipient_maps refuses their unknown users at RCPT
mydestination = $myhostname, localhost, {LOCAL_DOMAIN}
alias_maps = inline:{{ postmaster=root }}
alias_database =
mail_spool_directory = {self.root / "mail"}/
biff = no
transport_maps = inline:{{ {", ".join(routes)} }}
default_transport = smtp:[127.0.0.1]:{self.remote_port}
relay_transport = $default_transport
defer_transports = {"bounces" if self.held else ""}
# no DNS at all: every next hop is an address
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
notify_classes =
# queue timers of seconds (a test waits for "delayed" and "failed" notices)
queue_run_delay = 1s
minimal_backoff_time = {backoff[0]}
maximal_backoff_time = {backoff[1]}
maximal_queue_lifetime = {t.lifetime}
bounce_queue_lifetime = {t.bounce_lifetime}
delay_warning_time = {t.delay_warning}
smtp_connect_timeout = 5s
# every remote domain is one fake server: its 421s must not get it marked dead for all of them
default_destination_concurrency_limit = {self.concurrency}
default_destination_concurrency_failed_cohort_limit = 1000
"""

    def write_config(self) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(exist_ok=True)
        (self.root / "mail").mkdir(exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")
        (self.config / "main.cf").write_text(self.main_cf())
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port))

    def _run(self, program: str, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [str(POSTFIX_SBIN / program), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({proc.returncode}): {proc.stderr}\n"
                f"{self.log_tail()}"
            )
        return proc.stdout

    # -- life cycle --
    def start(self) -> None:
        self.write_config()
        self._run("postfix", "check")  # creates the queue folders with their owners
        self._run("postfix", "start")
        wait_for(lambda: f"Postfix on {self.port}\n{self.log_tail()}", self._listening, 20)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def running(self) -> bool:
        return (self.spool / "pid" / "master.pid").exists() and (
            subprocess.run(
                [str(POSTFIX_SBIN / "postfix"), "-c", str(self.config), "status"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )

    def stop(self) -> None:
        """Stop the instance (``postfix stop``, then its master gone) and remove its folder."""
        if self.running():
            self._run("postfix", "stop", check=False)
            try:
                wait_for("Postfix to stop", lambda: not self.running(), 20)
            except AssertionError:
                self._run("postfix", "abort", check=False)
        if not os.environ.get("BOUNCEBACK_KEEP_POSTFIX"):  # set it to read the log afterwards
            shutil.rmtree(self.root, ignore_errors=True)

    def reload(self) -> None:
        self.write_config()
        self._run("postfix", "reload")

    # -- queue --
    def hold_bounces(self) -> None:
        """Keep the notices to the bounce domains in the queue (``defer_transports``). Call it
        while Postfix is idle (a reload restarts its queue manager)."""
        self.held = True
        self.reload()

    def release_bounces(self) -> None:
        """Let them go, all at once: reload without the hold, then flush the queue. A reload
        restarts the queue manager: first wait until nothing is being delivered (what is would
        be left aside for minutes), and flush until the queue moves (a flush reaching the queue
        manager while it restarts is lost)."""
        wait_for("Postfix to be idle", lambda: self.queued(("incoming", "active")) == 0, 30)
        held = self.queued(["deferred"])
        self.held = False
        self.reload()
        deadline = time.monotonic() + 30
        while held and self.queued(["deferred"]) >= held:
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix did not release its queue\n{self.log_tail()}")
            self.flush()
            moved = time.monotonic() + 1
            while time.monotonic() < moved and self.queued(["deferred"]) >= held:
                time.sleep(0.05)

    def flush(self) -> None:
        self._run("postqueue", "-f")

    def queued(self, queues: Iterable[str] = QUEUES) -> int:
        """Messages in the queue (queue files, counted without asking Postfix)."""
        return sum(sum(len(files) for _, _, files in os.walk(self.spool / name)) for name in queues)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no Postfix log)"
        return "Postfix log:\n" + "\n".join(text.splitlines()[-lines:])


# --- bounceback serve ---------------------------------------------------------------------------

SECRET = "mta-secret-0123456789abcdef"
BOUNCE_DOMAIN = "bounces.bb.test"
PASSWORD = "mta test admin password"


class Bounceback:
    """``bounceback serve`` in a subprocess, with the roles asked for (api, smtp, worker)."""

    def __init__(
        self,
        db_url: str,
        data_dir: Path,
        *,
        roles: tuple[str, ...] = ("api", "smtp", "worker"),
        relay_url: str = "",
        smtp_port: int | None = None,
        http_port: int | None = None,
        env: dict[str, str] | None = None,
        name: str = "serve",
    ) -> None:
        self.roles = roles
        self.smtp_port = smtp_port or free_port()
        self.http_port = http_port or free_port()
        self.env = {
            **os.environ,
            "BOUNCEBACK_DATABASE_URL": db_url,
            "BOUNCEBACK_DATA_DIR": str(data_dir),
            "BOUNCEBACK_SECRET_KEY": SECRET,
            "BOUNCEBACK_HTTP_PORT": str(self.http_port),
            "BOUNCEBACK_SMTP_PORT": str(self.smtp_port),
            "BOUNCEBACK_BOUNCE_DOMAINS": BOUNCE_DOMAIN,
            "BOUNCEBACK_RELAY_URL": relay_url,
            "BOUNCEBACK_WORKER_POLL_SECONDS": "0.05",
            "BOUNCEBACK_ROLES": ",".join(roles),
            **(env or {}),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def cli(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "bounceback.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bounceback.cli", "serve"],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(f"bounceback serve ({', '.join(self.roles)}) to be up", self._up, 60, 0.05)

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"bounceback serve exited:\n{self.log.read_text()[-3000:]}")
        if "api" in self.roles:
            return _answers_http(f"{self.url}/login")
        if "smtp" in self.roles:
            return _answers_smtp(self.smtp_port)
        return self.log.read_text().count("bounceback is running") >= self.starts

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the machine loses the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


# What the fixtures of tests/mta/conftest.py give: start a Postfix, make a serve process.
StartPostfix = Callable[..., Postfix]
RunBounceback = Callable[..., Bounceback]


def _answers_http(url: str) -> bool:
    import httpx  # noqa: PLC0415 (only the tests with the API need it)

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _answers_smtp(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(0..count-1)`` in ``count`` threads; re-raise the first failure."""
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# --- the database: deliveries to bounce, and what came of their bounces -------------------------


def service_settings(**overrides: Any) -> Settings:
    """The settings the serve processes run with, for building their messages in the test."""
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "bounce_domains": (BOUNCE_DOMAIN,),
        "public_url": "http://app.bb.test",
    }
    values.update(overrides)
    return load({}, **values)


def seed_send(factory: sessionmaker[Session], addresses: list[str]) -> list[Outgoing]:
    """One account, one email, one send with a sent delivery to each address, as if bounceback
    had just handed them to the relay: the messages it built (VERP return path, Message-ID)."""
    settings = service_settings()
    with transaction(factory) as session:
        account = accounts.create_account(session, "Acme")
        email = Email(
            account_id=account.id,
            from_address="news@acme.test",
            subject="Spring news",
            text="Hello from Acme\n",
        )
        session.add(email)
        session.flush()
        send = Send(account_id=account.id, email_id=email.id, status=SendStatus.SENDING)
        session.add(send)
        people = [Contact(account_id=account.id, email=a, properties={}) for a in addresses]
        session.add_all(people)
        session.flush()
        now = utcnow()
        deliveries = [
            Delivery(
                account_id=account.id,
                send_id=send.id,
                contact_id=c.id,
                email=c.email,
                state=DeliveryState.SENT,
                sent_at=now,
            )
            for c in people
        ]
        session.add_all(deliveries)
        session.flush()
        return [outbound.build(settings, d, email) for d in deliveries]


def relay_all(port: int, messages: list[Outgoing], threads: int = 4) -> None:
    """Hand the messages to the MTA with bounceback's own relay client, a few connections at
    once; each must be accepted."""

    def work(index: int) -> None:
        with Relay(parse_relay_url(f"smtp://127.0.0.1:{port}?helo=app.bb.test")) as relay:
            for message in messages[index::threads]:
                result = relay.send(message)
                assert result.accepted, result

    in_threads(threads, work)


@dataclass(frozen=True)
class Tally:
    raws: int
    raw_statuses: dict[str, int]
    events: int

    @property
    def unprocessed(self) -> int:
        return self.raw_statuses.get(RawStatus.RECEIVED.value, 0)


def tally(factory: sessionmaker[Session]) -> Tally:
    with factory() as session:
        statuses = dict(
            session.execute(select(RawBounce.status, func.count()).group_by(RawBounce.status)).all()
        )
        events = session.scalar(select(func.count()).select_from(BounceEvent)) or 0
    by_value = {str(getattr(k, "value", k)): int(v) for k, v in statuses.items()}
    return Tally(sum(by_value.values()), by_value, int(events))


def delivery_of(envelope_to: str) -> int | None:
    """The delivery a stored message's envelope recipient names (its signed VERP token)."""
    return verp.verify_token(SECRET, verp.token_of(envelope_to))
