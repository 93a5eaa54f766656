"""Several workers (each with its own engine, as separate processes would have) share one
database without stepping on each other: every message is sent exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.session import make_engine, make_sessionmaker
from bounceback.service.worker import Worker

from outbound_support import FakeRelay, RelayHandler, make_world, settings, start_send, wait_for


@pytest.fixture
def relay() -> Iterator[FakeRelay]:
    controller = FakeRelay(RelayHandler(dsn=True))
    controller.start()
    yield controller
    controller.stop()


def test_three_workers_send_each_message_once(
    db_url: str, factory: sessionmaker[Session], relay: FakeRelay
) -> None:
    addresses = [f"reader{i:02d}@example.org" for i in range(60)]
    world = make_world(factory, addresses)
    start_send(factory, world, addresses)
    config = settings(relay_url=relay.url())
    engines = [make_engine(db_url) for _ in range(3)]
    workers = [Worker(config, make_sessionmaker(engine)) for engine in engines]
    for worker in workers:
        worker.start()
    try:
        wait_for(lambda: len(relay.relay_handler.received) >= 60, timeout=60, what="60 messages")
    finally:
        for worker in workers:
            worker.stop()
        for engine in engines:
            engine.dispose()
    counts = Counter(t.rcpt_to[0] for t in relay.relay_handler.received)
    assert set(counts) == set(addresses)
    assert max(counts.values()) == 1
