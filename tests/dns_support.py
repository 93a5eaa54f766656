"""A real DNS server on loopback serving test zones: Debian's dnsmasq run as a plain subprocess
(``dnsmasq-base`` ships no system service, and none is started), and a UDP port where nothing
ever answers (for timeouts).

dnsmasq answers only from the records it is given: TXT, A/AAAA (``host-record``) and MX. Every
other name under the zones' top-level domains (``--local``) is NXDOMAIN, and names outside them
are REFUSED (there is no upstream server). Records go through a config file, where dnsmasq reads
quoted strings, so TXT values may hold spaces, semicolons and commas.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.nameserver
import dns.resolver

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
TXT_CHUNK = 255  # the longest string one TXT record string may hold


def dnsmasq_missing() -> str:
    """Why the DNS tests cannot run here ("" when they can)."""
    if not Path(DNSMASQ).exists():
        return "dnsmasq is absent: apt-get install -y dnsmasq-base (CI installs it)"
    return ""


@dataclass
class Zones:
    """Records to serve. ``txt`` maps a name to its TXT records (one string each, split into
    255-character strings as DNS needs); ``hosts`` a name to its addresses; ``mx`` a domain to
    its mail servers."""

    txt: dict[str, list[str]] = field(default_factory=dict)
    hosts: dict[str, list[str]] = field(default_factory=dict)
    mx: dict[str, list[str]] = field(default_factory=dict)

    def top_level_domains(self) -> set[str]:
        names = [*self.txt, *self.hosts, *self.mx]
        return {name.rstrip(".").rsplit(".", 1)[-1] for name in names}

    def config(self) -> str:
        lines = []
        for name, values in self.txt.items():
            for value in values:
                assert '"' not in value and "\\" not in value, "keep test records simple"
                chunks = [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)]
                lines.append(f"txt-record={name}," + ",".join(f'"{c}"' for c in chunks or [""]))
        for name, addresses in self.hosts.items():
            lines.append(f"host-record={name},{','.join(addresses)}")
        for domain, servers in self.mx.items():
            for preference, server in enumerate(servers, start=1):
                lines.append(f"mx-host={domain},{server},{preference * 10}")
        return "\n".join(lines) + "\n"


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class DnsServer:
    """dnsmasq on 127.0.0.1 serving ``zones``; ``address`` is what BOUNCEBACK_DNS_SERVERS takes."""

    def __init__(self, zones: Zones, directory: Path) -> None:
        self.zones = zones
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "dnsmasq.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "zones.conf"
        config.write_text(self.zones.config())
        for _ in range(3):  # the port may be taken between choosing and binding it
            self.port = _free_port()
            self.process = subprocess.Popen(
                [DNSMASQ, *self._options(config)],
                stdout=self.log.open("ab"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            if self._wait_until_answering():
                return
            self.stop()
        raise RuntimeError(f"dnsmasq did not start: {self.log.read_text()[-2000:]}")

    def _options(self, config: Path) -> list[str]:
        local = [f"--local=/{tld}/" for tld in sorted(self.zones.top_level_domains())]
        return [
            "--keep-in-foreground",
            "--no-daemon",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",  # no upstream servers: nothing leaves the machine
            "--no-hosts",
            "--no-poll",
            "--cache-size=0",
            "--pid-file=",  # none: the test holds the process
            f"--conf-file={config}",
            *local,
        ]

    def _wait_until_answering(self, seconds: float = 10.0) -> bool:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", self.port)]
        probe = f"probe.{sorted(self.zones.top_level_domains())[0]}"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False  # it exited: most likely the port was taken
            try:
                resolver.resolve(probe, "TXT", lifetime=0.5, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                return True  # an answer from our zones
            except dns.exception.DNSException:
                time.sleep(0.05)
                continue
            return True
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@contextmanager
def dns_server(zones: Zones, directory: Path) -> Iterator[DnsServer]:
    server = DnsServer(zones, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Silent:
    address: str  # host:port, for BOUNCEBACK_DNS_SERVERS
    received: list[bytes]  # the questions that came in


@contextmanager
def silent_server() -> Iterator[Silent]:
    """A UDP port on 127.0.0.1 that receives DNS questions and never answers: every lookup
    sent there times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()
    silent = Silent(f"127.0.0.1:{sock.getsockname()[1]}", [])

    def swallow() -> None:
        while not stop.is_set():
            try:
                silent.received.append(sock.recv(4096))
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        yield silent
    finally:
        stop.set()
        thread.join(5)
        sock.close()
