"""The ``bounceback`` command line.

bounceback parse [--jsonl] PATH...     read bounces from files, folders, mbox files, maildirs
bounceback explain PATH...             how each recipient's classification was decided
bounceback serve                       the service: web UI and API, SMTP receiver, workers
bounceback admin create-user ...       create a user (the first administrator) and its account
bounceback admin create-api-key ...    create an API key for an account
bounceback admin reparse               re-read every stored bounce with this parser version
bounceback admin unmatched             stored messages that matched no delivery (forged ...)
bounceback admin show-raw ID           print a stored message as received
bounceback samples                     print the path of the bounces shipped with the package
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from bounceback.core.pipeline import parse
from bounceback.core.report import Report
from bounceback.sources import Message, Unreadable, iter_paths

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def report_to_dict(report: Report, source: str = "", position: int = 1) -> dict[str, Any]:
    """The JSON contract of ``bounceback parse --jsonl`` (documented in the README)."""
    original = report.original
    return {
        "source": source,
        "message": position,
        "kind": report.kind.value,
        "detector": report.detector,
        "subject": report.subject,
        "return_path": report.return_path,
        "verp_token": report.verp_token,
        "original": {
            "message_id": original.message_id,
            "from": original.from_,
            "to": original.to,
            "subject": original.subject,
            "date": original.date,
            "envelope_id": original.envelope_id,
            "headers": dict(original.headers),
        },
        "recipients": [
            {
                "address": r.address,
                "original_recipient": r.original_recipient,
                "action": r.action.value,
                "status": r.status,
                "status_derived": r.status_derived,
                "reply_code": r.reply_code,
                "reason": r.reason.value,
                "category": r.category.value,
                "permanent": r.permanent,
                "hard": r.hard,
                "diagnostic": r.diagnostic,
                "remote_mta": r.remote_mta,
                "reporting_mta": r.reporting_mta,
                "smtp_command": r.smtp_command,
                "rule": r.rule_id,
                "matched": r.matched,
                "feedback_type": r.feedback_type,
            }
            for r in report.recipients
        ],
        "problems": [{"code": p.code, "detail": p.detail} for p in report.problems],
    }


def _print_table(report: Report, source: str, position: int, out: TextIO) -> None:
    where = source if position == 1 else f"{source} (message {position})"
    out.write(f"{where}\n  {report.kind.value}")
    out.write(f" (read by {report.detector})\n" if report.detector else "\n")
    width = shutil.get_terminal_size((120, 20)).columns
    for r in report.recipients:
        hard = "hard" if r.hard else "soft"
        label = f"{r.category.label} ({hard})" if r.category.is_bounce else r.category.label
        codes = " ".join(x for x in (r.reply_code, r.status) if x)
        out.write(f"  {r.address or '(no address)':40} {r.reason.value:20} {codes:12} {label}\n")
        if r.diagnostic:
            out.write(f"      {r.diagnostic[: max(40, width - 8)]}\n")
    for problem in report.problems:
        out.write(f"  ! {problem.code}: {problem.detail}\n")


def cmd_parse(args: argparse.Namespace) -> int:
    failed = 0
    out: TextIO = sys.stdout
    for item in iter_paths(args.paths):
        if isinstance(item, Unreadable):
            failed += 1
            sys.stderr.write(f"bounceback: cannot read {item.source}: {item.error}\n")
            continue
        assert isinstance(item, Message)
        report = parse(item.raw)
        if args.jsonl:
            out.write(
                json.dumps(report_to_dict(report, item.source, item.position), ensure_ascii=False)
                + "\n"
            )
        else:
            _print_table(report, item.source, item.position, out)
    return 1 if failed else 0


def explain(report: Report, source: str, position: int, out: TextIO) -> None:
    """Say, for each recipient, which detector read it, which rule decided, on what text."""
    where = source if position == 1 else f"{source} (message {position})"
    out.write(f"{where}: {report.kind.value}")
    out.write(f", read by the {report.detector} detector\n" if report.detector else "\n")
    if not report.recipients:
        out.write(
            "  no recipient: no detector recognised this message as a bounce,\n"
            "  complaint, auto-reply or delivery notice\n"
        )
    for r in report.recipients:
        codes = ", ".join(
            x
            for x in (
                f"reply code {r.reply_code}" if r.reply_code else "",
                _status_words(r.status, r.status_derived),
            )
            if x
        )
        out.write(f"  {r.address or '(no address)'}\n")
        out.write(
            f"    action       {r.action.value or '(none)'}"
            + (f" at {r.smtp_command}" if r.smtp_command else "")
            + (f"; {codes}" if codes else "")
            + "\n"
        )
        if r.diagnostic:
            out.write(f"    response     {r.diagnostic}\n")
        if r.remote_mta:
            out.write(f"    remote MTA   {r.remote_mta}\n")
        out.write(f"    rule         {r.rule_id} -> {r.reason.value}\n")
        if r.matched:
            out.write(f"    matched      {r.matched!r}\n")
        permanence = "permanent" if r.permanent else "temporary"
        hard = "hard" if r.hard else "soft"
        out.write(
            f"    category     {r.category.value}: {r.category.label}"
            f" ({permanence} failure, {hard} by default)\n"
        )
        out.write(f"    what to do   {r.category.advice}\n")
    for problem in report.problems:
        out.write(f"  problem      {problem.code}: {problem.detail}\n")


def _status_words(status: str, derived: bool) -> str:
    if not status:
        return ""
    return f"status {status} (derived: the message gave none)" if derived else f"status {status}"


def cmd_explain(args: argparse.Namespace) -> int:
    failed = 0
    for item in iter_paths(args.paths):
        if isinstance(item, Unreadable):
            failed += 1
            sys.stderr.write(f"bounceback: cannot read {item.source}: {item.error}\n")
            continue
        explain(parse(item.raw), item.source, item.position, sys.stdout)
    return 1 if failed else 0


def cmd_serve(_: argparse.Namespace) -> int:
    from bounceback.service.runner import serve  # noqa: PLC0415 (the core needs none of it)
    from bounceback.service.settings import load  # noqa: PLC0415

    return serve(load())


def cmd_admin(args: argparse.Namespace) -> int:
    from bounceback.service import admin  # noqa: PLC0415

    return admin.run(args)


def cmd_samples(_: argparse.Namespace) -> int:
    print(SAMPLES)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bounceback", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parse", help="parse bounce messages and print what they say")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per message")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a message file, a folder (recursive), an mbox file or a maildir",
    )
    p.set_defaults(func=cmd_parse)
    e = sub.add_parser("explain", help="explain how each recipient was classified")
    e.add_argument("paths", nargs="+", metavar="PATH")
    e.set_defaults(func=cmd_explain)
    sv = sub.add_parser("serve", help="run the service (settings: BOUNCEBACK_* variables)")
    sv.set_defaults(func=cmd_serve)
    ad = sub.add_parser("admin", help="administration: users, API keys, re-parsing")
    adsub = ad.add_subparsers(dest="action", required=True)
    cu = adsub.add_parser("create-user", help="create a user (and its account if new)")
    cu.add_argument("--account", required=True, help="the account's name (created if new)")
    cu.add_argument("--email", required=True)
    cu.add_argument("--name", default="")
    cu.add_argument("--admin", action="store_true", help="an administrator of the account")
    cu.add_argument("--password", help="default: BOUNCEBACK_ADMIN_PASSWORD, else asked for")
    ck = adsub.add_parser("create-api-key", help="create an API key for an account")
    ck.add_argument("--account", required=True, help="the account's name")
    ck.add_argument("--name", default="API key")
    adsub.add_parser("reparse", help="re-read every stored bounce with this parser version")
    un = adsub.add_parser("unmatched", help="list stored messages that matched no delivery")
    un.add_argument("--limit", type=int, default=50)
    sr = adsub.add_parser("show-raw", help="print a stored message as received")
    sr.add_argument("raw_id", type=int)
    ad.set_defaults(func=cmd_admin)
    s = sub.add_parser("samples", help="print the folder of sample bounces shipped with bounceback")
    s.set_defaults(func=cmd_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `bounceback parse ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
