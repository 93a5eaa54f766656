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
    P(
        "google.5726-unauthenticated",
        r"(?:^|\.)(?:google|gmail|googlemail)\.com$",
        R.AUTH_FAILURE,
        status="5.7.26",
    ),
    # Google: "421-4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail
    # originating from your IP address."
    P(
        "google.unusual-rate",
        r"(?:^|\.)(?:google|gmail|googlemail)\.com$",
        R.BLOCKED,
        pattern=r"unusual rate of unsolicited mail",
    ),
    # Google: "550-5.7.1 [192.0.2.22 18] Our system has detected that this message is likely
    # suspicious due to the very low reputation of the sending IP address. To best protect our
    # users from spam, the message has been blocked." (the cause is the reputation, the spam
    # only what Gmail fears)
    P(
        "google.low-reputation",
        r"(?:^|\.)(?:google|gmail|googlemail)\.com$",
        R.BAD_REPUTATION,
        pattern=r"low reputation of the sending (?:ip|domain)",
    ),
    # Amazon SES (sending): "554 Message rejected: Email address is not verified. The following
    # identities failed the check in region AP-NORTHEAST-1: a@b": SES relays only for the
    # identities the account has verified.
    P(
        "ses-outbound.identity-not-verified",
        r"^email-smtp\.[\w-]+\.amazonaws\.com$",
        R.NO_RELAYING,
        pattern=r"email address is not verified",
    ),
    # Yahoo: "421 4.7.0 [TSS04] Messages from 192.0.2.192 temporarily deferred due to
    # unexpected volume or user complaints"
    P("yahoo.tss04", r"yahoo(?:dns)?\.(?:com|net)$", R.RATE_LIMITED, pattern=r"\[tss04\]"),
    # Yahoo: "554 delivery error: dd This user doesn't have a yahoo.com account
    # (a@yahoo.com) [0] - mta1061.mail.ne1.yahoo.com". Yahoo checks recipients only after DATA,
    # so this answer to the end of data still means the mailbox does not exist.
    P(
        "yahoo.no-account",
        r"yahoo(?:dns)?\.(?:com|net)$",
        R.USER_UNKNOWN,
        pattern=r"this user doesn'?t have an? yahoo\.[a-z.]+ account",
    ),
    # Microsoft: "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact
    # your Internet service provider since part of their network is on our block list (S3150)."
    P(
        "microsoft.s3150",
        r"(?:outlook|hotmail|live|msn)\.com$",
        R.BLOCKED,
        pattern=r"on our block list \(s\d+\)",
    ),
    # Microsoft (Exchange Online): "550 5.4.312 Message expired, DNS query failed". Microsoft's
    # 5.4.3xx codes name the routing failure that made the message expire; 5.4.312 is a DNS
    # query for the recipient domain that kept failing.
    P(
        "microsoft.54312-dns-query-failed",
        r"(?:outlook|hotmail|live|msn)\.com$",
        R.NETWORK_ERROR,
        status="5.4.312",
    ),
    # Google: "550-5.7.1 This message is not RFC 5322 compliant. There are multiple Subject
    # headers. To reduce the amount of spam sent to Gmail, this message has been blocked."
    # (https://support.google.com/mail/?p=RfcMessageNonCompliant): the cause is the format.
    P(
        "google.rfc5322-noncompliant",
        r"(?:^|\.)(?:google|gmail|googlemail)\.com$",
        R.NOT_COMPLIANT_RFC,
        pattern=r"not rfc ?5322 compliant",
    ),
    # Google: "DNS Error: 80335577 DNS type 'mx' lookup of example.jp responded with code
    # NXDOMAIN Domain name not found" with Status 4.0.0: Gmail reports its own DNS lookup of the
    # recipient domain as a temporary failure.
    P(
        "google.dns-error-temporary",
        r"(?:^|\.)(?:google|gmail|googlemail)\.com$",
        R.NETWORK_ERROR,
        status="4.0.0",
        pattern=r"dns error: .{0,200}(?:nxdomain|had no relevant answers|servfail|timed out)",
    ),
    # Amazon SES inbound (a receipt rule's bounce action): "450 4.0.0 Temporary failure" is SES's
    # generic temporary bounce and says nothing about the cause.
    P(
        "ses-inbound.temporary-failure",
        r"^inbound-smtp\.[\w-]+\.amazonaws\.com$",
        R.ON_HOLD,
        pattern=r"^450 4\.0\.0 temporary failure$",
    ),
    # Amazon SES inbound: "451 4.3.0 This message could not be delivered due to a recipient
    # error. Please try again later." (the receiving side's rule failed; cause not given).
    P(
        "ses-inbound.recipient-error",
        r"^inbound-smtp\.[\w-]+\.amazonaws\.com$",
        R.ON_HOLD,
        pattern=r"could not be delivered due to a recipient error",
    ),
    # Amazon SES inbound: "500 5.6.1 Message content rejected": the receipt rule's bounce for a
    # message its spam and virus scanning refused.
    P(
        "ses-inbound.content-rejected",
        r"^inbound-smtp\.[\w-]+\.amazonaws\.com$",
        R.SPAM_DETECTED,
        pattern=r"message content rejected",
    ),
    # Cox: "550 5.1.0 <a@b> sender rejected. Refer to Error Codes section at
    # https://www.cox.com/residential/support/email-error-codes.html for more information.
    # AUP#CDRBL": CDRBL is Cox's own block list of sending IP addresses.
    P("cox.aup-rbl", r"(?:^|\.)(?:cox\.net|cloudfilter\.net)$", R.BLOCKED, pattern=r"aup#\w*rbl\b"),
    # Orange (France): "550 5.2.0 Mail rejete. Mail rejected. OFR_506 [506]": refused as spam.
    P(
        "orange.506-mail-rejected",
        r"(?:^|\.)(?:orange|wanadoo)\.fr$",
        R.SPAM_DETECTED,
        pattern=r"\bofr\d*_506\b|mail rejete\. mail rejected",
    ),
    # Orange: "421 4.2.0 Service refuse. Veuillez essayer plus tard. Service refused, please try
    # later. OFR005_505 [505]": Orange's server refused the session for now.
    P(
        "orange.505-service-refused",
        r"(?:^|\.)(?:orange|wanadoo)\.fr$",
        R.SYSTEM_ERROR,
        pattern=r"\bofr\d*_505\b",
    ),
    # La Poste: "554 5.7.1 <host[192.0.2.1]:49309>: Client host rejected: #216 lpn LPN000_630":
    # the sending host is refused by La Poste's policy.
    P(
        "laposte.630-policy",
        r"(?:^|\.)laposte\.net$",
        R.POLICY_VIOLATION,
        pattern=r"\blpn\d*_630\b",
    ),
    # La Poste: "550 5.5.0 Service refuse. Veuillez essayer plus tard. service refused, please try
    # later. LPN001_108"; "421 4.2.1 Service refuse. ... LPN006_107": the sending IP is refused.
    P(
        "laposte.service-refused",
        r"(?:^|\.)laposte\.net$",
        R.BLOCKED,
        pattern=r"service refused?\b.{0,80}\blpn\d*_\d+",
    ),
    # GoDaddy (secureserver.net): "550 5.1.1 <a@b> - 203.0.113.222 has sent to too many
    # recipients this hour. IB607 <http://x.co/rlbounce>": an hourly limit per sending IP, whatever
    # the status code says.
    P(
        "godaddy.ib607-rate",
        r"(?:^|\.)secureserver\.net$",
        R.RATE_LIMITED,
        pattern=r"\bib607\b|too many recipients this hour",
    ),
    # MessageLabs (Symantec Email Security.cloud): "542 a@b Rejected": the recipient is not one
    # of the customer's registered addresses.
    P(
        "messagelabs.542-rejected",
        r"(?:^|\.)messagelabs\.com$",
        R.USER_UNKNOWN,
        pattern=r"^542 \S+@\S+ rejected",
    ),
    # Mimecast: "554 Host network not allowed - https://community.mimecast.com/docs/DOC-1369#554":
    # the customer's policy does not permit the sending network.
    P(
        "mimecast.host-network-not-allowed",
        r"(?:^|\.)mimecast\.com$",
        R.POLICY_VIOLATION,
        pattern=r"host network not allowed",
    ),
    # Mimecast: "554 email rejected due to security policies - MCSpamSignature.sa.2.2": the
    # message matched Mimecast's malware signatures.
    P(
        "mimecast.security-policies",
        r"(?:^|\.)mimecast\.com$",
        R.VIRUS_DETECTED,
        pattern=r"rejected due to security policies",
    ),
)
