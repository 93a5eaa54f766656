#!/usr/bin/env python3
"""Memory over a big mbox: build an mbox of N messages (default 100,000) from the shipped samples
(or a corpus folder), stream it through ``bounceback parse --jsonl`` and report peak RSS.

usage: python bench/mbox_memory.py [--messages N] [--source DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "bounceback" / "samples"


def build(path: Path, sources: list[bytes], count: int) -> int:
    with path.open("wb") as out:
        for i in range(count):
            body = (
                sources[i % len(sources)].replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
            )
            out.write(
                b"From MAILER-DAEMON Mon Nov 30 04:50:22 2026\n" + body.rstrip(b"\n") + b"\n\n"
            )
    return path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--source", default=str(SAMPLES))
    args = ap.parse_args()
    sources = [p.read_bytes() for p in sorted(Path(args.source).rglob("*.eml"))]
    with tempfile.TemporaryDirectory() as tmp:
        mbox = Path(tmp) / "big.mbox"
        size = build(mbox, sources, args.messages)
        start = time.perf_counter()
        code = (
            "import resource, sys\n"
            "from bounceback.cli import main\n"
            "rc = main(['parse', '--jsonl', sys.argv[1]])\n"
            "sys.stdout.flush()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(mbox)],
            capture_output=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        lines = proc.stdout.count(b"\n")
        peak_mb = int(proc.stderr.decode().strip().splitlines()[-1]) / 1024
    print(
        f"mbox: {args.messages} messages, {size / 1e6:.0f} MB; read {lines} messages "
        f"in {elapsed:.1f} s ({lines / elapsed:.0f} msg/s, JSON output included)"
    )
    print(f"peak RSS of the parsing process: {peak_mb:.0f} MB")
    return 0 if lines == args.messages and proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(os.EX_OK if main() == 0 else 1)
