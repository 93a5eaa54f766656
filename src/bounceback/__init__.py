"""bounceback: parse, classify and act on email bounces.

The core API is pure: ``parse(raw: bytes) -> Report``.
"""

from bounceback.core.pipeline import parse, verp_token
from bounceback.core.report import Original, Problem, RecipientResult, Report
from bounceback.core.taxonomy import Action, Category, Kind, Reason, categorize

__all__ = [
    "Action",
    "Category",
    "Kind",
    "Original",
    "Problem",
    "Reason",
    "RecipientResult",
    "Report",
    "categorize",
    "parse",
    "verp_token",
]
__version__ = "0.1.0"
