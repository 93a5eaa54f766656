"""The core is pure: it imports only the standard library and itself."""

from __future__ import annotations

import ast
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


_IO_MODULES = frozenset(
    {
        "os",
        "io",
        "socket",
        "subprocess",
        "sqlite3",
        "urllib",
        "http",
        "pathlib",
        "shutil",
        "tempfile",
        "threading",
        "asyncio",
        "smtplib",
        "imaplib",
        "logging",
        "random",
        "time",
        "datetime",
    }
)


def test_core_does_no_io() -> None:
    """No I/O module is imported, and neither open() nor print() is called, anywhere in core/."""
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        where = path.relative_to(CORE)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                assert name.split(".")[0] not in _IO_MODULES, f"{where} imports {name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                called = node.func.id
                assert called not in ("open", "print", "input"), f"{where} calls {called}"
