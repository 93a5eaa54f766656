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
    P(
        "auth.dmarc-policy",
        R.AUTH_FAILURE,
        r"dmarc policy|due to domain'?s dmarc|dmarc (?:check|verification|validation) fail|"
        r"fails? (?:to pass )?dmarc|does not pass dmarc|rejected per dmarc|dmarc reject",
        sender_dmarc=True,
    ),
    # "550 5.7.1 This message does not have authentication information or fails to pass
    # authentication checks (SPF or DKIM)"
    P(
        "auth.spf-dkim-checks",
        R.AUTH_FAILURE,
        r"fails? to pass authentication checks|does not have authentication information|"
        r"spf (?:check )?fail|spf record with a hard fail|bad spf records?|spf validation|"
        r"sender policy framework|dkim (?:signature )?(?:verification |validation )?fail|"
        r"failed (?:the )?(?:spf|dkim)|\bspf\b.{0,40}\b(?:fail|reject)|not authorized to send",
    ),
    # "550 5.1.0 192.0.2.222 is not allowed to send from <example.net> per it's SPF Record.
    # Please inspect your SPF settings, and try again. IB508" (GoDaddy): the domain's SPF record
    # does not list the sending IP.
    P(
        "auth.spf-record-not-allowed",
        R.AUTH_FAILURE,
        r"per (?:its|it'?s|their|the domain'?s) spf record|inspect your spf settings",
    ),
    # --- require_ptr ---------------------------------------------------------------------------
    # "550 5.7.1 Connections not accepted from servers without a valid sender domain. Fix
    # reverse DNS for 203.0.113.2"; "450 4.7.1 Access denied. IP name lookup failed"
    P(
        "ptr.reverse-dns",
        R.REQUIRE_PTR,
        r"reverse dns|reverse (?:dns )?lookup|\bptr\b|ip name lookup failed|no rdns|\brdns\b|"
        r"cannot find your hostname|client host rejected: cannot find|"
        r"does not have (?:a )?(?:valid )?(?:ptr|reverse)|"
        r"(?:unresolvable|unknown) (?:client )?host ?name|hostname (?:does not|doesn't) resolve|"
        r"not resolve to your ip|host name lookup failed|invalid host ?name",
    ),
    # "550 domain [example.com] mismatches client ip 192.0.2.225." (Hotmail): the name the
    # client gave does not resolve to the connecting IP address.
    P("ptr.domain-mismatches-ip", R.REQUIRE_PTR, r"mismatches client ip"),
    # "450 service permits 2 unverifyable sending IPs - example.com is not 192.0.2.2": the
    # sending IP does not resolve back to a verifiable name.
    P("ptr.unverifiable-sending-ip", R.REQUIRE_PTR, r"unverif[iy]?[ai]ble sending ips?"),
    # --- virus --------------------------------------------------------------------------------
    # "550 Virus Detected; Content Rejected"
    P("content.virus", R.VIRUS_DETECTED, r"virus|malware|infected|trojan|worm detected|ransomware"),
    # --- spam ---------------------------------------------------------------------------------
    # "550 5.7.1 Message content rejected, UBE, id=00000-00-000"
    P(
        "spam.detected",
        R.SPAM_DETECTED,
        r"\bspam\b(?! ?haus)|\bube\b|junk mail|unsolicited|spam(?:my|-like)|look(?:s|ed) like spam|"
        r"bulk mail|classified as (?:spam|junk)|message (?:is|was) spam|"
        r"content (?:looks|seems) (?:like )?spam|spamassassin|high spam score",
    ),
    # "550-REJECTED - Blacklisted URL in message. (example.com) in [black]. 550-See
    # http://lookup.uribl.com. - Blacklisted Link": a link in the body is on a URI blocklist.
    P("spam.uri-blocklist", R.SPAM_DETECTED, r"blacklisted (?:url|link)|\buribl\b|\bsurbl\b"),
    # Exim (cPanel): "The mail server could not deliver mail to a@b. The account or domain may
    # not exist, they may be blacklisted, or missing the proper dns entries." (before
    # blocked.dnsbl, whose "blacklisted" it only mentions as a possibility)
    P(
        "host.account-or-domain-may-not-exist",
        R.HOST_UNKNOWN,
        r"the account or domain may not exist",
    ),
    # Exim (cPanel): "Sorry, you are sending to/from an address that has been blacklisted": the
    # envelope address, not the sending host, is on the receiver's list.
    P(
        "sender.address-blacklisted",
        R.SENDER_REJECTED,
        r"sending to/from an address that has been blacklisted",
    ),
    # Lotus Domino / Notes: "User some.name (a@b) not listed in Domino Directory";
    # "User  not listed in public Name & Address Book" (before blocked.dnsbl, whose
    # "listed in .{0,40}bl" would read "public" as a blocklist).
    P(
        "user.notes-not-listed",
        R.USER_UNKNOWN,
        r"not listed in (?:the )?(?:domino directory|public name (?:&|and) address book)",
    ),
    # --- blocked: the sending IP or host ------------------------------------------------------
    # "450 4.7.1 <c135.example.ne.jp[192.0.2.56]>: Client host rejected: may not be mail
    # exchanger": the connecting host has a name, but one the receiver does not take for a mail
    # server (a dial-up or dynamic range); it is the host that is refused, not its PTR record.
    P("blocked.not-mail-exchanger", R.BLOCKED, r"may not be (?:a )?mail exchanger"),
    # "554 mx.example.com ESMTP not accepting connections" (the greeting): the server answered,
    # so the domain does receive mail; it is this client's connection that is refused.
    P("blocked.not-accepting-connections", R.BLOCKED, r"not accepting connections"),
    # "521-5.7.1 Service unavailable; client [203.0.113.225] blocked using dnsbl.sorbs.net";
    # "553 http://www.spamhaus.org/query/bl?ip=192.0.2.222"
    P(
        "blocked.dnsbl",
        R.BLOCKED,
        r"blocked using|listed (?:in|on|at) .{0,40}(?:bl|black ?list|block ?list|spamhaus)|"
        r"spamhaus|spamcop|sorbs|barracudacentral|black ?list(?:ed)?|block ?list(?:ed)?|"
        r"\bdnsbl\b|\brbl\b|\bdnsrbl\b|ip (?:address )?(?:is )?(?:blocked|banned|denied|rejected)|"
        r"client host .{0,60}(?:blocked|rejected)|(?:your|the) ip .{0,40}(?:blocked|listed)|"
        r"banned sending ip|access denied.{0,40}\bip\b|not allowed to send from|"
        r"connection refused by|refused to talk to me|too many (?:spam|bad)",
    ),
    # "550 SC-004 (COL0-MC1-F1) Unfortunately, messages from 192.0.2.22 weren't sent. ... The
    # problem is that too many unwanted messages have been sent from the following IP address"
    P(
        "blocked.ms-messages-from-ip",
        R.BLOCKED,
        r"messages from \[?\d{1,3}(?:\.\d{1,3}){3}\]? weren'?t sent|"
        r"unwanted messages have been sent from the following ip",
    ),
    # "501 <a@b>... no access from mail server [192.0.2.55] which is an open relay.": the
    # sending host itself is refused.
    P(
        "blocked.open-relay",
        R.BLOCKED,
        r"no access from mail server|(?:which|that) is an open relay|listed as an open relay",
    ),
    # "554 INVALID IP FOR SENDING MAIL OF DOMAIN amazonses.com [RCPT_TO]": the sending IP is not
    # one the receiver accepts for that sender domain.
    P("blocked.invalid-ip-for-domain", R.BLOCKED, r"invalid ip for sending mail"),
    # "550 5.7.0 <a@b>... Please use the smtp server of your ISP.": the sending host is in a
    # (dynamic) range that must relay through its provider's server.
    P(
        "blocked.use-isp-server",
        R.BLOCKED,
        r"use the smtp server of your isp|"
        r"use your (?:isp|provider)'?s? (?:smtp|mail) (?:server|relay)",
    ),
    # qmail: "Connected to 192.0.2.112 but my name was rejected. Remote host said: 501 5.0.0
    # Invalid domain name": the HELO name was refused (before host.unknown: the domain named is
    # the sender's own).
    P("blocked.helo-name-rejected", R.BLOCKED, r"but my name was rejected"),
    # Exim: "SMTP error from remote mail server after initial connection: 550 Access denied...":
    # refused at the greeting, before any envelope, so it is the connecting host that is denied.
    P("blocked.denied-at-connect", R.BLOCKED, r"after initial connection:.{0,120}\baccess denied"),
    # --- bad_reputation ------------------------------------------------------------------------
    # "451 4.7.650 The mail server [192.0.2.25] has been temporarily rate limited due to IP
    # reputation."
    P("reputation.ip", R.BAD_REPUTATION, r"reputation|poor sending|low sender score|senderscore"),
    # --- too_many_connections / rate_limited --------------------------------------------------
    # "452 4.3.2 Connection rate limit exceeded."; "550 Connection frequency limited"
    P(
        "conn.too-many",
        R.TOO_MANY_CONNECTIONS,
        r"too many (?:concurrent |simultaneous |open )?connections|connection (?:rate )?limit|"
        r"connection frequency|frequency limited|too many sessions|max(?:imum)? connections",
    ),
    # "421 4.7.0 [TSS04] Messages from 192.0.2.192 temporarily deferred due to unexpected
    # volume or user complaints"
    P(
        "rate.limited",
        R.RATE_LIMITED,
        r"rate limit|too many (?:messages|emails|mails|recipients per)|sending rate|"
        r"temporarily deferred due to|unexpected volume|throttl|try again later.{0,20}too fast|"
        r"exceeded (?:the )?(?:hourly|daily) |receiving mail at a rate",
    ),
    # --- mailbox_full --------------------------------------------------------------------------
    # "552 5.2.2 <a@b>... Mailbox Full"; "over quota"
    P(
        "mailbox.full",
        R.MAILBOX_FULL,
        r"mailbox (?:is )?full|mail ?box full|over ?quota|quota (?:exceeded|full)|"
        r"exceeded (?:storage|(?:the )?quota)|exceeds? (?:his|her|the|its)? ?(?:mailbox )?quota|"
        r"insufficient (?:user )?(?:storage|space) (?:for|in) (?:the )?(?:user|mailbox)|"
        r"mailbox (?:size )?(?:limit|quota)|not enough (?:storage|space) in|user'?s? (?:disk )?quota|"
        r"is over (?:its|the|his|her) (?:storage|quota)|full mailbox|mailfolder is full|"
        r"out of storage|storage quota|account is full|inbox is full",
    ),
    # Biglobe: "The number of messages in recipient's mailbox exceeded the local limit."
    P(
        "mailbox.message-count-exceeded",
        R.MAILBOX_FULL,
        r"messages in (?:the )?recipient'?s mailbox exceeded",
    ),
    # IMail: "User mailbox exceeds allowed size: a@b"
    P("mailbox.exceeds-allowed-size", R.MAILBOX_FULL, r"mailbox exceeds (?:the )?allowed size"),
    # --- system_full ---------------------------------------------------------------------------
    # "452 4.4.5 Insufficient disk space; try again later"; "Not enough disk space"
    P(
        "system.full",
        R.SYSTEM_FULL,
        r"insufficient (?:disk|system) (?:space|storage)|not enough disk space|disk full|"
        r"file system full|out of disk|no space left",
    ),
    # "552 5.6.0 Headers too large (3 max)": the header, not the message, is too large (must come
    # before size.too-big, whose "too large" would take it).
    P(
        "content.headers-too-large",
        R.CONTENT_ERROR,
        r"headers? (?:are |is )?too (?:large|long|big)",
    ),
    # --- message_too_big / exceed_limit -------------------------------------------------------
    # "552 5.3.4 Message size exceeds fixed limit"; "500 Line limit exceeded"
    P(
        "size.too-big",
        R.MESSAGE_TOO_BIG,
        r"message (?:is )?too (?:big|large)|message size exceeds|size limit|exceeds? (?:the )?"
        r"(?:maximum|max) (?:message )?size|mail size|too large|message length exceeds|"
        r"line limit exceeded",
    ),
    # "552 Too many recipients"; "452 4.5.3 Too many recipients" (taxonomy: exceed_limit is
    # "the message exceeded some other limit (recipients, size per period)")
    P("limit.too-many-recipients", R.EXCEED_LIMIT, r"too many recipients"),
    # "This email inbox a@b is no longer in use. Please contact someone else": the mailbox
    # exists but is out of use (before moved.no-longer, whose "no longer in use" would take it).
    P(
        "suspended.no-longer-in-use",
        R.SUSPENDED,
        r"(?:inbox|mailbox|account|e-?mail address)\b(?:[^.]|\.(?=\S)){0,80}\bis no longer in use",
    ),
    # --- has_moved ----------------------------------------------------------------------------
    # "550 5.1.6 recipient no longer on server: a@b"
    P(
        "moved.no-longer",
        R.HAS_MOVED,
        r"no longer (?:on server|available|valid|in use|at this)|has moved|moved to|"
        r"address (?:has )?changed|forwarding address",
    ),
    # --- suspended ----------------------------------------------------------------------------
    # "550 5.2.1 The email account that you tried to reach is disabled."
    P(
        "suspended.disabled",
        R.SUSPENDED,
        r"account (?:is |has been )?(?:disabled|suspended|inactive|deactivated|locked|blocked|"
        r"expired|closed|frozen)|(?:is|has been) (?:disabled|suspended|deactivated|inactive)|"
        r"mailbox (?:is )?(?:disabled|inactive|suspended|unavailable.{0,20}inactive)|"
        r"disabled (?:recipient|mailbox|account|user)|temporar(?:y|ily) locked|"
        r"compte du destinataire est bloque|user (?:is )?(?:suspended|inactive|disabled)|"
        r"inactive (?:user|mailbox|account)|suspended (?:user|mailbox|account)",
    ),
    # KDDI (au, ezweb.ne.jp): "550 : User unknown", with the address left out, is what its
    # servers answer when the recipient's reception filter refuses the sender; a mailbox that
    # does not exist is answered "550 <a@ezweb.ne.jp>: User unknown". Also quoted by relays as
    # "550: : User unknown" or "... -> 550 : User unknown".
    P("filtered.kddi-empty-user-unknown", R.FILTERED, r"(?<!\d)550:? : user unknown"),
    # Exchange Online (directory-based edge blocking): "550 5.4.1 Recipient address rejected:
    # Access denied. [AS0PR01MB0000.eurprd01.prod.outlook.com]": the address is not in the
    # recipient organisation's directory.
    P("user.recipient-access-denied", R.USER_UNKNOWN, r"recipient address rejected: access denied"),
    # "550 5.6.0 <a@b>: Recipient address rejected: Media error": RFC 3463's text for X.6.0
    # (before user.unknown, whose "address rejected" would take it).
    P("content.media-error", R.CONTENT_ERROR, r"\bmedia error\b"),
    # "521 5.3.2 <a@b>: Recipient address rejected: System not accepting network messages":
    # RFC 3463's text for X.3.2 (before user.unknown, whose "address rejected" would take it).
    P("notaccept.system-not-accepting", R.NOT_ACCEPTING, r"system not accepting network messages"),
    # "554 5.3.0 <a@b>: Recipient address rejected: Internal system error" (before user.unknown,
    # whose "address rejected" would take it).
    P("system.internal-system-error", R.SYSTEM_ERROR, r"internal system error"),
    # --- user_unknown ---------------------------------------------------------------------------
    # Postfix local(8): "user unknown. Command output: procmail: Couldn't create
    # '/var/spool/mail/neko'" (procmail quotes the path with double quotes): the delivery
    # program could not create the mailbox file it delivers into, so it is the program that
    # failed, whatever exit status the MTA made of it.
    P(
        "mailer.cannot-create-file",
        R.MAILER_ERROR,
        r"(?:couldn'?t|could not|cannot|can'?t) create [\"']?/",
    ),
    # "550 5.1.1 <a@b>... User Unknown"; "550 Unknown user a@b"; "No such user"; "550
    # <a@b>: Recipient address rejected." (nothing after it: the address itself was refused)
    P(
        "user.unknown",
        R.USER_UNKNOWN,
        r"user (?:is )?unknown|unknown (?:user|recipient|mailbox|local ?part|address|account)|"
        r"no such (?:user|mailbox|recipient|account|address|local user)|"
        r"(?:user|mailbox|recipient|address|account) (?:does not|doesn'?t|did not) exist|"
        r"(?:user|recipient|mailbox|account|address) not (?:found|exist|known)|"
        r"invalid (?:recipient|mailbox|user|address)|not a (?:valid|known) (?:user|recipient|mailbox)|"
        r"recipient (?:address )?rejected: (?:user unknown|undeliverable address|unknown)|"
        r"recipient address rejected\.?$|"
        r"mailbox (?:not found|unavailable|does not exist|is not available)|"
        r"(?:is|was) not (?:a )?(?:valid|known) (?:user|mailbox|recipient)|"
        r"bad destination mailbox|unrouteable address|"
        r"this user doesn'?t have an? .{0,40} account|no mailbox here|not our (?:customer|user)|"
        r"non-?existent (?:user|mailbox|recipient|address)|(?<!recipient )address rejected|address unknown|"
        r"unknown or illegal alias|no valid recipients|couldn'?t find (?:the )?recipient|"
        r"addressee unknown|does not have an account|recipient unknown|undeliverable address",
    ),
    # Postfix: "Name service error for domain example.com: Host not found, try again" and
    # "Name service error for name=example.org type=MX: Malformed or unexpected name server
    # reply": the DNS lookup failed for now (TRY_AGAIN, SERVFAIL), the domain may well exist
    # (before host.unknown, whose "name service error" would take it).
    P(
        "network.dns-try-again",
        R.NETWORK_ERROR,
        r"host not found, try again|malformed or unexpected name server reply",
    ),
    # --- host_unknown --------------------------------------------------------------------------
    # "550 Host unknown"; "Host or domain name not found. Name service error for name=example.org"
    # "553 neko.example.com does not exist" (a bare host name, not an address, that does not exist)
    P(
        "host.unknown",
        R.HOST_UNKNOWN,
        r"host (?:is )?unknown|unknown host|host not found|host or domain name not found|"
        r"domain (?:does not|doesn'?t) exist|no such domain|unknown domain|invalid domain|"
        r"domain not found|name service error|name or service not known|nxdomain|"
        r"unrouteable (?:mail )?domain|no mx (?:record|host)|domain (?:is )?not (?:found|valid)|"
        r"non-?existent domain|(?<![\w@.-])(?:[a-z0-9-]{1,63}\.){1,10}[a-z]{2,24} does not exist",
    ),
    # "554 The mail could not be delivered to the recipient because the domain is not reachable.
    # Please check the domain and try again" (Hotmail / Outlook.com): no mail host was found.
    P("host.domain-not-reachable", R.HOST_UNKNOWN, r"because the domain is not reachable"),
    # dma: "DNS lookup failure: host cx.example.org not found"
    P("host.named-host-not-found", R.HOST_UNKNOWN, r"dns lookup failure: host \S+ not found"),
    # --- not_accepting ------------------------------------------------------------------------
    # "550 Host does not accept mail"
    P(
        "notaccept.host",
        R.NOT_ACCEPTING,
        r"does not accept (?:any )?mail|not accepting (?:mail|messages)|null mx|"
        r"accepts no mail|no mail accepted",
    ),
    # Exim: "an MX or SRV record indicated no SMTP service" (a null MX, RFC 7505)
    P("notaccept.no-smtp-service", R.NOT_ACCEPTING, r"indicated no smtp service"),
    # MessageLabs: "550-Please turn on SMTP Authentication in your mail client. 550-... is not
    # permitted to relay through this server without authentication." (before relay.denied: the
    # cause is the missing authentication, not the relaying)
    P(
        "security.smtp-auth-off",
        R.SECURITY_ERROR,
        r"turn on smtp authentication|relay through this server without authentication",
    ),
    # qmail: "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)": the domain exists
    # but names no host to deliver to (qmail says "couldn't find any host named" when it does
    # not exist).
    P(
        "notaccept.no-mx-or-address",
        R.NOT_ACCEPTING,
        r"couldn'?t find a mail exchanger or ip address",
    ),
    # --- no_relaying ----------------------------------------------------------------------------
    # "550 5.7.1 Unable to relay"; "Relaying denied"
    P(
        "relay.denied",
        R.NO_RELAYING,
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)|"
        r"unable to relay|not permitted to relay|we do not relay|relay not permitted|"
        r"cannot relay|no relaying|not a gateway|relay access denied|is not relayed",
    ),
    # "501 Rcpt-To validation failed: RCPT TO not accepted: 5.7.1 This system is not configured
    # to relay mail (r) from <a@b> to <c@d> for 127.0.0.1"
    P("relay.not-configured", R.NO_RELAYING, r"not configured to relay"),
    # --- sender_rejected ------------------------------------------------------------------------
    # "501 5.1.8 Sender address rejected"; "553 5.1.8 <a@b>... Domain of sender address a@b does
    # not exist"
    P(
        "sender.rejected",
        R.SENDER_REJECTED,
        r"sender (?:address )?(?:rejected|denied|refused|invalid|unknown|not allowed|blocked)|"
        r"domain of sender|sender domain|invalid sender|unknown sender|sender verify failed|"
        r"mail ?from (?:domain|address)|sender (?:is )?(?:not|unverified)|bad sender|"
        r"envelope sender|return path|reverse-path|sender address (?:does not|is not)|"
        r"sender email address rejected|from address (?:rejected|not allowed)",
    ),
    # qmail: "Connected to 192.0.2.225 but sender was rejected. Remote host said: 550 5.7.1
    # <a@b>... Access denied": refused at MAIL FROM (before security.auth's "access denied").
    P("sender.qmail-sender-rejected", R.SENDER_REJECTED, r"but sender was rejected"),
    # "550 5.2.0 <a@b> From: Domain is invalid. Please provide a valid From: IB506" (GoDaddy)
    P(
        "sender.from-domain-invalid",
        R.SENDER_REJECTED,
        r"from:? domain is invalid|provide a valid from",
    ),
    # Courier (Sender ID): "550 5.7.1 can't determine Purported Responsible Address": the
    # sender's address could not be found in the headers.
    P("sender.purported-responsible-address", R.SENDER_REJECTED, r"purported responsible address"),
    # --- policy_violation ---------------------------------------------------------------------
    # "550 5.7.0 Local Policy Violation"; "550 Denied by policy"
    P(
        "policy.violation",
        R.POLICY_VIOLATION,
        r"policy violation|violat(?:es|ion of) (?:our |local )?polic|denied by policy|"
        r"local policy|rejected by (?:local |site )?policy|policy (?:reasons|rejection)|"
        r"prohibited by policy|refused by policy",
    ),
    # "552-5.7.0 This message was blocked because its content presents a potential security
    # issue. Please visit https://support.google.com/mail/answer/6590 to review our message
    # content and attachment content guidelines."
    P(
        "policy.content-security-issue",
        R.POLICY_VIOLATION,
        r"content presents a potential security issue",
    ),
    # --- content_error / not_compliant_rfc ----------------------------------------------------
    # "550-5.7.1 This message is not RFC 5322 compliant."; "550-5.7.1 [192.0.2.222 13] Messages
    # with multiple addresses in From: header are not accepted." (RFC 5322 section 3.6.2: a From:
    # with several mailboxes needs a Sender:, which bulk mail rarely has)
    P(
        "rfc.not-compliant",
        R.NOT_COMPLIANT_RFC,
        r"not rfc ?\d* ?compliant|rfc ?(?:2822|5322|822) |does not (?:comply|conform)|"
        r"non-?compliant|improperly formatted|malformed (?:message|header)|"
        r"duplicate (?:headers?|message-id)|missing (?:required )?(?:header|date|message-id)|"
        r"multiple addresses in from",
    ),
    # "552 5.6.0 Headers too large (3 max)"; "550 5.7.1 message content rejected"
    P(
        "content.error",
        R.CONTENT_ERROR,
        r"header error|headers too large|invalid (?:header|mime|content)|content (?:rejected|refused)|"
        r"message content|attachment (?:rejected|not allowed|type)|prohibited attachment|"
        r"illegal (?:character|attachment)|banned (?:attachment|file)",
    ),
    # --- filtered -------------------------------------------------------------------------------
    # "550 5.2.0 Message Filtered"
    P(
        "filtered.filter",
        R.FILTERED,
        r"filtered|message (?:was )?(?:rejected|blocked|refused) (?:by|due to) (?:a |the )?"
        r"(?:content )?filter|content filter|refused due to recipient preferences|"
        r"recipient preferences",
    ),
    # --- security_error -----------------------------------------------------------------------
    # "530 5.7.0 Must issue a STARTTLS command first"
    P(
        "security.tls",
        R.FAILED_STARTTLS,
        r"starttls|tls (?:negotiation|handshake) failed|must issue a starttls|tls required",
    ),
    # "530 5.7.1 Authentication required"; "530 5.7.0 Must issue a STARTTLS command first"
    P(
        "security.auth",
        R.SECURITY_ERROR,
        r"authentication required|must (?:be )?authenticat|secure connection required|"
        r"encryption required",
    ),
    # "550 5.7.1 Access denied"; "551 5.7.1 Delivery not authorized": these say only that
    # something was refused, so the SMTP command, when known, says what (weak).
    P(
        "security.access-denied",
        R.SECURITY_ERROR,
        r"access denied|not authorized|unauthori[sz]ed|permission denied",
        weak=True,
    ),
    # --- network / system / expired ----------------------------------------------------------
    # "4.4.7 Delivery time expired"; "retry timeout exceeded"
    P(
        "expired.queue",
        R.EXPIRED,
        r"delivery time expired|(?:message|retry) (?:time ?out|timeout) exceeded|"
        r"retry time (?:not reached|exceeded)|message expired|queue(?:d)? too long|"
        r"has been delayed|could not be delivered (?:for|within) .{0,20}days|"
        r"(?:undeliverable|undelivered) for (?:too long|\d+ days)|giving up",
    ),
    # Sendmail: "Warning: message still undelivered after 4 hours"; "Message could not be
    # delivered for 8 hours"
    P(
        "expired.still-undelivered",
        R.EXPIRED,
        r"message still undelivered after \d+ (?:hours?|days?)|"
        r"could not be delivered for \d+ (?:hours?|days?)",
    ),
    # "This is only a notification about a delay in the delivery of your message" (a delay
    # notice that quotes no server answer)
    P(
        "expired.delay-notice",
        R.EXPIRED,
        r"notification about a delay in the delivery|mail delivery delayed",
    ),
    # Postfix: "connect to example.org[192.0.2.1]:25: Connection timed out"; SendGrid:
    # "Connection timed out": a host that never answers is retried until the queue lifetime
    # runs out, so a notice that quotes only a connection time-out is the message expiring.
    P("expired.connect-timed-out", R.EXPIRED, r"connection timed out"),
    # Sendmail: "Status: 4.0.0 (cat.example.net: host name lookup failure)": the recipient
    # domain's DNS lookup failed for now.
    P(
        "network.name-lookup-failure",
        R.NETWORK_ERROR,
        r"host name lookup failure|name server timeout",
    ),
    # "554 5.4.6 Too many hops"; "lost connection with mx2.qq.com[184.105.206.86] while
    # receiving the initial server greeting"
    P(
        "network.routing",
        R.NETWORK_ERROR,
        r"too many hops|routing loop|mail loop|loops? back to myself|"
        r"connection (?:timed out|refused|reset)|lost connection|no route to host|"
        r"network (?:is )?unreachable|conversation with .{0,80} timed out|timed? ?out",
    ),
    # "421 4.3.0 Upstream error, please check"
    P(
        "system.error",
        R.SYSTEM_ERROR,
        r"system (?:error|config)|internal (?:server )?error|temporary (?:local )?(?:failure|problem|"
        r"error)|server (?:error|busy)|service (?:temporarily )?unavailable|try again later|"
        r"upstream error|local error|configuration error|resources temporarily",
    ),
    # SurfControl: "554 Service currently unavailable"
    P("system.service-currently-unavailable", R.SYSTEM_ERROR, r"service currently unavailable"),
    # "554 5.3.0 unknown mailer error 255"
    P(
        "mailer.error",
        R.MAILER_ERROR,
        r"mailer error|(?:program|pipe|procmail|command) (?:failed|died|exited)|"
        r"error in processing|x-unix",
    ),
    # "503 Improper sequence of commands"
    P("syntax.improper-sequence", R.SYNTAX_ERROR, r"improper sequence of commands"),
    # Exim: "all hosts have been failing for a long time and were last tried after this message
    # arrived"; "retry time not reached for any host after a long failure period"
    P(
        "expired.exim-hosts-failing",
        R.EXPIRED,
        r"all hosts have been failing for a long time|"
        r"retry time not reached for any host after a long failure period",
    ),
    # Postfix: "451 4.3.0 Error: queue file write error" (cleanup could not write the message)
    P("system.queue-file-write-error", R.SYSTEM_ERROR, r"queue file write error"),
    # --- syntax_error ---------------------------------------------------------------------------
    # "501 Syntax error in parameters"
    P(
        "syntax.error",
        R.SYNTAX_ERROR,
        r"syntax error|command unrecognized|unrecognized command|bad sequence of commands",
    ),
)
