"""The corpus is the specification: every labelled recipient of ../shared/corpus/sisimai.

A row that does not pass yet is listed, with the fields it gets wrong, in
``corpus_known_failures.txt``. Any other failing field fails this test, and so does a listed
failure that now passes (take it off the list): accuracy only ratchets up.

Regenerate the list after an improvement with:
    python tests/core/test_corpus.py --write
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bounceback import parse
from bounceback.sources import Message, iter_paths

from support import CORPUS, require_corpus

KNOWN = Path(__file__).with_name("corpus_known_failures.txt")
FIELDS = ("address", "status", "reply_code", "reason", "feedback_type")


def _truth() -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    path = CORPUS / "truth.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows[row["file"]].append(row)
    return dict(rows)


TRUTH = _truth()


def _recipients(file: str) -> list[dict[str, str]]:
    report = parse((CORPUS / file).read_bytes())
    return [
        {
            "address": r.address,
            "status": r.status,
            "reply_code": r.reply_code,
            "reason": r.reason.value,
            "feedback_type": r.feedback_type,
        }
        for r in report.recipients
    ]


def failures_of(file: str) -> list[str]:
    """``"#index field,field"`` for each truth row of ``file`` that is not right (the same
    matching as ../shared/eval/score.py: by address first, then by position)."""
    ours = _recipients(file)
    used: set[int] = set()
    out = []
    for row in sorted(TRUTH[file], key=lambda r: r["index"]):
        want = (row.get("recipient") or "").strip().lower()
        got = None
        if want:
            got = next(
                (i for i, r in enumerate(ours) if i not in used and r["address"].lower() == want),
                None,
            )
        if got is None and row["index"] - 1 < len(ours) and row["index"] - 1 not in used:
            got = row["index"] - 1
        if got is None:
            out.append(f"#{row['index']} missing")
            continue
        used.add(got)
        mine = ours[got]
        wrong = [f for f in FIELDS if f != "address" and mine[f] != (row.get(f) or "")]
        if want and mine["address"].lower() != want:
            wrong.insert(0, "address")
        if wrong:
            out.append(f"#{row['index']} {','.join(wrong)}")
    return out


def _known() -> dict[str, set[str]]:
    known: dict[str, set[str]] = defaultdict(set)
    if KNOWN.exists():
        for line in KNOWN.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                file, _, what = line.partition(" ")
                known[file].add(what.strip())
    return known


KNOWN_FAILURES = _known()


@pytest.mark.corpus
@pytest.mark.parametrize("file", sorted(TRUTH) or ["(corpus absent)"])
def test_corpus_row(file: str) -> None:
    require_corpus()
    got = set(failures_of(file))
    known = KNOWN_FAILURES.get(file, set())
    new = sorted(got - known)
    fixed = sorted(known - got)
    assert not new, f"{file}: new failures {new} (known: {sorted(known)})"
    assert not fixed, f"{file}: {fixed} pass now: remove them from {KNOWN.name}"


@pytest.mark.corpus
def test_known_failures_name_real_files() -> None:
    require_corpus()
    assert set(KNOWN_FAILURES) <= set(TRUTH)


@pytest.mark.corpus
def test_non_bounces_have_no_recipient() -> None:
    corpus = require_corpus()
    files = sorted((corpus / "maildir" / "not").iterdir())
    assert files
    for path in files:
        report = parse(path.read_bytes())
        assert report.recipients == (), f"{path.name}: {report.recipients}"


@pytest.mark.corpus
def test_every_message_of_every_file_is_read() -> None:
    """Every file of the corpus, mbox files message by message, parses without a parser bug."""
    corpus = require_corpus()
    count = 0
    for item in iter_paths([str(corpus)]):
        assert isinstance(item, Message), item
        report = parse(item.raw)
        assert all(p.code != "parser.bug" for p in report.problems), (item.source, report.problems)
        count += 1
    assert count > len(TRUTH)


def _write() -> None:
    lines = ["# Corpus rows that do not pass yet: FILE #INDEX FIELDS (see test_corpus.py)."]
    for file in sorted(TRUTH):
        lines.extend(f"{file} {f}" for f in failures_of(file))
    KNOWN.write_text("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} known failures written to {KNOWN}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        _write()


@pytest.mark.corpus
def test_every_mbox_message_is_read() -> None:
    corpus = require_corpus()
    for path in sorted((corpus / "mailbox").iterdir()):
        data = path.read_bytes()
        if not data.startswith(b"From "):
            continue
        separators = sum(1 for line in data.split(b"\n") if line.startswith(b"From "))
        read = [m for m in iter_paths([str(path)]) if isinstance(m, Message)]
        assert [m.position for m in read] == list(range(1, separators + 1)), path.name
