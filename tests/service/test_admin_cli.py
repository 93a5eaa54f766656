"""``bounceback admin``: create the first administrator and an API key, list and show the
messages kept for inspection, re-parse; on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service import jobs
from bounceback.service.db.models import ApiKey, Role, User
from bounceback.service.db.session import transaction
from bounceback.service.domain import intake
from bounceback.service.settings import load

from builders import SECRET, dsn


def _admin(db_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BOUNCEBACK_DATABASE_URL": db_url,
        "BOUNCEBACK_SECRET_KEY": SECRET,
        "BOUNCEBACK_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "bounceback.cli", "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_admin_commands(db_url: str, factory: sessionmaker[Session], tmp_path: Path) -> None:
    made = _admin(
        db_url,
        tmp_path,
        "create-user",
        "--account",
        "Acme",
        "--email",
        "Boss@Acme.example",
        "--admin",
        "--password",
        "a long enough password",
    )
    assert made.returncode == 0, made.stderr
    short = _admin(
        db_url,
        tmp_path,
        "create-user",
        "--account",
        "Acme",
        "--email",
        "x@acme.example",
        "--password",
        "short",
    )
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    key = _admin(db_url, tmp_path, "create-api-key", "--account", "Acme")
    assert key.returncode == 0 and key.stdout.startswith("bb_")
    assert _admin(db_url, tmp_path, "create-api-key", "--account", "Nobody").returncode == 1
    with factory() as session:
        user = session.scalars(select(User)).one()
        assert (user.email, user.role) == ("boss@acme.example", Role.ADMIN)
        stored = session.scalars(select(ApiKey.key_hash)).one()
        assert key.stdout.strip() not in stored

    forged = dsn("x@example.org", to="b+1.0000000000000000@bounces.example.net")
    with transaction(factory) as session:
        raw, _ = intake.store_raw(session, forged, source="smtp")
        raw_id = raw.id
    settings = load({}, secret_key=SECRET)
    jobs.run_one(
        factory, {intake.PROCESS: lambda f, p: intake.process(f, int(p["raw_id"]), settings)}, "t"
    )
    listed = _admin(db_url, tmp_path, "unmatched")
    assert listed.returncode == 0 and str(raw_id) in listed.stdout and "forged" in listed.stdout
    shown = _admin(db_url, tmp_path, "show-raw", str(raw_id))
    assert shown.stdout.encode() == forged
    reparsed = _admin(db_url, tmp_path, "reparse")
    assert reparsed.returncode == 0 and "re-read 1 stored messages" in reparsed.stdout
