"""Where messages come from on disk: files, folders, mbox files and maildirs.

Yields ``(source path, 1-based position, raw bytes)``; a file that cannot be read yields an
:class:`Unreadable` instead so the caller can report it and go on.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    source: str
    position: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Unreadable:
    source: str
    error: str


def iter_paths(paths: list[str]) -> Iterator[Message | Unreadable]:
    for path in paths:
        if os.path.isdir(path):
            yield from _iter_dir(path)
        else:
            yield from _iter_file(path)


def _iter_dir(top: str) -> Iterator[Message | Unreadable]:
    def on_error(err: OSError) -> None:
        raise err

    try:
        walk = list(os.walk(top, onerror=on_error))
    except OSError as exc:
        yield Unreadable(top, exc.strerror or str(exc))
        return
    for folder, dirs, files in walk:
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            yield from _iter_file(os.path.join(folder, name))


def _iter_file(path: str) -> Iterator[Message | Unreadable]:
    try:
        with open(path, "rb") as handle:
            head = handle.read(5)
            if head == b"From ":
                handle.seek(0)
                sample = handle.read(65536)
                handle.seek(0)
                if b"\r" in sample and b"\n" not in sample:  # CR-only line endings (old Mac)
                    data = handle.read().replace(b"\r", b"\n")
                    yield from iter_mbox(path, io.BytesIO(data))
                else:
                    yield from iter_mbox(path, handle)
                return
            raw = head + handle.read()
    except OSError as exc:
        yield Unreadable(path, exc.strerror or str(exc))
        return
    yield Message(path, 1, raw)


def iter_mbox(source: str, handle: object) -> Iterator[Message]:
    """Stream an mbox file message by message (memory stays flat for any size).

    A message starts at a line beginning with "From " that follows an empty line (or starts the
    file); ">From " quoting (mboxrd) is undone.
    """
    position = 0
    lines: list[bytes] = []
    previous_blank = True
    for line in handle:  # type: ignore[attr-defined]
        if line.startswith(b"From ") and previous_blank:
            if lines:
                position += 1
                yield Message(source, position, _unquote(lines))
            lines = [line]
        else:
            lines.append(line)
        previous_blank = line in (b"\n", b"\r\n")
    if lines:
        position += 1
        yield Message(source, position, _unquote(lines))


def _unquote(lines: list[bytes]) -> bytes:
    body = lines[1:] if lines and lines[0].startswith(b"From ") else lines
    out = [
        line[1:] if line.startswith(b">") and line.lstrip(b">").startswith(b"From ") else line
        for line in body
    ]
    return b"".join(out)
