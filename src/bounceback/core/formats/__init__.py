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

from bounceback.core.formats import (
    activehunter,
    amazonses,
    amazonworkmail,
    apachejames,
    biglobe,
    courier,
    delivery_errors,
    dma,
    domino,
    dsntext,
    exchange2003,
    exchange2007,
    exim,
    ezweb,
    facebook,
    fallback,
    fml,
    forwarded_report,
    gmail,
    gmx,
    googlegroups,
    imail,
    interscan,
    jmrp,
    kddi,
    mailfoundry,
    mailmarshal,
    messaging_server,
    mfilter,
    mimecast,
    notes,
    opensmtpd,
    postfix,
    qmail,
    sendgrid,
    sendmail,
    sendmail_v5,
    smail,
    technical_details,
    trouble_delivering,
    unable_to_deliver,
    unsubscribe,
    verizon,
    yahoo,
    zoho,
)
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
    # au EZweb: Postmaster@ezweb.ne.jp, "Mail System Error - Returned Mail"; its fixed English
    # sentences say why, and a delivery-status part it may carry has no diagnostic.
    Detector(ezweb.NAME, ezweb.detect),
    # GMX, WEB.DE, 1&1: Exim's first sentence, then "--- The header of the original message is
    # following. ---" and the platform's own recipient blocks. Before exim, which would take them.
    Detector(gmx.NAME, gmx.detect),
    # Exim: "This message was created automatically by mail delivery software" with
    # X-Failed-Recipients; its text names the SMTP command and the address a pipe served.
    Detector(exim.NAME, exim.detect),
    # Amazon SES: its JSON notifications (x-amz-sns-* headers, sns.amazonaws.com sender) and its
    # own DSNs (MAILER-DAEMON@*.amazonses.com) whose diagnostic wraps the server's answer.
    Detector(amazonses.NAME, amazonses.detect),
    # Sendmail 8: a delivery-status part whose Diagnostic-Code quotes one line of the reply;
    # its "----- Transcript of session follows -----" text holds the rest and the command.
    Detector(sendmail.NAME, sendmail.detect),
    # Postfix: "This is the mail system at host"; its paragraphs say "(in reply to RCPT TO
    # command)", which the delivery-status part leaves out.
    Detector(postfix.NAME, postfix.detect),
    # Courier: "running the Courier mail server"; its ">>> DATA" lines name the command.
    Detector(courier.NAME, courier.detect),
    # OpenSMTPD: "This is the MAILER-DAEMON, please DO NOT REPLY"; its report has no diagnostic.
    Detector(opensmtpd.NAME, opensmtpd.detect),
    # SendGrid: X-SendGrid-* fields in its delivery-status part, which says "Action: expired"
    # (not an RFC 3464 action) for a message it stopped retrying.
    Detector(sendgrid.NAME, sendgrid.detect),
    # Facebook: mx.facebook.com reports whose answer carries a Facebook response code
    # (RCP-P1, RCP-P2 ...) that names the cause better than the 5.1.1 status it always sends.
    Detector(facebook.NAME, facebook.detect),
    # Sun/Oracle Messaging Server and PMDF: "This report relates to a message you sent"; its
    # prose names the failed step ("rejected address", "transmission failure") and survives
    # the broken MIME of old PMDF reports.
    Detector(messaging_server.NAME, messaging_server.detect),
    # "This is an automatically generated Delivery Status Notification" with "Technical
    # details:": its report writes 5.1.1 in Status whatever the server answered.
    Detector(technical_details.NAME, technical_details.detect),
    # A multipart/report whose boundaries are missing or broken: its RFC 3464 fields are in the
    # text, with no message/delivery-status part to find them in.
    Detector(dsntext.NAME, dsntext.detect),
    # == end of formats before rfc3464
    # RFC 3464: any message/delivery-status part, whoever wrote it.
    Detector(rfc3464.NAME, rfc3464.detect),
    # == MTA formats (non-RFC 3464 notices of mail server software).
    # Exchange 5.5-2003: "did not reach the following recipient(s)" from the Internet Mail
    # Service or Connector (X-Mailer / Received / X-MS-Embedded-Report), no delivery-status part.
    Detector(exchange2003.NAME, exchange2003.detect),
    # Exchange 2007+ / Office 365 NDR whose delivery-status part is missing: "Delivery has failed
    # to these recipients" and the "Diagnostic information for administrators" block.
    Detector(exchange2007.NAME, exchange2007.detect),
    # qmail: "Hi. This is the qmail-send program at", one "<address>:" paragraph each.
    Detector(qmail.NAME, qmail.detect),
    # Sendmail 5: "Returned mail:" with "----- Transcript of session follows -----" and no
    # MIME: each "<address>... " line of the transcript is one recipient.
    Detector(sendmail_v5.NAME, sendmail_v5.detect),
    # DragonFly Mail Agent: "This is the DragonFly Mail Agent", one recipient per bounce.
    Detector(dma.NAME, dma.detect),
    # IMail Server: X-Mailer "<SMTP32 v...>", "Undeliverable Mail", "<cause>: <address>" lines.
    Detector(imail.NAME, imail.detect),
    # Lotus Notes: "------- Failure Reasons --------" then the cause and the addresses.
    Detector(notes.NAME, notes.detect),
    # Lotus Domino: "DELIVERY FAILURE:" subject, "was not delivered to:" ... "because:".
    Detector(domino.NAME, domino.detect),
    # fml mailing lists: X-MLServer "fml"; the list refused a sender (not a member) or a loop.
    Detector(fml.NAME, fml.detect),
    # Apache James: "Error message below:" then "Message details:" with "RCPT TO:".
    Detector(apachejames.NAME, apachejames.detect),
    # "---The following addresses had delivery errors---" and "address [cause]" lines.
    Detector(delivery_errors.NAME, delivery_errors.detect),
    # "Message from <domain>." / "Unable to deliver message to the following address(es)."
    # (Yahoo! of the 2000s and others), one "<address>:" paragraph per recipient.
    Detector(unable_to_deliver.NAME, unable_to_deliver.detect),
    # Smail 3: "|---- Failed addresses follow: ----|" ruled sections, no MIME.
    Detector(smail.NAME, smail.detect),
    # "We had trouble delivering your message. Full details follow:" and "The following
    # recipients returned permanent errors: <a>. Reason: SMTP Server <ip> refused ... (DATA)".
    Detector(trouble_delivering.NAME, trouble_delivering.detect),
    # == end of MTA formats
    # == Provider and gateway formats (one company's or one product's own notices).
    # Google Groups: mailer-daemon@googlemail.com, X-Failed-Recipients, a notice in any language
    # signed "Google Groups" (groups.google.com). Before gmail: same sender.
    Detector(googlegroups.NAME, googlegroups.detect),
    # Gmail without a usable delivery-status part: mailer-daemon@googlemail.com and "Delivery to
    # the following recipient failed permanently" / "** Message not delivered **".
    Detector(gmail.NAME, gmail.detect),
    # Yahoo! Mail (and AOL): "Sorry, we were unable to deliver your message to the following
    # address." from MAILER-DAEMON.
    Detector(yahoo.NAME, yahoo.detect),
    # Zoho Mail: X-ZohoMail / "Zoho Mail" mailer, "ERROR_CODE :550" lines.
    Detector(zoho.NAME, zoho.detect),
    # Amazon WorkMail: X-Mailer "Amazon WorkMail", an inline RFC 3464 report after
    # "Technical report:" in a plain-text notice.
    Detector(amazonworkmail.NAME, amazonworkmail.detect),
    # BIGLOBE: postmaster@biglobe.ne.jp, "----- Non-delivered information -----".
    Detector(biglobe.NAME, biglobe.detect),
    # KDDI au one net: no-reply@*.dion.ne.jp (auone-net.jp), "Could not be delivered to: <a@b>".
    Detector(kddi.NAME, kddi.detect),
    # Verizon Wireless MMSC: sender @vzwpix.com / @vtext.com, "Message could not be delivered to
    # mobile." and the recipient in its "Original Message:" summary.
    Detector(verizon.NAME, verizon.detect),
    # Mimecast: X-Mimecast-* headers or a mimecast.com Received line, and its "The problem
    # appears to be :" / "Additional information follows :" alert.
    Detector(mimecast.NAME, mimecast.detect),
    # m-FILTER (Digital Arts): "-------server message" and "-------SMTP command" sections.
    Detector(mfilter.NAME, mfilter.detect),
    # Trend Micro InterScan MSS: "InterScan" sender or text, "Unable to deliver message to <a>".
    Detector(interscan.NAME, interscan.detect),
    # MailMarshal: "Could not be delivered because of" and "The following recipients were
    # affected:".
    Detector(mailmarshal.NAME, mailmarshal.detect),
    # A gateway notice that names no recipient ("The following addresses had permanent delivery
    # errors" and nothing under it) with the next hop's report attached: read that report.
    Detector(forwarded_report.NAME, forwarded_report.detect),
    # Microsoft JMRP complaints: "complaint about message from <ip>" with the reported message
    # attached (X-HmXmrOriginalRecipient); not ARF.
    Detector(jmrp.NAME, jmrp.detect),
    # Unsubscribe requests a mail client sent for the user: Apple Mail's "X-Apple-Unsubscribe:
    # true". Before the auto-reply detector, which their Auto-Submitted header would satisfy.
    Detector(unsubscribe.NAME, unsubscribe.detect),
    # Active!hunter: X-AHMAILID header, ">>> address" lines and a sendmail-like transcript.
    Detector(activehunter.NAME, activehunter.detect),
    # MailFoundry: "Message delivery has failed", "Unable to deliver message to:" blocks.
    Detector(mailfoundry.NAME, mailfoundry.detect),
    # == end of provider formats
    # RFC 3834 auto-replies: after every bounce detector (Exim marks its bounces auto-replied).
    Detector(autoreply.NAME, autoreply.detect),
    # Heuristic: addresses next to a server's answer in a daemon's notice. Always last.
    Detector(fallback.NAME, fallback.detect),
)
