"""Classification rules as data.

Every rule has a stable id (never reused, never renumbered: results, stored events and the UI refer
to it) and sits under a comment quoting a real server response it matches. The engine
(``classify/engine.py``) decides which table is consulted first; the tables decide nothing about
order between themselves.

- ``phrases``: response phrases per reason.
- ``status``: enhanced status codes (RFC 3463 / RFC 5248) to reasons.
- ``providers``: rules that apply only to one receiving provider, keyed by its remote host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bounceback.core.taxonomy import Reason


@dataclass(frozen=True, slots=True)
class PhraseRule:
    """A regular expression over the normalised (lower-case, single-spaced) diagnostic."""

    id: str
    reason: Reason
    pattern: str
    sender_dmarc: bool = False  # an auth_failure that is the sender's own DMARC policy failing
    # A weak phrase says only that something was refused ("access denied"): when the SMTP
    # command that was refused is known, the command decides instead (engine step 7).
    weak: bool = False

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


@dataclass(frozen=True, slots=True)
class StatusRule:
    """An enhanced status code (exact, or ``x.y.*`` for a whole subject/detail family)."""

    id: str
    code: str  # "5.1.1", or "*.1.1" for both classes
    reason: Reason
    # Decisive codes name one cause so precisely that they win over response phrases.
    decisive: bool = False


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """A rule that applies only when the remote (or reporting) host is one provider's."""

    id: str
    host: str  # regular expression over the host name
    reason: Reason
    pattern: str = ""  # over the normalised diagnostic; "" = any
    status: str = ""  # exact status code; "" = any
    command: str = ""  # the SMTP command the failure answered (RCPT, DATA ...); "" = any
    sender_dmarc: bool = False
