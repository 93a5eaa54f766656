"""Shared test fixtures and the strict mode of CI.

Tests that need something outside the project (the shared corpus, and later PostgreSQL, Postfix,
Dovecot, Chromium) skip with a clear reason where it is absent. CI sets BOUNCEBACK_STRICT=1, which
turns every such skip into a failure, so CI always runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import dns.resolver
import pytest

from support import STRICT

# Tests never ask the machine's DNS resolver (the network stays on loopback): the DNS checks of
# a DMARC alert (domain/dnscheck.py) are off in `bounceback serve` subprocesses, and an
# in-process check without BOUNCEBACK_DNS_SERVERS finds no server to ask. Tests of the checks
# name their own DNS server on loopback (tests/dns_support.py).
os.environ.setdefault("BOUNCEBACK_DNS_SERVERS", "off")
dns.resolver.default_resolver = dns.resolver.Resolver(configure=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in strict mode (BOUNCEBACK_STRICT=1): {reason}"
