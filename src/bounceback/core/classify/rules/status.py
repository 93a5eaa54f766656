"""Enhanced status codes to reasons (RFC 3463, the IANA "SMTP Enhanced Status Codes" registry of
RFC 5248, and vendor codes that are used widely enough to be read as data).

The code is matched exactly first ("5.7.26"), then as the class-free ``*.subject.detail``. Codes
marked decisive name a single cause precisely enough to win over response phrases; the others
only decide when no phrase did. Generic codes (x.0.0) are not listed: they say nothing.
"""

from __future__ import annotations

from bounceback.core.classify.rules import StatusRule
from bounceback.core.taxonomy import Reason as R

STATUS_RULES: tuple[StatusRule, ...] = (
    # X.1.1 "Bad destination mailbox address": "550 5.1.1 <a@b>: Recipient address rejected:
    # User unknown in virtual mailbox table"
    StatusRule("status.x11", "*.1.1", R.USER_UNKNOWN, decisive=True),
    # X.1.2 "Bad destination system address": "550 5.1.2 <a@b>... Host unknown (Name server:
    # example.gov.: host not found)"
    StatusRule("status.x12", "*.1.2", R.HOST_UNKNOWN, decisive=True),
    # X.1.3 "Bad destination mailbox address syntax": "553 5.1.3 Invalid recipient address"
    StatusRule("status.x13", "*.1.3", R.USER_UNKNOWN),
    # X.1.4 "Destination mailbox address ambiguous"
    StatusRule("status.x14", "*.1.4", R.USER_UNKNOWN),
    # X.1.6 "Destination mailbox has moved, No forwarding address": "550 5.1.6 recipient no
    # longer on server: a@b"
    StatusRule("status.x16", "*.1.6", R.HAS_MOVED, decisive=True),
    # X.1.7 "Bad sender's mailbox address syntax": "550 5.1.7 Invalid sender address"
    StatusRule("status.x17", "*.1.7", R.SENDER_REJECTED, decisive=True),
    # X.1.8 "Bad sender's system address": "553 5.1.8 <a@b>... Domain of sender address
    # a@b does not exist"
    StatusRule("status.x18", "*.1.8", R.SENDER_REJECTED, decisive=True),
    # X.1.10 "Recipient address has null MX" (RFC 7505): "556 5.1.10 Recipient address has
    # null MX"
    StatusRule("status.x110", "*.1.10", R.NOT_ACCEPTING),
    # X.2.1 "Mailbox disabled, not accepting messages": "550 5.2.1 The email account that you
    # tried to reach is disabled."
    StatusRule("status.x21", "*.2.1", R.SUSPENDED),
    # X.2.2 "Mailbox full": "552 5.2.2 <a@b>... Mailbox Full"
    StatusRule("status.x22", "*.2.2", R.MAILBOX_FULL, decisive=True),
    # X.2.3 "Message length exceeds administrative limit": "552 5.2.3 Message size exceeds
    # fixed maximum message size (10485760)"
    StatusRule("status.x23", "*.2.3", R.EXCEED_LIMIT, decisive=True),
    # X.2.4 "Mailing list expansion problem"
    StatusRule("status.x24", "*.2.4", R.SYSTEM_ERROR),
    # X.3.1 "Mail system full": "452 4.3.1 Insufficient system storage"
    StatusRule("status.x31", "*.3.1", R.SYSTEM_FULL, decisive=True),
    # X.3.2 "System not accepting network messages"
    StatusRule("status.x32", "*.3.2", R.NOT_ACCEPTING),
    # X.3.3 "System not capable of selected features"
    StatusRule("status.x33", "*.3.3", R.SYSTEM_ERROR),
    # X.3.4 "Message too big for system": "552 5.3.4 Message size exceeds fixed limit"
    StatusRule("status.x34", "*.3.4", R.MESSAGE_TOO_BIG, decisive=True),
    # X.3.5 "System incorrectly configured": "553 5.3.5 system config error"
    StatusRule("status.x35", "*.3.5", R.SYSTEM_ERROR),
    # X.4.1 "No answer from host"
    StatusRule("status.x41", "*.4.1", R.NETWORK_ERROR),
    # X.4.2 "Bad connection"
    StatusRule("status.x42", "*.4.2", R.NETWORK_ERROR),
    # X.4.3 "Directory server failure" (DNS)
    StatusRule("status.x43", "*.4.3", R.SYSTEM_ERROR),
    # X.4.4 "Unable to route": "550 5.4.4 Invalid domain"
    StatusRule("status.x44", "*.4.4", R.HOST_UNKNOWN),
    # X.4.5 "Mail system congestion": "452 4.4.5 Insufficient disk space; try again later"
    StatusRule("status.x45", "*.4.5", R.SYSTEM_FULL),
    # X.4.6 "Routing loop detected": "554 5.4.6 Too many hops"
    StatusRule("status.x46", "*.4.6", R.NETWORK_ERROR, decisive=True),
    # X.4.7 "Delivery time expired": "4.4.7 Delivery time expired"
    StatusRule("status.x47", "*.4.7", R.EXPIRED, decisive=True),
    # X.5.1 "Invalid command", X.5.2 "Syntax error"
    StatusRule("status.x51", "*.5.1", R.SYNTAX_ERROR),
    StatusRule("status.x52", "*.5.2", R.SYNTAX_ERROR),
    # X.5.3 "Too many recipients": "452 4.5.3 Too many recipients"
    StatusRule("status.x53", "*.5.3", R.EXCEED_LIMIT),
    # X.5.4 "Invalid command arguments"
    StatusRule("status.x54", "*.5.4", R.SYNTAX_ERROR),
    # X.6.0 "Other or undefined media error": "552 5.6.0 Headers too large (3 max)"
    StatusRule("status.x60", "*.6.0", R.CONTENT_ERROR),
    # X.6.1 "Media not supported": "500 5.6.1 Message content rejected"
    StatusRule("status.x61", "*.6.1", R.CONTENT_ERROR),
    # X.6.3 "Conversion required but not supported", X.6.5 "Conversion failed"
    StatusRule("status.x63", "*.6.3", R.CONTENT_ERROR),
    StatusRule("status.x65", "*.6.5", R.CONTENT_ERROR),
    # X.6.7/8/9/10 (RFC 6531 SMTPUTF8 downgrade problems)
    StatusRule("status.x67", "*.6.7", R.NOT_COMPLIANT_RFC),
    StatusRule("status.x68", "*.6.8", R.NOT_COMPLIANT_RFC),
    # X.7.1 "Delivery not authorized, message refused": too broad to decide alone.
    StatusRule("status.x71", "*.7.1", R.SECURITY_ERROR),
    # X.7.2 "Mailing list expansion prohibited"
    StatusRule("status.x72", "*.7.2", R.SECURITY_ERROR),
    # X.7.4 "Security features not supported", X.7.5 "Cryptographic failure"
    StatusRule("status.x74", "*.7.4", R.SECURITY_ERROR),
    StatusRule("status.x75", "*.7.5", R.SECURITY_ERROR),
    # X.7.6 "Cryptographic algorithm not supported": "550 5.7.6 Failed to delivery"
    StatusRule("status.x76", "*.7.6", R.SECURITY_ERROR),
    # X.7.7 "Message integrity failure"
    StatusRule("status.x77", "*.7.7", R.SECURITY_ERROR),
    # X.7.8 "Authentication credentials invalid", X.7.9 "Authentication mechanism is too weak"
    StatusRule("status.x78", "*.7.8", R.SECURITY_ERROR),
    StatusRule("status.x79", "*.7.9", R.SECURITY_ERROR),
    # X.7.10 "Encryption Needed", X.7.11 "Encryption required for requested authentication
    # mechanism"
    StatusRule("status.x710", "*.7.10", R.SECURITY_ERROR),
    StatusRule("status.x711", "*.7.11", R.SECURITY_ERROR),
    # X.7.13 "User Account Disabled": "525 5.7.13 Disabled recipient address"
    StatusRule("status.x713", "*.7.13", R.SUSPENDED, decisive=True),
    # X.7.14 "Trust relationship required"
    StatusRule("status.x714", "*.7.14", R.SECURITY_ERROR),
    # X.7.15 "Priority Level is too low", X.7.16 "Message is too big for the specified priority"
    StatusRule("status.x716", "*.7.16", R.MESSAGE_TOO_BIG),
    # X.7.17 "Mailbox owner has changed", X.7.18 "Domain owner has changed"
    StatusRule("status.x717", "*.7.17", R.HAS_MOVED),
    StatusRule("status.x718", "*.7.18", R.HAS_MOVED),
    # X.7.20-X.7.24 (RFC 7372): DKIM and SPF validation failures
    StatusRule("status.x720", "*.7.20", R.AUTH_FAILURE, decisive=True),
    StatusRule("status.x721", "*.7.21", R.AUTH_FAILURE, decisive=True),
    StatusRule("status.x722", "*.7.22", R.AUTH_FAILURE, decisive=True),
    StatusRule("status.x723", "*.7.23", R.AUTH_FAILURE, decisive=True),
    StatusRule("status.x724", "*.7.24", R.AUTH_FAILURE, decisive=True),
    # X.7.25 "Reverse DNS validation failed": "550 5.7.25 [192.0.2.1] The IP address sending
    # this message does not have a PTR record setup"
    StatusRule("status.x725", "*.7.25", R.REQUIRE_PTR, decisive=True),
    # X.7.26 "Multiple authentication checks failed": "550 5.7.26 Unauthenticated email from
    # example.com is not accepted due to domain's DMARC policy"
    StatusRule("status.x726", "*.7.26", R.AUTH_FAILURE, decisive=True),
    # X.7.27 "Sender address has null MX" (RFC 7505)
    StatusRule("status.x727", "*.7.27", R.NOT_ACCEPTING, decisive=True),
    # X.7.28 "Mail flood detected" (RFC 7754? registry: "Mail flood detected")
    StatusRule("status.x728", "*.7.28", R.RATE_LIMITED),
    # X.7.29 "ARC validation failure", X.7.30 "REQUIRETLS support required"
    StatusRule("status.x729", "*.7.29", R.AUTH_FAILURE),
    StatusRule("status.x730", "*.7.30", R.SECURITY_ERROR),
    # Microsoft's own codes. "550 5.7.509 Access denied, sending domain example.com does not
    # pass DMARC verification and has a DMARC policy of reject."
    StatusRule("status.ms.57509", "5.7.509", R.AUTH_FAILURE, decisive=True),
    # "550 5.7.606 Access denied, banned sending IP [192.0.2.1]"
    StatusRule("status.ms.57606", "5.7.606", R.BLOCKED, decisive=True),
    # "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
    StatusRule("status.ms.5754", "5.7.54", R.NO_RELAYING, decisive=True),
    # "451 4.7.650 The mail server [192.0.2.25] has been temporarily rate limited due to IP
    # reputation."
    StatusRule("status.ms.47650", "4.7.650", R.BAD_REPUTATION, decisive=True),
    # "550 5.4.312 DNS query failed" (Exchange Online)
    StatusRule("status.ms.54312", "5.4.312", R.NETWORK_ERROR),
    # "550 5.1.351 Remote server returned 'unknown user'"? Exchange: "5.1.351 Invalid recipient"
    StatusRule("status.ms.51351", "5.1.351", R.USER_UNKNOWN),
)
