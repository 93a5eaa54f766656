"""An unnamed MTA's notice: "We had trouble delivering your message. Full details follow:".

Subject "There was an error sending your mail", the original headers attached as a text file,
and one sentence per group of recipients, naming the server, the command and its answer::

    1 error(s):

    The following recipients returned permanent errors: kijitora@nyaan.example.org. Reason:
    SMTP Server <192.0.2.223> refused to accept your message (DATA), with the following error
    message: [554 5.4.6 Hop count exceeded - possible mail loop]
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command
from bounceback.core.taxonomy import Action

NAME = "trouble_delivering"

_SIGNATURE = "we had trouble delivering your message"
_ERROR = re.compile(
    r"the following recipients returned (?P<kind>permanent|temporary|transient) errors:\s*"
    r"(?P<who>.+?)\.\s+reason:\s*(?P<reason>.+?)(?=the following recipients returned|"
    r"the attachment contains|\Z)",
    re.I | re.S,
)
_SERVER = re.compile(
    r"smtp server <(?P<host>[^<>]+)> refused to accept your message "
    r"\((?P<step>[a-z ]+)\)",
    re.I,
)
_ANSWER = re.compile(r"error message:\s*\[(?P<text>.+)\]", re.I | re.S)


def detect(mail: Mail) -> list[Facts] | None:
    notice = mail.notice
    # The cached lower-cased notice first: what is not in the whole notice is not in its start.
    if _SIGNATURE not in mail.notice_lower or _SIGNATURE not in notice[:2000].lower():
        return None
    out: list[Facts] = []
    for match in _ERROR.finditer(notice):
        reason = squash(match.group("reason"))
        server = _SERVER.search(reason)
        answer = _ANSWER.search(reason)
        step = command.find_command(f">>> {server.group('step')}") if server else ""
        action = Action.FAILED if match.group("kind").lower() == "permanent" else Action.DELAYED
        for address in addr.find_addresses(match.group("who")):
            out.append(
                facts(
                    address,
                    answer.group("text") if answer else reason,
                    action=action,
                    remote_mta=server.group("host") if server else "",
                    smtp_command=step,
                )
            )
    return out or None
