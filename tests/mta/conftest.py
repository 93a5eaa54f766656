"""Fixtures for the tests with a real MTA: the fake remote MX, private Postfix instances, and
``bounceback serve`` processes, all stopped at the end of each test whatever happened.

Where Postfix is not installed (or we are not root) these tests skip, saying so; in strict mode
(CI, which installs Postfix) that is a failure. The databases are the service tests' own
fixtures: ``db_url`` runs a test on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mta_support import (
    Bounceback,
    Postfix,
    RemoteMX,
    RunBounceback,
    StartPostfix,
    Timers,
    require_postfix,
    start_smtp,
)
from service.conftest import db_url, pg_template, sqlite_template  # noqa: F401 (fixtures)


@pytest.fixture
def remote_mx() -> Iterator[RemoteMX]:
    """The fake receiving servers of every remote domain; ``remote_mx.port`` is theirs."""
    mx = RemoteMX()
    controller = start_smtp(mx)
    mx.port = controller.port
    yield mx
    controller.stop()


@pytest.fixture
def start_postfix(remote_mx: RemoteMX) -> Iterator[StartPostfix]:
    """``start_postfix({bounce domain: port}, timers=Timers(...))``: a running private Postfix
    that routes every remote domain to ``remote_mx`` and each bounce domain to its port."""
    require_postfix()
    started: list[Postfix] = []

    def start(bounce_routes: dict[str, int], *, timers: Timers | None = None) -> Postfix:
        postfix = Postfix(remote_mx.port, bounce_routes, timers=timers)
        started.append(postfix)
        postfix.start()
        return postfix

    yield start
    for postfix in started:
        postfix.stop()


@pytest.fixture
def run_bounceback(tmp_path: Path) -> Iterator[RunBounceback]:
    """``run_bounceback(db_url, roles=..., ...)``: a ``bounceback serve`` process (not started
    yet: call ``.start()``), stopped at the end of the test."""
    processes: list[Bounceback] = []

    def make(db: str, **options: Any) -> Bounceback:
        process = Bounceback(db, tmp_path / "data", **options)
        processes.append(process)
        return process

    yield make
    for process in processes:
        process.stop()
