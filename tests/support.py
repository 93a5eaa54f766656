"""Paths and switches the tests share (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("BOUNCEBACK_CORPUS", ROOT.parent / "shared" / "corpus")) / "sisimai"
SAMPLES = ROOT / "src" / "bounceback" / "samples"
STRICT = os.environ.get("BOUNCEBACK_STRICT", "") not in ("", "0")


def require_corpus() -> Path:
    """The corpus folder, or a skip (a failure in strict mode) where it is absent."""
    if not (CORPUS / "truth.jsonl").exists():
        pytest.skip(f"the shared corpus is absent ({CORPUS}); CI always has it")
    return CORPUS
