"""The detectors, in the one order they are tried.

A detector reads a :class:`~bounceback.core.message.Mail` and returns the :class:`Facts` of each
recipient it found, or None when the message is not its format. The first detector that returns
facts wins, so the order is the design: standards first (their structure is unambiguous), then
formats recognised by a fixed signature of one MTA or provider, then RFC 3834 auto-replies (after
every bounce detector, because some bounces carry auto-reply headers), then the heuristic fallback.
Each entry says why it sits where it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bounceback.core.formats import fallback
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import arf, autoreply, rfc3464

Detect = Callable[[Mail], list[Facts] | None]


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    detect: Detect


DETECTORS: tuple[Detector, ...] = (
    # RFC 5965 complaints first: a feedback report is a multipart/report too, and its returned
    # message may itself look like a bounce.
    Detector(arf.NAME, arf.detect),
    # == Formats whose messages carry a delivery-status part that the generic reader gets wrong.
    # == end of formats before rfc3464
    # RFC 3464: any message/delivery-status part, whoever wrote it.
    Detector(rfc3464.NAME, rfc3464.detect),
    # == MTA formats (non-RFC 3464 notices of mail server software).
    # == end of MTA formats
    # == Provider and gateway formats (one company's or one product's own notices).
    # == end of provider formats
    # RFC 3834 auto-replies: after every bounce detector (Exim marks its bounces auto-replied).
    Detector(autoreply.NAME, autoreply.detect),
    # Heuristic: addresses next to a server's answer in a daemon's notice. Always last.
    Detector(fallback.NAME, fallback.detect),
)
