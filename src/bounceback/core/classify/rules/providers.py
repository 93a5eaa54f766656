"""Rules that hold only for one receiving provider, keyed by its host name.

A provider's codes sometimes mean something narrower (or different) than the registry says; these
rules run before the generic tables, and only when the remote MTA (or, failing that, the reporting
MTA) is that provider's.
"""

from __future__ import annotations

from bounceback.core.classify.rules import ProviderRule as P
from bounceback.core.taxonomy import Reason as R

PROVIDER_RULES: tuple[P, ...] = (
    # Google: "550-5.7.26 This mail is unauthenticated, which poses a security risk to the
    # sender and Gmail users, and has been blocked. The sender must authenticate with at least
    # one of SPF or DKIM."
    P("google.5726-unauthenticated", r"(?:^|\.)(?:google|gmail|googlemail)\.com$",
      R.AUTH_FAILURE, status="5.7.26"),
    # Google: "421-4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail
    # originating from your IP address."
    P("google.unusual-rate", r"(?:^|\.)(?:google|gmail|googlemail)\.com$", R.BLOCKED,
      pattern=r"unusual rate of unsolicited mail"),
    # Yahoo: "421 4.7.0 [TSS04] Messages from 192.0.2.192 temporarily deferred due to
    # unexpected volume or user complaints"
    P("yahoo.tss04", r"yahoo(?:dns)?\.(?:com|net)$", R.RATE_LIMITED, pattern=r"\[tss04\]"),
    # Microsoft: "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact
    # your Internet service provider since part of their network is on our block list (S3150)."
    P("microsoft.s3150", r"(?:outlook|hotmail|live|msn)\.com$", R.BLOCKED,
      pattern=r"on our block list \(s\d+\)"),
)
