"""``bounceback parse``: files, folders, mbox files, unreadable paths, both output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bounceback import parse
from bounceback.cli import main

from support import SAMPLES


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bounceback.cli", *args], capture_output=True, text=True, check=False
    )


def test_jsonl_over_a_folder() -> None:
    proc = _run("parse", "--jsonl", str(SAMPLES))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == len(list(SAMPLES.glob("*/*.eml")))
    for record in records:
        assert record["message"] == 1
        assert Path(record["source"]).exists()
        (recipient,) = record["recipients"]
        assert {
            "address",
            "action",
            "status",
            "reply_code",
            "reason",
            "category",
            "permanent",
            "diagnostic",
            "rule",
        } <= set(recipient)


def test_mbox_positions(tmp_path: Path) -> None:
    mbox = tmp_path / "box"
    parts = []
    for path in sorted(SAMPLES.glob("postfix/*.eml"))[:3]:
        body = path.read_bytes().replace(b"\nFrom ", b"\n>From ")
        parts.append(b"From MAILER-DAEMON Mon Nov 30 04:50:22 2026\n" + body + b"\n")
    mbox.write_bytes(b"".join(parts))
    proc = _run("parse", "--jsonl", str(mbox))
    assert proc.returncode == 0
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["message"] for r in records] == [1, 2, 3]
    assert all(r["kind"] != "not_bounce" for r in records)


def test_unreadable_file_is_reported_and_the_rest_processed(tmp_path: Path) -> None:
    proc = _run(
        "parse",
        "--jsonl",
        str(tmp_path / "missing.eml"),
        str(SAMPLES / "postfix" / "remote_550-failed.eml"),
    )
    assert proc.returncode == 1
    assert "cannot read" in proc.stderr and "missing.eml" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1


def test_table_output(capsys: object) -> None:
    assert main(["parse", str(SAMPLES / "postfix" / "remote_550-failed.eml")]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "unknown.alice@remote.test" in out and "Unknown user (hard)" in out


def test_explain_names_detector_rule_and_category(capsys: object) -> None:
    path = SAMPLES / "postfix" / "remote_554_spam-failed.eml"
    assert main(["explain", str(path)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert f"read by the {parse(path.read_bytes()).detector} detector" in out
    assert "rule         spam.detected -> spam_detected" in out
    assert "matched      'spam'" in out
    assert "category     spam: Spam (permanent failure, hard by default)" in out


def test_cr_only_mbox(tmp_path: Path) -> None:
    raw = (SAMPLES / "postfix" / "remote_550-failed.eml").read_bytes()
    mbox = tmp_path / "old-mac.mbox"
    mbox.write_bytes((b"From MAILER-DAEMON Mon Nov 30 04:50:22 2026\n" + raw).replace(b"\n", b"\r"))
    proc = _run("parse", "--jsonl", str(mbox))
    (record,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert record["recipients"][0]["address"] == "unknown.alice@remote.test"
