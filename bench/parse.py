#!/usr/bin/env python3
"""Parse speed over a corpus: bounceback.parse (parse + classify) next to the standard library's
email.message_from_bytes alone (which only builds the MIME tree), same messages, same run, one core.

usage: python bench/parse.py [CORPUS_DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import gc
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bounceback import parse
from bounceback.sources import Message, iter_paths

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sisimai"


def _load(corpus: Path) -> list[bytes]:
    return [m.raw for m in iter_paths([str(corpus)]) if isinstance(m, Message)]


def _rate(fn: Callable[[bytes], Any], messages: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for raw in messages:
            fn(raw)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    messages = _load(Path(args.corpus))
    if not messages:
        print(f"no messages under {args.corpus}", file=sys.stderr)
        return 1
    size = sum(map(len, messages)) / 1e6
    ours = _rate(parse, messages, args.rounds)
    stdlib = _rate(email.message_from_bytes, messages, args.rounds)
    modern = _rate(
        lambda raw: email.message_from_bytes(raw, policy=email.policy.default),
        messages,
        args.rounds,
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages: {len(messages)} ({size:.1f} MB), best of {args.rounds} rounds, one core")
    print(f"bounceback.parse             {ours:9.0f} msg/s")
    print(f"email.message_from_bytes     {stdlib:9.0f} msg/s (compat32 policy, tree only)")
    print(f"  ... with policy=default    {modern:9.0f} msg/s")
    print(f"peak RSS {rss:.0f} MB")
    print(f"ratio bounceback/message_from_bytes: {ours / stdlib:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
