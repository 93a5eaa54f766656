"""Service settings: environment variables, optionally a TOML file, and documented defaults.

Every setting is an environment variable ``BOUNCEBACK_<NAME>``; ``BOUNCEBACK_CONFIG`` may name a
TOML file whose top-level keys are the same names in lower case. Environment variables win over
the file. With nothing set, the service runs on one machine: SQLite in ``./bounceback-data``, the
sandbox instead of a real relay, the web UI on 127.0.0.1:8025 and the bounce receiver on
127.0.0.1:2525.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    # Where data lives. A SQLite file by default; a postgresql+psycopg://... URL for PostgreSQL.
    database_url: str = ""
    data_dir: str = "bounceback-data"
    # HMAC secret for VERP tokens, session cookies and CSRF tokens. Generated and kept in
    # data_dir/secret on first start when not given; all processes sharing a database must share it.
    secret_key: str = ""
    # Fernet key(s) encrypting the passwords of connected mailboxes (domain/secrets_box.py);
    # comma-separated to rotate (the first encrypts). Empty: derived from secret_key.
    credentials_key: str = ""
    # HTTP API and web UI.
    http_host: str = "127.0.0.1"
    http_port: int = 8025
    public_url: str = (
        ""  # how users reach the UI (links in emails: unsubscribe); default from host/port
    )
    # The SMTP receiver for bounces.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    bounce_domains: tuple[str, ...] = ("bounces.localhost",)
    max_message_bytes: int = 10 * 1024 * 1024
    # Outgoing relay: smtp://user:pass@host:port or smtp+starttls://... ; empty = sandbox.
    relay_url: str = ""
    # Addresses on this domain answer like real servers in the sandbox (outbound/sandbox.py).
    simulator_domain: str = "simulator.bounceback.test"
    # Shown to users so their contacts can allowlist them.
    sending_ips: tuple[str, ...] = ()
    # Which parts run in this process: any of api, smtp, worker.
    roles: tuple[str, ...] = ("api", "smtp", "worker")
    worker_poll_seconds: float = 1.0
    # What `bounceback serve` logs to standard error: debug, info, warning or error.
    log_level: str = "info"
    # Worker threads per process. A job mostly waits for the database, so on PostgreSQL a few
    # threads per process multiply its throughput; on SQLite (one writer at a time) keep 1.
    worker_threads: int = 1
    # How long a worker holds a job; a worker that dies mid-job leaves it to others after this.
    # Longer than any job takes (sending one message through a slow relay included).
    job_lease_seconds: float = 300.0
    max_upload_bytes: int = 5 * 1024 * 1024
    # What authorizes this service to send for a customer's domain (checked over DNS after a
    # DMARC refusal, domain/dnscheck.py): the SPF mechanism customers add (empty: ip4:/ip6: of
    # sending_ips), the DKIM selector it signs with, and DNS servers ("host:port") to ask
    # instead of the system resolver.
    spf_include: str = ""
    dkim_selector: str = ""
    dns_servers: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'bounceback.sqlite3'}"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.http_host}:{self.http_port}"

    @property
    def is_sandbox(self) -> bool:
        return not self.relay_url


_TUPLES = {"bounce_domains", "sending_ips", "roles", "dns_servers"}
_INTS = {"http_port", "smtp_port", "max_message_bytes", "max_upload_bytes", "worker_threads"}
_FLOATS = {"worker_poll_seconds", "job_lease_seconds"}


def _convert(name: str, value: Any) -> Any:
    try:
        if name in _TUPLES:
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if name in _INTS:
            return int(value)
        if name in _FLOATS:
            return float(value)
    except ValueError as exc:
        raise SettingsError(f"BOUNCEBACK_{name.upper()}: {value!r} is not a number") from exc
    return str(value)


def load(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (BOUNCEBACK_CONFIG), the environment, then ``overrides``."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config = env.get("BOUNCEBACK_CONFIG")
    if config:
        try:
            values.update(tomllib.loads(Path(config).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"BOUNCEBACK_CONFIG={config}: {exc}") from exc
    known = {f.name for f in fields(Settings)} - {"extra"}
    for name in known:
        key = f"BOUNCEBACK_{name.upper()}"
        if key in env:
            values[name] = env[key]
    values.update(overrides)
    unknown = set(values) - known
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    settings = Settings(**{k: _convert(k, v) for k, v in values.items()})
    if settings.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise SettingsError("BOUNCEBACK_LOG_LEVEL: one of debug, info, warning, error")
    if not 1 <= settings.worker_threads <= 64:
        raise SettingsError("BOUNCEBACK_WORKER_THREADS: between 1 and 64")
    bad_roles = set(settings.roles) - {"api", "smtp", "worker"}
    if bad_roles:
        raise SettingsError(f"BOUNCEBACK_ROLES: unknown roles {sorted(bad_roles)}")
    return settings


def with_secret(settings: Settings) -> Settings:
    """The settings with a secret key: the given one, or one kept in data_dir/secret."""
    if settings.secret_key:
        return settings
    path = Path(settings.data_dir) / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    values = {f.name: getattr(settings, f.name) for f in fields(Settings)}
    values["secret_key"] = path.read_text().strip()
    return Settings(**values)
