"""Is this service authorized to send for a domain? Asked after a dmarc_unauthorized bounce.

``check_domain`` reads three things over DNS and says, in plain language, what is missing and
exactly which record to publish:

- DMARC: the TXT record at ``_dmarc.<domain>``; for a subdomain without one, the record of its
  organisational domain (its ``sp=`` policy applies). The organisational domain is the last two
  labels, or three under a few well-known suffixes such as ``co.uk`` (``dnsrecords``): a
  simplification of the Public Suffix List.
- SPF: the record of the domain SPF is checked for. Receivers check SPF for the return path
  (the envelope sender), which is this service's bounce domain; when that is the From domain or
  one of its subdomains it is the one read, otherwise the From domain's own record is (what
  customers are told to edit). Does it authorize this service, that is the mechanisms of
  ``BOUNCEBACK_SPF_INCLUDE`` (or ``ip4:``/``ip6:`` of the sending IPs)? ``include:`` and
  ``redirect=`` are followed, and ``a`` and ``mx`` resolved, within RFC 7208's 10 lookups;
  ``ptr`` and ``exists`` are not evaluated (they never authorize here).
- DKIM: the key of ``BOUNCEBACK_DKIM_SELECTOR`` at ``<selector>._domainkey.<domain>``.

DMARC passes when SPF passes for a domain aligned with the From domain, or DKIM does (the
service signs with ``d=<From domain>``, aligned in either mode). Lookup failures (timeouts,
NXDOMAIN, SERVFAIL, refusals) and malformed records are findings, never exceptions.

The check itself keeps no state. ``CheckCache`` (a few minutes per process) and the
``dns_check`` job (``DnsCheckJob``), which stores the result on the alert, are the service's.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Alert
from bounceback.service.db.session import transaction
from bounceback.service.domain import dnsrecords as records
from bounceback.service.domain.dnsrecords import IPNetwork, RecordError, SpfTerm
from bounceback.service.settings import Settings

log = logging.getLogger(__name__)

DNS_CHECK = "dns_check"  # the job kind
MAX_LOOKUPS = 10  # RFC 7208 section 4.6.4
MAX_MX_NAMES = 10  # RFC 7208 section 4.6.4
TIMEOUT = 3.0  # seconds for one DNS question
BUDGET = 20.0  # seconds for a whole check
CACHE_SECONDS = 300.0


# --- DNS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the DNS said about one name: ``ok`` (with values), ``nxdomain`` (no such name),
    ``nodata`` (the name exists, without records of the type), ``timeout`` or ``error``."""

    name: str
    status: str
    values: tuple[str, ...] = ()
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("timeout", "error")

    @property
    def why(self) -> str:
        if self.status == "timeout":
            return self.detail or "the DNS server did not answer in time"
        return self.detail or "the DNS server failed to answer"


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    text = text.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", text)
    if match:
        return match.group(1), int(match.group(2) or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


class Lookups:
    """The DNS questions of one check: the configured servers (or the system's resolver), one
    time budget for the whole check, and every question asked at most once."""

    def __init__(
        self, servers: tuple[str, ...], timeout: float = TIMEOUT, budget: float = BUDGET
    ) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + budget
        self.asked = 0
        self._answers: dict[tuple[str, str], Answer] = {}
        self._problem = ""
        self._resolver: dns.resolver.Resolver | None = None
        try:
            self._resolver = _resolver(servers)
        except (ValueError, dns.exception.DNSException) as exc:
            self._problem = f"no DNS resolver could be set up ({exc})"

    def txt(self, name: str) -> Answer:
        return self.query(name, "TXT")

    def query(self, name: str, rdtype: str) -> Answer:
        key = (name.lower(), rdtype)
        if key not in self._answers:
            self._answers[key] = self._ask(name, rdtype)
        return self._answers[key]

    def _ask(self, name: str, rdtype: str) -> Answer:
        if self._resolver is None:
            return Answer(name, "error", detail=self._problem)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return Answer(name, "timeout", detail="the check ran out of time")
        self.asked += 1
        try:
            answer = self._resolver.resolve(
                name,
                rdtype,
                lifetime=min(self.timeout, remaining),
                search=False,
                raise_on_no_answer=False,
            )
        except dns.resolver.NXDOMAIN:
            return Answer(name, "nxdomain")
        except dns.exception.Timeout:
            return Answer(name, "timeout")
        except dns.resolver.NoNameservers as exc:
            return Answer(name, "error", detail=_refusal(exc))
        except dns.exception.DNSException as exc:
            return Answer(name, "error", detail=f"the DNS lookup failed: {exc}")
        if answer.rrset is None:
            return Answer(name, "nodata")
        return Answer(name, "ok", tuple(_value(rdata) for rdata in answer.rrset))


def _resolver(servers: tuple[str, ...]) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    if servers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_server(server)) for server in servers
        ]
    else:  # the system's (/etc/resolv.conf), as dnspython's default resolver knows it
        system = dns.resolver.get_default_resolver()
        resolver.nameservers = list(system.nameservers)
        resolver.port = system.port
    return resolver  # and no cache: every check reads what is published now


def dns_disabled(settings: Settings) -> bool:
    """``BOUNCEBACK_DNS_SERVERS=off``: no DNS checks (a machine without DNS, the tests)."""
    return [server.lower() for server in settings.dns_servers] == ["off"]


def _refusal(exc: dns.resolver.NoNameservers) -> str:
    """The SERVFAIL or REFUSED in dnspython's message, in words."""
    codes = re.findall(r"answered (\w+)", str(exc))
    if codes:
        return f"the DNS server answered {codes[-1]}"
    return "the DNS server failed to answer"


def _value(rdata: Any) -> str:
    strings = getattr(rdata, "strings", None)
    if strings is not None:  # TXT: one record may be several strings, read as one
        return b"".join(strings).decode("utf-8", "replace")
    exchange = getattr(rdata, "exchange", None)
    if exchange is not None:  # MX
        return str(exchange.to_text(omit_final_dot=True)).lower()
    return str(rdata.to_text())


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Something missing or wrong, and the record that fixes it (name and TXT value)."""

    text: str
    record_name: str = ""
    record_value: str = ""


@dataclass(frozen=True)
class DmarcResult:
    status: str  # found, missing, malformed, unknown (could not be read)
    name: str  # the _dmarc name the record came from, or the one asked
    record: str = ""
    policy: str = ""  # what applies to this domain (sp= when inherited)
    subdomain_policy: str = ""
    adkim: str = "r"
    aspf: str = "r"
    rua: tuple[str, ...] = ()
    inherited: bool = False  # found at the organisational domain
    problem: str = ""


@dataclass(frozen=True)
class SpfResult:
    status: str  # pass, not_authorized, missing, invalid, unknown, unconfigured
    domain: str  # the domain whose record was read
    record: str = ""
    needed: str = ""  # the mechanisms that authorize this service
    suggested: str = ""  # the whole record to publish
    lookups: int = 0
    problem: str = ""


@dataclass(frozen=True)
class DkimResult:
    status: str  # found, missing, revoked, malformed, unknown, unconfigured
    selector: str
    name: str  # <selector>._domainkey.<domain>
    record: str = ""
    problem: str = ""


@dataclass(frozen=True)
class DomainCheck:
    domain: str
    return_path_domain: str
    dmarc: DmarcResult
    spf: SpfResult
    dkim: DkimResult
    spf_aligned: bool
    dkim_aligned: bool
    findings: tuple[Finding, ...]

    @property
    def authorized(self) -> bool:
        """DMARC passes: SPF or DKIM passes for a domain aligned with the From domain."""
        return self.spf_aligned or self.dkim_aligned

    @property
    def complete(self) -> bool:
        """Every record could be read (no timeout or server failure)."""
        return "unknown" not in (self.dmarc.status, self.spf.status, self.dkim.status)

    @property
    def summary(self) -> str:
        if self.authorized:
            ways = [f"DKIM (selector {self.dkim.selector})"] if self.dkim_aligned else []
            ways += [f"SPF (return path {self.return_path_domain})"] if self.spf_aligned else []
            return (
                f"This service is authorized to send for {self.domain}: "
                f"{' and '.join(ways)} pass aligned with it."
            )
        policy = f" Its DMARC policy is {self.dmarc.policy}." if self.dmarc.policy else ""
        unread = "" if self.complete else " Some records could not be read."
        return (
            f"This service is not authorized to send for {self.domain}: neither SPF nor DKIM "
            f"passes aligned with it.{policy}{unread}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the alert's data."""
        return {
            **dataclasses.asdict(self),
            "authorized": self.authorized,
            "complete": self.complete,
            "summary": self.summary,
        }


# --- DMARC ------------------------------------------------------------------------------------


def _check_dmarc(dns_: Lookups, domain: str) -> DmarcResult:
    result = _dmarc_at(dns_, domain)
    organisational = records.organizational_domain(domain)
    if result.status != "missing" or organisational == domain:
        return result
    parent = _dmarc_at(dns_, organisational)
    if parent.status == "missing":
        return result
    return dataclasses.replace(parent, policy=parent.subdomain_policy, inherited=True)


def _dmarc_at(dns_: Lookups, domain: str) -> DmarcResult:
    name = f"_dmarc.{domain}"
    answer = dns_.txt(name)
    if answer.failed:
        return DmarcResult("unknown", name, problem=answer.why)
    found = [text for text in answer.values if records.is_dmarc(text)]
    if not found:
        return DmarcResult("missing", name)
    if len(found) > 1:
        problem = f"there are {len(found)} DMARC records, and receivers ignore all of them"
        return DmarcResult("malformed", name, record=found[0], problem=problem)
    try:
        parsed = records.parse_dmarc(found[0])
    except RecordError as exc:
        return DmarcResult("malformed", name, record=found[0], problem=str(exc))
    return DmarcResult(
        "found",
        name,
        record=parsed.record,
        policy=parsed.policy,
        subdomain_policy=parsed.subdomain_policy,
        adkim=parsed.adkim,
        aspf=parsed.aspf,
        rua=parsed.rua,
    )


# --- SPF --------------------------------------------------------------------------------------


class _Abort(Exception):
    """SPF evaluation ends with ``permerror`` (the record is broken) or ``temperror``."""

    def __init__(self, result: str, problem: str) -> None:
        super().__init__(problem)
        self.result = result
        self.problem = problem


class _SpfEvaluation:
    """RFC 7208's check_host for one thing this service sends from: an ``include:`` domain or an
    address range. Counts lookups; only what can be told without the message is evaluated."""

    def __init__(self, dns_: Lookups, target: SpfTerm) -> None:
        self.dns = dns_
        self.target = target
        self.network = records.term_network(target) if target.mechanism in ("ip4", "ip6") else None
        self.lookups = 0

    def check_host(self, domain: str) -> str:
        spf = load_spf(self.dns, domain)
        if spf is None:
            return "none"
        for term in spf.terms:
            if term.mechanism in records.LOOKUP_MECHANISMS:
                self._count()
            if self._matches(term, domain):
                return term.result
        if spf.redirect:
            self._count()
            result = self.check_host(spf.redirect)
            if result == "none":
                raise _Abort("permerror", f"redirect={spf.redirect} names no SPF record")
            return result
        return "neutral"

    def _count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _Abort(
                "permerror",
                f"evaluating it takes more than {MAX_LOOKUPS} DNS lookups (include, a, mx, "
                "ptr, exists, redirect), the most RFC 7208 allows",
            )

    def _matches(self, term: SpfTerm, domain: str) -> bool:
        mechanism = term.mechanism
        if mechanism == "all":
            return True
        if mechanism == "include":
            return self._include(term.value)
        if mechanism in ("ip4", "ip6"):
            return self.network is not None and _covers(records.term_network(term), self.network)
        if mechanism in ("a", "mx") and self.network is not None and "%" not in term.value:
            return self._addresses_match(term, term.value or domain)
        return False  # ptr, exists and macros: not evaluated (they authorize nothing here)

    def _include(self, target_domain: str) -> bool:
        if self.target.mechanism == "include" and target_domain.lower() == self.target.value:
            return True  # this service's own include: what it holds is the operator's business
        if "%" in target_domain:
            return False  # a macro needs the message: not evaluated
        result = self.check_host(target_domain)
        if result == "none":
            raise _Abort("permerror", f"include:{target_domain} names no SPF record")
        return result == "pass"

    def _addresses_match(self, term: SpfTerm, name: str) -> bool:
        assert self.network is not None
        four, six = records.cidr_lengths(term)
        hosts = [name]
        if term.mechanism == "mx":
            hosts = [host for host in self._answer(name, "MX") if host][:MAX_MX_NAMES]
        for host in hosts:
            for rdtype, length in (("A", four), ("AAAA", six)):
                for address in self._answer(host, rdtype):
                    network = ipaddress.ip_network(f"{address}/{length}", strict=False)
                    if _covers(network, self.network):
                        return True
        return False

    def _answer(self, name: str, rdtype: str) -> tuple[str, ...]:
        answer = self.dns.query(name, rdtype)
        if answer.failed:
            raise _Abort("temperror", f"{rdtype} of {name} could not be read: {answer.why}")
        return answer.values


def _covers(network: IPNetwork, target: IPNetwork) -> bool:
    if isinstance(network, ipaddress.IPv4Network) and isinstance(target, ipaddress.IPv4Network):
        return target.subnet_of(network)
    if isinstance(network, ipaddress.IPv6Network) and isinstance(target, ipaddress.IPv6Network):
        return target.subnet_of(network)
    return False  # IPv4 and IPv6 never cover each other


def load_spf(dns_: Lookups, domain: str) -> records.Spf | None:
    """The SPF record of ``domain``; None when it has none. Raises ``_Abort``."""
    answer = dns_.txt(domain)
    if answer.failed:
        raise _Abort("temperror", f"the SPF record of {domain} could not be read: {answer.why}")
    found = [text for text in answer.values if records.is_spf(text)]
    if not found:
        return None
    if len(found) > 1:
        raise _Abort("permerror", f"{domain} publishes {len(found)} SPF records instead of one")
    try:
        return records.parse_spf(found[0])
    except RecordError as exc:
        raise _Abort("permerror", f"the SPF record of {domain} is malformed: {exc}") from None


def authorizing_terms(settings: Settings) -> tuple[tuple[SpfTerm, ...], str]:
    """The SPF mechanisms that authorize this service, and what is wrong with the settings."""
    if settings.spf_include.strip():
        terms = []
        for word in settings.spf_include.split():
            text = word if ":" in word else f"include:{word}"  # a bare domain means include:
            try:
                term = records.parse_spf_term(text)
            except RecordError as exc:
                return (), f"BOUNCEBACK_SPF_INCLUDE: {exc}"
            if term.mechanism not in ("include", "ip4", "ip6") or term.qualifier != "+":
                return (), f"BOUNCEBACK_SPF_INCLUDE: use include:, ip4: or ip6:, not “{word}”"
            terms.append(dataclasses.replace(term, value=term.value.lower()))
        return tuple(terms), ""
    terms = []
    for address in settings.sending_ips:
        try:
            version = ipaddress.ip_address(address).version
        except ValueError:
            return (), f"BOUNCEBACK_SENDING_IPS: “{address}” is not an IP address"
        terms.append(SpfTerm("+", f"ip{version}", address))
    if not terms:
        return (), "neither BOUNCEBACK_SPF_INCLUDE nor BOUNCEBACK_SENDING_IPS is set"
    return tuple(terms), ""


def _check_spf(dns_: Lookups, domain: str, settings: Settings) -> SpfResult:
    terms, problem = authorizing_terms(settings)
    needed = " ".join(str(term) for term in terms)
    if not terms:
        return SpfResult("unconfigured", domain, problem=problem)
    try:
        spf = load_spf(dns_, domain)
    except _Abort as abort:
        status = "unknown" if abort.result == "temperror" else "invalid"
        return SpfResult(status, domain, needed=needed, problem=abort.problem)
    if spf is None:
        return SpfResult("missing", domain, needed=needed, suggested=f"v=spf1 {needed} ~all")
    missing: list[SpfTerm] = []
    lookups = 0
    for term in terms:
        evaluation = _SpfEvaluation(dns_, term)
        try:
            result = evaluation.check_host(domain)
        except _Abort as abort:
            status = "unknown" if abort.result == "temperror" else "invalid"
            return SpfResult(
                status,
                domain,
                spf.record,
                needed,
                lookups=evaluation.lookups,
                problem=abort.problem,
            )
        lookups = max(lookups, evaluation.lookups)
        if result != "pass":
            missing.append(term)
    if not missing:
        return SpfResult("pass", domain, spf.record, needed, lookups=lookups)
    add = " ".join(str(term) for term in missing)
    return SpfResult(
        "not_authorized",
        domain,
        spf.record,
        add,
        suggested=suggest_spf(spf.record, add),
        lookups=lookups,
    )


def suggest_spf(record: str, add: str) -> str:
    """``record`` with ``add`` placed before its ``all`` or ``redirect=`` (where mechanisms are
    still read), or at its end."""
    words = record.split()
    at = len(words)
    for index, word in enumerate(words[1:], start=1):
        if word.lstrip("+-~?").lower() == "all" or word.lower().startswith("redirect="):
            at = index
            break
    return " ".join([*words[:at], add, *words[at:]])


# --- DKIM -------------------------------------------------------------------------------------


def _check_dkim(dns_: Lookups, domain: str, selector: str) -> DkimResult:
    selector = selector.strip().lower()
    if not selector:
        return DkimResult("unconfigured", "", "", problem="BOUNCEBACK_DKIM_SELECTOR is not set")
    name = f"{selector}._domainkey.{domain}"
    answer = dns_.txt(name)
    if answer.failed:
        return DkimResult("unknown", selector, name, problem=answer.why)
    found = [text for text in answer.values if records.is_dkim(text)]
    if not found:
        return DkimResult("missing", selector, name)
    try:
        key = records.parse_dkim(found[0])
    except RecordError as exc:
        return DkimResult("malformed", selector, name, found[0], problem=str(exc))
    if key.revoked:
        return DkimResult("revoked", selector, name, found[0])
    return DkimResult("found", selector, name, found[0])


# --- the check --------------------------------------------------------------------------------

_DOMAIN = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}")


def normalize_domain(domain: str) -> str:
    """The domain in lower case ASCII (IDNA), or "" when it is not a domain name."""
    text = domain.strip().strip(".").lower()
    try:
        text = dns.name.from_text(text).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return ""
    return text if _DOMAIN.fullmatch(text) else ""


def check_domain(
    domain: str, settings: Settings, *, timeout: float = TIMEOUT, budget: float = BUDGET
) -> DomainCheck:
    """What DNS says about this service sending for ``domain``, and what to publish."""
    name = normalize_domain(domain)
    return_path = settings.bounce_domains[0].lower() if settings.bounce_domains else ""
    if not name or dns_disabled(settings):
        problem = (
            f"“{domain}” is not a domain name"
            if not name
            else "DNS checks are turned off (BOUNCEBACK_DNS_SERVERS=off)"
        )
        return DomainCheck(
            domain,
            return_path,
            DmarcResult("unknown", "", problem=problem),
            SpfResult("unknown", "", problem=problem),
            DkimResult("unknown", settings.dkim_selector, "", problem=problem),
            spf_aligned=False,
            dkim_aligned=False,
            findings=(Finding(f"{problem}: nothing was looked up."),),
        )
    lookups = Lookups(settings.dns_servers, timeout, budget)
    dmarc = _check_dmarc(lookups, name)
    # Receivers check SPF for the return path; when that cannot align, read the From domain's.
    spf_domain = return_path if return_path and records.aligned(return_path, name, "r") else name
    spf = _check_spf(lookups, spf_domain, settings)
    dkim = _check_dkim(lookups, name, settings.dkim_selector)
    spf_aligned = (
        spf.status == "pass"
        and spf_domain == return_path
        and records.aligned(return_path, name, dmarc.aspf)
    )
    dkim_aligned = dkim.status == "found"
    check = DomainCheck(name, return_path, dmarc, spf, dkim, spf_aligned, dkim_aligned, ())
    return dataclasses.replace(check, findings=tuple(findings(check)))


# --- findings ---------------------------------------------------------------------------------


def findings(check: DomainCheck) -> list[Finding]:
    """Every problem, with the record that fixes it; nothing when all is in place."""
    found = [*_dmarc_findings(check), *_spf_findings(check), *_dkim_findings(check)]
    if not check.authorized:
        found += _alignment_findings(check)
    return found


def _dmarc_findings(check: DomainCheck) -> list[Finding]:
    dmarc, domain = check.dmarc, check.domain
    if dmarc.status == "unknown":
        return [
            Finding(
                f"The DMARC record of {domain} ({dmarc.name}) could not be read: {dmarc.problem}. "
                "Check that the domain's DNS servers answer, then check again."
            )
        ]
    if dmarc.status == "missing":
        organisational = records.organizational_domain(domain)
        looked = f"_dmarc.{domain}" + (
            f" and _dmarc.{organisational}" if organisational != domain else ""
        )
        return [
            Finding(
                f"{domain} publishes no DMARC record (looked up {looked}). Large mailbox "
                "providers such as Gmail and Yahoo want one from bulk senders. Publish a TXT "
                f"record at _dmarc.{organisational}:",
                f"_dmarc.{organisational}",
                f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{organisational}",
            )
        ]
    if dmarc.status == "malformed":
        return [
            Finding(
                f"The DMARC record at {dmarc.name} is malformed: {dmarc.problem}. Receivers "
                "ignore it. Replace it with:",
                dmarc.name,
                _repaired_dmarc(dmarc.record),
            )
        ]
    return []


def _repaired_dmarc(record: str) -> str:
    """A valid record keeping what can be read of the broken one (its policy, its reports)."""
    policy = re.search(r"\bp\s*=\s*(none|quarantine|reject)\b", record, re.IGNORECASE)
    rua = re.search(r"\brua\s*=\s*([^;\s]+)", record, re.IGNORECASE)
    text = f"v=DMARC1; p={policy.group(1).lower() if policy else 'none'}"
    return text + (f"; rua={rua.group(1)}" if rua else "")


def _spf_findings(check: DomainCheck) -> list[Finding]:
    spf = check.spf
    domain = spf.domain
    if spf.status == "missing":
        return [
            Finding(
                f"{domain} has no SPF record, so no receiver knows this service may send for "
                f"it. Publish a TXT record at {domain}:",
                domain,
                spf.suggested,
            )
        ]
    if spf.status == "not_authorized":
        return [
            Finding(
                f"The SPF record of {domain} does not authorize this service. Add "
                f"{spf.needed} to it, before its “all”:",
                domain,
                spf.suggested,
            )
        ]
    if spf.status == "invalid":
        return [
            Finding(
                f"The SPF record of {domain} is broken: {spf.problem}. Receivers treat it as an "
                "error (permerror), so SPF fails for every sender. Fix it (remove includes that "
                "are no longer used, merge duplicate records, replace includes by ip4:/ip6:) "
                f"and make sure it contains {spf.needed}."
            )
        ]
    if spf.status == "unknown":
        return [
            Finding(
                f"The SPF record of {domain} could not be read: {spf.problem}. Check that the "
                "domain's DNS servers answer, then check again."
            )
        ]
    if spf.status == "unconfigured":
        return [
            Finding(
                "This service cannot tell which SPF mechanism authorizes it "
                f"({spf.problem}): its operator must set BOUNCEBACK_SPF_INCLUDE."
            )
        ]
    return []


def _dkim_findings(check: DomainCheck) -> list[Finding]:
    dkim, domain = check.dkim, check.domain
    record = f"v=DKIM1; k=rsa; p=<the public key of selector {dkim.selector}>"
    if dkim.status == "missing":
        return [
            Finding(
                f"{domain} publishes no DKIM key for the selector {dkim.selector} this service "
                f"signs with, so DKIM fails. Publish a TXT record at {dkim.name}:",
                dkim.name,
                record,
            )
        ]
    if dkim.status == "revoked":
        return [
            Finding(
                f"The DKIM key at {dkim.name} is revoked (its p= is empty). Publish the current "
                "key:",
                dkim.name,
                record,
            )
        ]
    if dkim.status == "malformed":
        return [
            Finding(
                f"The DKIM key at {dkim.name} is malformed: {dkim.problem}. Replace it with:",
                dkim.name,
                record,
            )
        ]
    if dkim.status == "unknown":
        return [
            Finding(
                f"The DKIM key at {dkim.name} could not be read: {dkim.problem}. Check that the "
                "domain's DNS servers answer, then check again."
            )
        ]
    if dkim.status == "unconfigured":
        return [
            Finding(
                "This service has no DKIM selector configured (BOUNCEBACK_DKIM_SELECTOR), so "
                f"DKIM cannot pass for {domain}: its operator must set up DKIM signing."
            )
        ]
    return []


def _alignment_findings(check: DomainCheck) -> list[Finding]:
    """Why SPF cannot make DMARC pass, even once the record is right."""
    domain, return_path = check.domain, check.return_path_domain
    if not return_path or check.dkim_aligned:
        return []
    if not records.aligned(return_path, domain, "r"):
        return [
            Finding(
                f"SPF cannot make DMARC pass for {domain}: this service's return path is at "
                f"{return_path}, so receivers check SPF for {return_path}, which is not "
                f"{domain} or one of its subdomains. DMARC passes through DKIM: publish the "
                "DKIM key."
            )
        ]
    if check.dmarc.aspf == "s" and return_path != domain:
        return [
            Finding(
                f"The DMARC record of {domain} asks for strict SPF alignment (aspf=s), and this "
                f"service's return path is at {return_path}, not {domain} itself: SPF cannot "
                "make DMARC pass. Publish the DKIM key, or relax it to aspf=r."
            )
        ]
    return []


# --- the service: a cache and the job ---------------------------------------------------------


class CheckCache:
    """Recent checks per process, so a burst of DMARC refusals for one domain asks DNS once.
    Checks that could not read every record are not kept: the next one tries again."""

    def __init__(
        self,
        check: Callable[[str, Settings], DomainCheck] = check_domain,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1000,
    ) -> None:
        self._check = check
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._entries: dict[tuple[Any, ...], tuple[float, DomainCheck]] = {}
        self._lock = threading.Lock()

    def get(self, domain: str, settings: Settings) -> DomainCheck:
        key = (
            domain.strip().strip(".").lower(),
            settings.spf_include,
            settings.dkim_selector,
            settings.dns_servers,
            settings.sending_ips,
            settings.bounce_domains[:1],
        )
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > self._clock():
                return hit[1]
        result = self._check(domain, settings)  # outside the lock: DNS may take seconds
        if result.complete:
            with self._lock:
                now = self._clock()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._max:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = (now + self._ttl, result)
        return result


def report_section(check: DomainCheck, checked_at: datetime) -> str:
    """The text appended to the alert's body."""
    when = checked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"DNS check of {check.domain} ({when}): {check.summary}"]
    for finding in check.findings:
        lines.append(f"- {finding.text}")
        if finding.record_value:
            lines.append(f'  {finding.record_name} TXT "{finding.record_value}"')
    return "\n\n" + "\n".join(lines)


def record_on_alert(
    session: Session,
    account_id: int,
    alert_id: int,
    check: DomainCheck,
    checked_at: datetime | None = None,
) -> bool:
    """Store the check in the alert's ``data["dns_check"]`` and its findings in the body
    (replacing an earlier check's). False when the account has no such alert."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.account_id != account_id:
        return False
    checked_at = checked_at or datetime.now(UTC)
    previous = str((alert.data.get("dns_check") or {}).get("section", ""))
    body = alert.body.replace(previous, "") if previous else alert.body
    section = report_section(check, checked_at)
    alert.body = body + section
    alert.data = {
        **alert.data,
        "dns_check": {**check.as_dict(), "checked_at": checked_at.isoformat(), "section": section},
    }
    return True


class DnsCheckJob:
    """The ``dns_check`` job: {account_id, domain, alert_id}. DNS is asked outside any database
    transaction; the result is written to the alert afterwards."""

    def __init__(self, settings: Settings, cache: CheckCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or CheckCache()

    def __call__(self, factory: sessionmaker[Session], payload: dict[str, Any]) -> None:
        if dns_disabled(self.settings):
            return  # the alert keeps its general advice
        account_id, alert_id = int(payload["account_id"]), int(payload["alert_id"])
        check = self.cache.get(str(payload["domain"]), self.settings)
        with transaction(factory) as session:
            if not record_on_alert(session, account_id, alert_id, check):
                log.warning("dns_check: account %s has no alert %s", account_id, alert_id)
