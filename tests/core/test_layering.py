"""The core is pure: it imports only the standard library and itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bounceback.core

CORE = Path(bounceback.core.__file__).parent


def test_core_imports_only_stdlib_and_itself() -> None:
    modules = sorted(
        "bounceback.core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py")
        if p.name != "__init__.py"
    )
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"for m in {modules!r}: __import__(m)\n"
        "new = set(sys.modules) - before\n"
        "bad = sorted(n for n in new if n.split('.')[0] not in sys.stdlib_module_names"
        " and not n.startswith('bounceback.core') and n != 'bounceback' and n != '__main__')\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == ""


def test_core_does_no_io() -> None:
    forbidden = ("open(", "socket", "subprocess", "os.environ", "print(", "sqlite3", "urllib")
    for path in CORE.rglob("*.py"):
        text = path.read_text()
        for word in forbidden:
            assert word not in text, f"{path.relative_to(CORE)} uses {word}"
