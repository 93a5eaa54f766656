"""Settings, migrations on both databases, VERP tokens, secrets and the job queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service import jobs
from bounceback.service.db.models import Base, Job
from bounceback.service.db.session import alembic_config, transaction
from bounceback.service.domain import security, verp
from bounceback.service.settings import SettingsError, load


def test_settings_from_environment_and_defaults() -> None:
    settings = load(
        {"BOUNCEBACK_HTTP_PORT": "9000", "BOUNCEBACK_BOUNCE_DOMAINS": "a.example, b.example"}
    )
    assert settings.http_port == 9000
    assert settings.bounce_domains == ("a.example", "b.example")
    assert settings.is_sandbox
    assert settings.database.startswith("sqlite:///")
    with pytest.raises(SettingsError, match="HTTP_PORT"):
        load({"BOUNCEBACK_HTTP_PORT": "eighty"})
    with pytest.raises(SettingsError, match="ROLES"):
        load({"BOUNCEBACK_ROLES": "api,mailer"})
    assert settings.worker_threads == 1
    assert load({"BOUNCEBACK_WORKER_THREADS": "4"}).worker_threads == 4
    with pytest.raises(SettingsError, match="WORKER_THREADS"):
        load({"BOUNCEBACK_WORKER_THREADS": "0"})
    assert settings.log_level == "info"
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        load({"BOUNCEBACK_LOG_LEVEL": "chatty"})


def test_schema_is_migrated(db_url: str) -> None:
    tables = set(sa.inspect(sa.create_engine(db_url)).get_table_names())
    assert {
        "accounts",
        "contacts",
        "deliveries",
        "raw_bounces",
        "bounce_events",
        "suppressions",
        "jobs",
        "alembic_version",
    } <= tables


def test_migrations_match_the_models(db_url: str) -> None:
    """What the migrations build is what models.py declares (a model change without its
    migration fails here), and they go down and up again."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert compare_metadata(context, Base.metadata) == []
            assert (
                context.get_current_revision()
                == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
            )
    finally:
        engine.dispose()
    command.downgrade(alembic_config(db_url), "0001")
    command.upgrade(alembic_config(db_url), "head")


def test_verp_tokens_are_signed() -> None:
    token = verp.make_token("secret", 4242)
    assert verp.verify_token("secret", token) == 4242
    assert verp.verify_token("secret", token.upper()) == 4242  # MTAs may change the case
    assert verp.verify_token("other secret", token) is None
    forged = verp.make_token("guess", 4242)
    assert verp.verify_token("secret", forged) is None
    for junk in ("", ".", "zz", "1.", "!!.00", "x" * 200):
        assert verp.verify_token("secret", junk) is None
    address = verp.return_path("secret", 7, "bounces.example")
    assert verp.verify_token("secret", verp.token_of(address)) == 7
    assert len(address.split("@")[0]) <= 64


def test_passwords_and_api_keys_are_hashed() -> None:
    stored = security.hash_password("correct horse")
    assert "correct horse" not in stored
    assert security.check_password("correct horse", stored)
    assert not security.check_password("wrong", stored)
    assert not security.check_password("x", "garbage")
    key, prefix, digest = security.new_api_key()
    assert key.startswith(prefix) and key not in digest
    assert security.hash_api_key(key) == digest
    assert security.api_key_prefix(key) == prefix
    token = security.csrf_token("s", "session-1")
    assert security.check_csrf("s", "session-1", token)
    assert not security.check_csrf("s", "session-2", token)


def test_job_queue(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        jobs.enqueue(session, "echo", {"n": 1}, key="once")
        jobs.enqueue(session, "echo", {"n": 1}, key="once")  # idempotent
        jobs.enqueue(session, "boom", {})
    seen: list[int] = []

    def boom(_: sessionmaker[Session], __: dict[str, object]) -> None:
        raise RuntimeError("no")

    handlers = {"echo": lambda f, p: seen.append(int(p["n"])), "boom": boom}  # type: ignore[arg-type]
    while jobs.run_one(factory, handlers, "test"):
        pass
    assert seen == [1]
    with factory() as session:
        failed = session.scalars(sa.select(Job).where(Job.kind == "boom")).one()
        assert failed.done_at is None and failed.attempts == 1 and "RuntimeError" in failed.error


def test_many_jobs_are_queued_once_each(factory: sessionmaker[Session]) -> None:
    """``enqueue_many``: 1,200 keyed jobs over three statements; keys already queued (before, or
    twice in the same call) are skipped, not doubled."""
    now = datetime.now(UTC)
    with transaction(factory) as session:
        jobs.enqueue(session, "echo", {"n": 7}, key="k7")
    batch = [({"n": n}, f"k{n}", now) for n in range(1200)]
    with transaction(factory) as session:
        jobs.enqueue_many(session, "echo", batch)
        again = [({"n": 5}, "k5", now), ({"n": 9000}, "k9000", now), ({"n": 9000}, "k9000", now)]
        jobs.enqueue_many(session, "echo", again)
    with factory() as session:
        keys = session.scalars(sa.select(Job.key).where(Job.kind == "echo")).all()
    assert sorted(keys) == sorted([*(f"k{n}" for n in range(1200)), "k9000"])


def test_token_purposes_do_not_mix() -> None:
    token = verp.make_token("secret", 9, purpose="unsubscribe")
    assert verp.verify_token("secret", token, purpose="unsubscribe") == 9
    assert verp.verify_token("secret", token) is None
