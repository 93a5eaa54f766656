"""Response phrases per reason.

Patterns run over the normalised diagnostic: lower-case, whitespace collapsed to one space. The
table is ordered: the first rule that matches decides, so more specific causes come before broader
ones (a "mailbox full" must win over the "rejected" that surrounds it). Each rule quotes a real
server response it matches.
"""

from __future__ import annotations

from bounceback.core.classify.rules import PhraseRule as P
from bounceback.core.taxonomy import Reason as R

PHRASE_RULES: tuple[P, ...] = (
    # --- auth_failure: SPF, DKIM, DMARC --------------------------------------------------------
    # "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC
    # policy. Please contact the administrator of example.com domain"
    P("auth.dmarc-policy", R.AUTH_FAILURE,
      r"dmarc policy|due to domain'?s dmarc|dmarc (?:check|verification|validation) fail|"
      r"fails? (?:to pass )?dmarc|does not pass dmarc|rejected per dmarc|dmarc reject",
      sender_dmarc=True),
    # "550 5.7.1 This message does not have authentication information or fails to pass
    # authentication checks (SPF or DKIM)"
    P("auth.spf-dkim-checks", R.AUTH_FAILURE,
      r"fails? to pass authentication checks|does not have authentication information|"
      r"spf (?:check )?fail|spf record with a hard fail|bad spf records?|spf validation|"
      r"sender policy framework|dkim (?:signature )?(?:verification |validation )?fail|"
      r"failed (?:the )?(?:spf|dkim)|\bspf\b.{0,40}\b(?:fail|reject)|not authorized to send"),
    # --- require_ptr ---------------------------------------------------------------------------
    # "550 5.7.1 Connections not accepted from servers without a valid sender domain. Fix
    # reverse DNS for 203.0.113.2"; "450 4.7.1 Access denied. IP name lookup failed"
    P("ptr.reverse-dns", R.REQUIRE_PTR,
      r"reverse dns|reverse (?:dns )?lookup|\bptr\b|ip name lookup failed|no rdns|\brdns\b|"
      r"cannot find your hostname|client host rejected: cannot find|"
      r"does not have (?:a )?(?:valid )?(?:ptr|reverse)|may not be mail exchanger|"
      r"(?:unresolvable|unknown) (?:client )?host ?name|hostname (?:does not|doesn't) resolve|"
      r"not resolve to your ip|host name lookup failed|invalid host ?name"),
    # --- virus --------------------------------------------------------------------------------
    # "550 Virus Detected; Content Rejected"
    P("content.virus", R.VIRUS_DETECTED,
      r"virus|malware|infected|trojan|worm detected|ransomware"),
    # --- spam ---------------------------------------------------------------------------------
    # "550 5.7.1 Message content rejected, UBE, id=00000-00-000"
    P("spam.detected", R.SPAM_DETECTED,
      r"\bspam\b(?! ?haus)|\bube\b|junk mail|unsolicited|spam(?:my|-like)|look(?:s|ed) like spam|"
      r"bulk mail|classified as (?:spam|junk)|message (?:is|was) spam|"
      r"content (?:looks|seems) (?:like )?spam|spamassassin|high spam score"),
    # --- blocked: the sending IP or host ------------------------------------------------------
    # "521-5.7.1 Service unavailable; client [203.0.113.225] blocked using dnsbl.sorbs.net";
    # "553 http://www.spamhaus.org/query/bl?ip=192.0.2.222"
    P("blocked.dnsbl", R.BLOCKED,
      r"blocked using|listed (?:in|on|at) .{0,40}(?:bl|black ?list|block ?list|spamhaus)|"
      r"spamhaus|spamcop|sorbs|barracudacentral|black ?list(?:ed)?|block ?list(?:ed)?|"
      r"\bdnsbl\b|\brbl\b|\bdnsrbl\b|ip (?:address )?(?:is )?(?:blocked|banned|denied|rejected)|"
      r"client host .{0,60}(?:blocked|rejected)|(?:your|the) ip .{0,40}(?:blocked|listed)|"
      r"banned sending ip|access denied.{0,40}\bip\b|not allowed to send from|"
      r"connection refused by|refused to talk to me|too many (?:spam|bad)"),
    # --- bad_reputation ------------------------------------------------------------------------
    # "451 4.7.650 The mail server [192.0.2.25] has been temporarily rate limited due to IP
    # reputation."
    P("reputation.ip", R.BAD_REPUTATION,
      r"reputation|poor sending|low sender score|senderscore"),
    # --- too_many_connections / rate_limited --------------------------------------------------
    # "452 4.3.2 Connection rate limit exceeded."; "550 Connection frequency limited"
    P("conn.too-many", R.TOO_MANY_CONNECTIONS,
      r"too many (?:concurrent |simultaneous |open )?connections|connection (?:rate )?limit|"
      r"connection frequency|frequency limited|too many sessions|max(?:imum)? connections"),
    # "421 4.7.0 [TSS04] Messages from 192.0.2.192 temporarily deferred due to unexpected
    # volume or user complaints"
    P("rate.limited", R.RATE_LIMITED,
      r"rate limit|too many (?:messages|emails|mails|recipients per)|sending rate|"
      r"temporarily deferred due to|unexpected volume|throttl|try again later.{0,20}too fast|"
      r"exceeded (?:the )?(?:hourly|daily) |receiving mail at a rate"),
    # --- mailbox_full --------------------------------------------------------------------------
    # "552 5.2.2 <a@b>... Mailbox Full"; "over quota"
    P("mailbox.full", R.MAILBOX_FULL,
      r"mailbox (?:is )?full|mail ?box full|over ?quota|quota (?:exceeded|full)|"
      r"exceeded (?:storage|(?:the )?quota)|exceeds? (?:his|her|the|its)? ?(?:mailbox )?quota|"
      r"insufficient (?:user )?(?:storage|space) (?:for|in) (?:the )?(?:user|mailbox)|"
      r"mailbox (?:size )?(?:limit|quota)|not enough (?:storage|space) in|user'?s? (?:disk )?quota|"
      r"is over (?:its|the|his|her) (?:storage|quota)|full mailbox|mailfolder is full|"
      r"out of storage|storage quota|account is full|inbox is full"),
    # --- system_full ---------------------------------------------------------------------------
    # "452 4.4.5 Insufficient disk space; try again later"; "Not enough disk space"
    P("system.full", R.SYSTEM_FULL,
      r"insufficient (?:disk|system) (?:space|storage)|not enough disk space|disk full|"
      r"file system full|out of disk|no space left"),
    # --- message_too_big / exceed_limit -------------------------------------------------------
    # "552 5.3.4 Message size exceeds fixed limit"
    P("size.too-big", R.MESSAGE_TOO_BIG,
      r"message (?:is )?too (?:big|large)|message size exceeds|size limit|exceeds? (?:the )?"
      r"(?:maximum|max) (?:message )?size|mail size|too large|message length exceeds"),
    # --- has_moved ----------------------------------------------------------------------------
    # "550 5.1.6 recipient no longer on server: a@b"
    P("moved.no-longer", R.HAS_MOVED,
      r"no longer (?:on server|available|valid|in use|at this)|has moved|moved to|"
      r"address (?:has )?changed|forwarding address"),
    # --- suspended ----------------------------------------------------------------------------
    # "550 5.2.1 The email account that you tried to reach is disabled."
    P("suspended.disabled", R.SUSPENDED,
      r"account (?:is |has been )?(?:disabled|suspended|inactive|deactivated|locked|blocked|"
      r"expired|closed|frozen)|(?:is|has been) (?:disabled|suspended|deactivated|inactive)|"
      r"mailbox (?:is )?(?:disabled|inactive|suspended|unavailable.{0,20}inactive)|"
      r"disabled (?:recipient|mailbox|account|user)|temporar(?:y|ily) locked|"
      r"compte du destinataire est bloque|user (?:is )?(?:suspended|inactive|disabled)|"
      r"inactive (?:user|mailbox|account)|suspended (?:user|mailbox|account)"),
    # --- user_unknown ---------------------------------------------------------------------------
    # "550 5.1.1 <a@b>... User Unknown"; "550 Unknown user a@b"; "No such user"
    P("user.unknown", R.USER_UNKNOWN,
      r"user (?:is )?unknown|unknown (?:user|recipient|mailbox|local ?part|address|account)|"
      r"no such (?:user|mailbox|recipient|account|address|local user)|"
      r"(?:user|mailbox|recipient|address|account) (?:does not|doesn'?t|did not) exist|"
      r"(?:user|recipient|mailbox|account|address) not (?:found|exist|known)|"
      r"invalid (?:recipient|mailbox|user|address)|not a (?:valid|known) (?:user|recipient|mailbox)|"
      r"recipient (?:address )?rejected: (?:user unknown|undeliverable address|unknown)|"
      r"mailbox (?:not found|unavailable|does not exist|is not available)|"
      r"(?:is|was) not (?:a )?(?:valid|known) (?:user|mailbox|recipient)|"
      r"bad destination mailbox|unrouteable address|unrouteable mail domain|"
      r"this user doesn'?t have an? .{0,40} account|no mailbox here|not our (?:customer|user)|"
      r"non-?existent (?:user|mailbox|recipient|address)|address (?:rejected|unknown)|"
      r"unknown or illegal alias|no valid recipients|couldn'?t find (?:the )?recipient|"
      r"addressee unknown|does not have an account|recipient unknown|undeliverable address"),
    # --- host_unknown --------------------------------------------------------------------------
    # "550 Host unknown"; "Host or domain name not found. Name service error for name=example.org"
    P("host.unknown", R.HOST_UNKNOWN,
      r"host (?:is )?unknown|unknown host|host not found|host or domain name not found|"
      r"domain (?:does not|doesn'?t) exist|no such domain|unknown domain|invalid domain|"
      r"domain not found|name service error|name or service not known|nxdomain|"
      r"unrouteable (?:mail )?domain|no mx (?:record|host)|domain (?:is )?not (?:found|valid)|"
      r"non-?existent domain"),
    # --- not_accepting ------------------------------------------------------------------------
    # "550 Host does not accept mail"; "554 ... ESMTP not accepting connections"
    P("notaccept.host", R.NOT_ACCEPTING,
      r"does not accept (?:any )?mail|not accepting (?:mail|connections|messages)|null mx|"
      r"accepts no mail|no mail accepted"),
    # --- no_relaying ----------------------------------------------------------------------------
    # "550 5.7.1 Unable to relay"; "Relaying denied"
    P("relay.denied", R.NO_RELAYING,
      r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)|"
      r"unable to relay|not permitted to relay|we do not relay|relay not permitted|"
      r"cannot relay|no relaying|not a gateway|relay access denied|is not relayed"),
    # --- sender_rejected ------------------------------------------------------------------------
    # "501 5.1.8 Sender address rejected"; "553 5.1.8 <a@b>... Domain of sender address a@b does
    # not exist"
    P("sender.rejected", R.SENDER_REJECTED,
      r"sender (?:address )?(?:rejected|denied|refused|invalid|unknown|not allowed|blocked)|"
      r"domain of sender|sender domain|invalid sender|unknown sender|sender verify failed|"
      r"mail ?from (?:domain|address)|sender (?:is )?(?:not|unverified)|bad sender|"
      r"envelope sender|return path|reverse-path|sender address (?:does not|is not)|"
      r"sender email address rejected|from address (?:rejected|not allowed)"),
    # --- policy_violation ---------------------------------------------------------------------
    # "550 5.7.0 Local Policy Violation"; "550 Denied by policy"
    P("policy.violation", R.POLICY_VIOLATION,
      r"policy violation|violat(?:es|ion of) (?:our |local )?polic|denied by policy|"
      r"local policy|rejected by (?:local |site )?policy|policy (?:reasons|rejection)|"
      r"prohibited by policy|refused by policy|messages with multiple addresses in from"),
    # --- content_error / not_compliant_rfc ----------------------------------------------------
    # "554 5.7.9 Header error"; "550-5.7.1 This message is not RFC 5322 compliant."
    P("rfc.not-compliant", R.NOT_COMPLIANT_RFC,
      r"not rfc ?\d* ?compliant|rfc ?(?:2822|5322|822) |does not (?:comply|conform)|"
      r"non-?compliant|improperly formatted|malformed (?:message|header)|"
      r"duplicate (?:headers?|message-id)|missing (?:required )?(?:header|date|message-id)"),
    P("content.error", R.CONTENT_ERROR,
      r"header error|headers too large|invalid (?:header|mime|content)|content (?:rejected|refused)|"
      r"message content|attachment (?:rejected|not allowed|type)|prohibited attachment|"
      r"illegal (?:character|attachment)|banned (?:attachment|file)"),
    # --- filtered -------------------------------------------------------------------------------
    # "550 5.2.0 Message Filtered"
    P("filtered.filter", R.FILTERED,
      r"filtered|message (?:was )?(?:rejected|blocked|refused) (?:by|due to) (?:a |the )?"
      r"(?:content )?filter|content filter|refused due to recipient preferences|"
      r"recipient preferences"),
    # --- security_error -----------------------------------------------------------------------
    # "550 5.7.1 Access denied"
    P("security.tls", R.FAILED_STARTTLS,
      r"starttls|tls (?:negotiation|handshake) failed|must issue a starttls|tls required"),
    P("security.auth", R.SECURITY_ERROR,
      r"authentication required|must (?:be )?authenticat|access denied|not authorized|"
      r"unauthori[sz]ed|permission denied|secure connection required|encryption required"),
    # --- network / system / expired ----------------------------------------------------------
    # "4.4.7 Delivery time expired"; "retry timeout exceeded"
    P("expired.queue", R.EXPIRED,
      r"delivery time expired|(?:message|retry) (?:time ?out|timeout) exceeded|"
      r"retry time (?:not reached|exceeded)|message expired|queue(?:d)? too long|"
      r"has been delayed|could not be delivered (?:for|within) .{0,20}days|"
      r"(?:undeliverable|undelivered) for (?:too long|\d+ days)|giving up"),
    # "Name service error for name=example.org type=A: Host not found, try again"
    P("network.routing", R.NETWORK_ERROR,
      r"too many hops|routing loop|mail loop|loops? back to myself|"
      r"connection (?:timed out|refused|reset)|lost connection|no route to host|"
      r"network (?:is )?unreachable|conversation with .{0,80} timed out|timed? ?out"),
    # "421 4.3.0 Upstream error, please check"
    P("system.error", R.SYSTEM_ERROR,
      r"system (?:error|config)|internal (?:server )?error|temporary (?:local )?(?:failure|problem|"
      r"error)|server (?:error|busy)|service (?:temporarily )?unavailable|try again later|"
      r"upstream error|local error|configuration error|resources temporarily"),
    # "554 5.3.0 unknown mailer error 255"
    P("mailer.error", R.MAILER_ERROR,
      r"mailer error|(?:program|pipe|procmail|command) (?:failed|died|exited)|"
      r"error in processing|x-unix"),
    # --- syntax_error ---------------------------------------------------------------------------
    # "501 Syntax error in parameters"
    P("syntax.error", R.SYNTAX_ERROR,
      r"syntax error|command unrecognized|unrecognized command|bad sequence of commands"),
)
