"""A user's own mailbox for the tests: a private, systemd-free Dovecot (IMAP and LMTP) on loopback,
and a private Postfix that delivers the user's domain to it over LMTP.

Dovecot runs with its own configuration, sockets, state and maildirs under a temporary folder
(``dovecot -c``), no TLS, plain-text logins from loopback, on free ports. Mail is stored as the
system user ``mail`` (Dovecot refuses uid 0 for mail). ``restart()`` stops and starts the same
server with the same mail, as an IMAP server restarting in production would.

``InboxPostfix`` is the issue-5 fixture's Postfix (``mta_support.Postfix``) with one more route:
the user's domain goes to Dovecot's LMTP port, so the user sends through Postfix (their
submission server here) and Postfix's delivery status notices land in their INBOX.

Dovecot must be installed (Debian's ``dovecot-imapd`` and ``dovecot-lmtpd``; CI installs them) and
we must be root (its master starts as root); ``require_dovecot`` skips otherwise.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mta_support import Postfix, Timers, free_port, wait_for

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
LMTP = Path("/usr/lib/dovecot/lmtp")
MAIL_USER = "mail"  # exists on every Debian system: the owner of the maildirs
INBOX_DOMAIN = "inbox.test"


def dovecot_problem() -> str:
    """Why a private Dovecot cannot run here, or "" when it can."""
    if not DOVECOT.exists() or not LMTP.exists():
        return (
            "Dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd; CI installs "
            "them): the tests with a real IMAP server need it"
        )
    if os.geteuid() != 0:
        return "a private Dovecot needs root (its master process starts as root)"
    return ""


def require_dovecot() -> None:
    problem = dovecot_problem()
    if problem:
        pytest.skip(problem)


CONFIG = """\
# a private Dovecot for the tests: not /etc/dovecot's configuration
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = {name}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:~/Maildir
# IDLE notices a new message within a second (inotify, or this check as a fallback)
mailbox_idle_check_interval = 1 secs
{passdbs}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%d/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
"""


@dataclass
class Dovecot:
    """A private Dovecot: ``start()``, ``stop()``, ``restart()``; ``imap_port`` and
    ``lmtp_port`` on 127.0.0.1. Every address of the domain has a mailbox; the ``users`` log in
    with their own password, any other address with ``password`` (when one is given: tests
    then make users by logging in, nothing to reload)."""

    users: dict[str, str] = field(default_factory=dict)
    password: str = ""
    domain: str = INBOX_DOMAIN
    tls: bool = False  # a self-signed certificate (``cafile``): IMAPS and STARTTLS too

    def __post_init__(self) -> None:
        if any(c.isspace() for c in self.password):
            raise ValueError("the static passdb takes a password without spaces")
        # Dovecot's processes run as dovecot, dovenull and mail: every folder above the maildirs
        # must be traversable by them (pytest's tmp_path is not), and socket paths stay short.
        self.root = Path(tempfile.mkdtemp(prefix="bb-dovecot-"))
        self.root.chmod(0o755)
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.imaps_port = free_port() if self.tls else 0
        self.cafile = str(self.root / "cert.pem") if self.tls else ""
        self.name = self.root.name

    # -- configuration --
    def write_config(self) -> None:
        for folder in ("run", "state", "mail"):
            (self.root / folder).mkdir(exist_ok=True)
        shutil.chown(self.root / "mail", MAIL_USER, MAIL_USER)
        entry = pwd.getpwnam(MAIL_USER)
        self.config.write_text(
            CONFIG.format(
                root=self.root,
                name=self.name,
                uid=entry.pw_uid,
                gid=entry.pw_gid,
                imap_port=self.imap_port,
                lmtp_port=self.lmtp_port,
                domain=self.domain,
                passdbs=self._passdbs(),
                ssl=self._ssl(),
                imaps_port=self.imaps_port,
            )
        )

    def _ssl(self) -> str:
        """TLS settings: none, or a certificate for 127.0.0.1 made here (Debian's package
        ships none), trusted by the tests through ``cafile``."""
        if not self.tls:
            return "ssl = no"
        cert, key = self.root / "cert.pem", self.root / "key.pem"
        if not cert.exists():
            cert_pem, key_pem = self_signed("127.0.0.1")
            key.write_bytes(key_pem)
            key.chmod(0o600)
            cert.write_bytes(cert_pem)
        return f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"

    def _passdbs(self) -> str:
        """Each user's password from a file (written before the start: Dovecot re-reads it at
        most once a second), then the one password for every other address."""
        blocks = []
        if self.users:
            users = self.root / "users"
            users.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
            shutil.chown(users, "root", "dovecot")
            users.chmod(0o640)
            blocks.append(f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {users}\n}}")
        if self.password:
            blocks.append(f"passdb {{\n  driver = static\n  args = password={self.password}\n}}")
        return "\n".join(blocks)

    # -- life cycle --
    def start(self) -> None:
        self.write_config()
        # Dovecot keeps its stderr open after it detaches: never give it ours.
        with (self.root / "startup.log").open("ab") as out:
            proc = subprocess.run(
                [str(DOVECOT), "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=30,
                check=False,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"dovecot did not start:\n{self.log_tail()}")
        wait_for(f"Dovecot's IMAP on {self.imap_port}", lambda: _listening(self.imap_port), 20)
        wait_for(f"Dovecot's LMTP on {self.lmtp_port}", lambda: _listening(self.lmtp_port), 20)

    def master_pid(self) -> int | None:
        try:
            pid = int((self.root / "run" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def stop(self) -> None:
        """Stop the server (its master and every child); the mail stays for ``start()``.

        Dovecot's master exits at once, but its IMAP processes close their connections only
        some ten seconds later: they are stopped too (the processes of this instance, whose
        titles start with its name), so that clients see the restart at once."""
        pid = self.master_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_for("Dovecot to stop", lambda: self.master_pid() is None, 20)
        for child in self._children():
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGTERM)
        wait_for("Dovecot's processes to end", lambda: not self._children(), 20)
        wait_for("Dovecot's ports to close", lambda: not _listening(self.imap_port), 20)

    def _children(self) -> list[int]:
        """The live processes of this instance (by their title, "dovecot-<name>/imap")."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if title.startswith(f"dovecot-{self.name}/".encode()) and state != "Z":
                found.append(int(entry.name))
        return found

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        texts = []
        for name in ("startup.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                texts.append((self.root / name).read_text(errors="replace"))
        return "Dovecot log:\n" + "\n".join("\n".join(texts).splitlines()[-lines:])

    def doveadm(self, *args: str) -> str:
        proc = subprocess.run(
            [str(DOVEADM), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def set_uidvalidity(self, login: str, value: int, folder: str = "INBOX") -> None:
        """Give the folder a new UIDVALIDITY, as a server rebuilding its index does."""
        self.doveadm("mailbox", "update", "-u", login, "--uid-validity", str(value), folder)

    # -- mail --
    def deliver(self, recipient: str, data: bytes, envelope_from: str = "") -> None:
        """Deliver one message to a user's INBOX over LMTP, as an MTA does."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
            lmtp.sendmail(envelope_from, [recipient], data)

    @contextlib.contextmanager
    def imap(self, login: str, folder: str = "INBOX") -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP connection with ``folder`` selected read-only (the tests look, never
        touch)."""
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        try:
            conn.login(login, self.users.get(login, self.password))
            status, _ = conn.select(_quote(folder), readonly=True)
            assert status == "OK", f"no folder {folder}"
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def flags(self, login: str, *criteria: str, folder: str = "INBOX") -> list[set[str]]:
        """The flags of each message of ``folder`` that matches the search (the last
        criterion is the quoted value): ``flags(user, "TEXT", "<id@x>")``."""
        keys = [*criteria[:-1], _quote(criteria[-1])]
        with self.imap(login, folder) as conn:
            _, data = conn.uid("SEARCH", *keys)
            uids = data[0].split() if data and data[0] else []
            if not uids:
                return []
            _, fetched = conn.uid("FETCH", b",".join(uids).decode(), "(FLAGS)")
        found = []
        for item in fetched:
            text = (item[0] if isinstance(item, tuple) else item or b"").decode()
            flags = re.search(r"FLAGS \(([^)]*)\)", text)
            if flags:
                found.append(set(flags.group(1).split()) - {"\\Recent"})
        return found

    def count(self, login: str, folder: str = "INBOX") -> int:
        with self.imap(login, folder) as conn:
            _, data = conn.uid("SEARCH", "ALL")
            return len(data[0].split()) if data and data[0] else 0

    def search_text(self, login: str, text: str, folder: str = "INBOX") -> int:
        """How many messages of ``folder`` contain ``text`` (header or body)."""
        with self.imap(login, folder) as conn:
            _, data = conn.uid("SEARCH", "TEXT", _quote(text))
            return len(data[0].split()) if data and data[0] else 0


def self_signed(host: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for an IP address, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running_dovecot(users: dict[str, str] | None = None, password: str = "") -> Iterator[Dovecot]:
    require_dovecot()
    server = Dovecot(dict(users or {}), password)
    try:
        server.start()
        yield server
    finally:
        server.remove()


# --- Postfix delivering the user's domain to Dovecot ----------------------------------------------


class InboxPostfix(Postfix):
    """The issue-5 Postfix with the inbox domain routed to Dovecot's LMTP port: the user submits
    here (no login, from loopback) and the notices about their mail come back to their INBOX."""

    def __init__(
        self,
        remote_port: int,
        lmtp_port: int,
        *,
        inbox_domain: str = INBOX_DOMAIN,
        bounce_routes: dict[str, int] | None = None,
        timers: Timers | None = None,
    ) -> None:
        super().__init__(remote_port, bounce_routes or {}, timers=timers)
        self.lmtp_port = lmtp_port
        self.inbox_domain = inbox_domain

    def main_cf(self) -> str:
        route = f"{self.inbox_domain}=lmtp:inet:127.0.0.1:{self.lmtp_port}"
        text, found = re.subn(
            r"^transport_maps = inline:\{",
            f"transport_maps = inline:{{ {route},",
            super().main_cf(),
            count=1,
            flags=re.M,
        )
        if not found:
            text += f"transport_maps = inline:{{ {route} }}\n"
        return text + "lmtp_dns_support_level = disabled\n"

    def write_config(self) -> None:
        super().write_config()
        master = self.config / "master.cf"
        text = master.read_text()
        if not re.search(r"^lmtp\s", text, flags=re.M):
            master.write_text(
                text + "lmtp      unix  -       -       n       -       -       lmtp\n"
            )

    def send(self, envelope_from: str, recipients: list[str], data: bytes) -> None:
        """Submit a message as a mail client does (no DSN options)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.sendmail(envelope_from, recipients, data)

    def wait_empty(self, timeout: float = 20) -> None:
        wait_for(
            f"Postfix's queue to empty\n{self.log_tail()}", lambda: self.queued() == 0, timeout
        )
