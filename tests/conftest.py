"""Shared test fixtures and the strict mode of CI.

Tests that need something outside the project (the shared corpus, and later PostgreSQL, Postfix,
Dovecot, Chromium) skip with a clear reason where it is absent. CI sets BOUNCEBACK_STRICT=1, which
turns every such skip into a failure, so CI always runs them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import STRICT


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in strict mode (BOUNCEBACK_STRICT=1): {reason}"
