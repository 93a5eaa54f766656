"""The DNS TXT records that decide whether receivers accept a domain's email, read without any
DNS: DMARC policies (RFC 7489), SPF records (RFC 7208) and DKIM keys (RFC 6376).

Each ``parse_*`` function raises ``RecordError`` with a plain-language reason, because a
malformed record is something to tell the domain's owner, in words they can act on.
``dnscheck`` does the lookups and draws the conclusions.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Public suffixes of two labels that are common in email addresses. The organisational domain
# is the registrable domain: the last two labels, or three under one of these. This is a
# deliberate simplification of the Public Suffix List (RFC 7489 section 3.2), which is large and
# changes often: for a domain under a suffix not listed here, the parent is looked at instead.
TWO_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "net.uk", "ltd.uk", "plc.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "net.nz", "co.za", "org.za",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "com.br", "net.br", "org.br", "com.cn", "net.cn", "org.cn", "com.hk", "com.tw",
        "com.mx", "com.ar", "com.tr", "co.in", "co.il", "co.kr", "com.sg", "com.my",
    }
)  # fmt: skip


class RecordError(ValueError):
    """A record is malformed; the message says what is wrong with it."""


def organizational_domain(domain: str) -> str:
    """The registrable domain of ``domain`` (``mail.news.example.com`` -> ``example.com``)."""
    labels = domain.lower().strip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    """DMARC identifier alignment: strict (``s``) wants the same domain, relaxed (``r``) the same
    organisational domain."""
    a, b = domain.lower().strip("."), from_domain.lower().strip(".")
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def _tags(record: str, kind: str) -> list[tuple[str, str]]:
    """``name=value`` pairs separated by semicolons (DMARC and DKIM share this syntax)."""
    pairs: list[tuple[str, str]] = []
    for part in record.split(";"):
        if not part.strip():
            continue
        name, equals, value = part.partition("=")
        if not equals or not name.strip():
            raise RecordError(f"“{part.strip()}” is not a tag=value pair of a {kind} record")
        pairs.append((name.strip(), value.strip()))
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RecordError(f"the tag {repeated[0]}= appears more than once")
    return pairs


# --- DMARC ------------------------------------------------------------------------------------

_DMARC_START = re.compile(r"\s*v\s*=\s*dmarc1\b", re.IGNORECASE)
POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class Dmarc:
    record: str
    policy: str  # p=: none, quarantine or reject
    subdomain_policy: str  # sp=, or p= when absent
    adkim: str  # r (relaxed, the default) or s (strict)
    aspf: str
    rua: tuple[str, ...]
    pct: int


def is_dmarc(text: str) -> bool:
    """Whether a TXT record at ``_dmarc.<domain>`` means to be a DMARC record (others there are
    ignored, as receivers ignore them)."""
    return bool(_DMARC_START.match(text))


def parse_dmarc(text: str) -> Dmarc:
    pairs = _tags(text, "DMARC")
    if not pairs or pairs[0][0] != "v" or pairs[0][1] != "DMARC1":
        first = f"{pairs[0][0]}={pairs[0][1]}" if pairs else text.strip()
        if pairs and pairs[0][0].lower() == "v" and pairs[0][1][:6].upper() == "DMARC1":
            if len(pairs[0][1]) > 6:
                raise RecordError(f"the tags must be separated by semicolons (“{first}”)")
            raise RecordError(f"it must begin with v=DMARC1 exactly, not “{first}”")
        raise RecordError(f"it must begin with v=DMARC1, not “{first}”")
    tags = dict(pairs)
    policy = tags.get("p")
    if policy is None:
        raise RecordError("the policy tag p= is missing")
    for name in ("p", "sp"):
        if name in tags and tags[name].lower() not in POLICIES:
            raise RecordError(f"{name}={tags[name]} is not one of none, quarantine or reject")
    for name in ("adkim", "aspf"):
        if tags.get(name, "r").lower() not in ("r", "s"):
            raise RecordError(f"{name}={tags[name]} must be r (relaxed) or s (strict)")
    pct = tags.get("pct", "100")
    if not pct.isdigit() or int(pct) > 100:
        raise RecordError(f"pct={pct} must be a whole number from 0 to 100")
    rua = tuple(uri.strip() for uri in tags.get("rua", "").split(",") if uri.strip())
    return Dmarc(
        record=text,
        policy=policy.lower(),
        subdomain_policy=tags.get("sp", policy).lower(),
        adkim=tags.get("adkim", "r").lower(),
        aspf=tags.get("aspf", "r").lower(),
        rua=rua,
        pct=int(pct),
    )


# --- SPF --------------------------------------------------------------------------------------

_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_NEEDS_VALUE = frozenset({"include", "ip4", "ip6", "exists"})
# Mechanisms and modifiers that cost a DNS lookup (RFC 7208 section 4.6.4: at most 10).
LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_TERM = re.compile(r"([+\-~?]?)([a-z0-9]+)([:/].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class SpfTerm:
    qualifier: str  # + - ~ ?
    mechanism: str  # all include a mx ptr ip4 ip6 exists
    value: str = ""  # the domain or address after ":" (empty when absent)
    cidr: str = ""  # "/24", "/24//64" (a and mx), as written

    @property
    def result(self) -> str:
        return QUALIFIERS[self.qualifier]

    def __str__(self) -> str:
        qualifier = "" if self.qualifier == "+" else self.qualifier
        value = f":{self.value}" if self.value else ""
        return f"{qualifier}{self.mechanism}{value}{self.cidr}"


@dataclass(frozen=True)
class Spf:
    record: str
    terms: tuple[SpfTerm, ...]  # the mechanisms, in order
    redirect: str = ""  # redirect=<domain>


def is_spf(text: str) -> bool:
    """RFC 7208 section 4.5: a TXT record is an SPF record when it starts with ``v=spf1``
    followed by a space or nothing."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def parse_spf(text: str) -> Spf:
    terms: list[SpfTerm] = []
    redirect = ""
    for word in text.split()[1:]:
        name, equals, value = word.partition("=")
        if equals and re.fullmatch(r"[a-z][a-z0-9_.\-]*", name, re.IGNORECASE):
            if name.lower() == "redirect":
                if redirect:
                    raise RecordError("redirect= appears more than once")
                redirect = value.lower().rstrip(".")
            continue  # exp= and unknown modifiers change nothing here
        terms.append(parse_spf_term(word))
    return Spf(record=text, terms=tuple(terms), redirect=redirect)


def parse_spf_term(word: str) -> SpfTerm:
    match = _TERM.match(word)
    mechanism = match.group(2).lower() if match else ""
    if match is None or mechanism not in _MECHANISMS:
        raise RecordError(f"“{word}” is not an SPF mechanism")
    qualifier = match.group(1) or "+"
    rest = match.group(3) or ""
    value, cidr = "", rest
    if rest.startswith(":"):
        value, slash, tail = rest[1:].partition("/")
        cidr = slash + tail
    if mechanism in _NEEDS_VALUE and not value:
        raise RecordError(f"“{word}” needs a value after {mechanism}:")
    if mechanism == "all" and rest:
        raise RecordError(f"“{word}”: all takes no value")
    term = SpfTerm(qualifier, mechanism, value.rstrip(".") if value else "", cidr)
    if mechanism in ("ip4", "ip6"):
        _network(mechanism, value + cidr, word)
    elif cidr:
        cidr_lengths(term)  # a/24//64 and mx/24: raises when malformed
    return term


def _network(mechanism: str, text: str, word: str) -> IPNetwork:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise RecordError(f"“{word}” is not a valid {mechanism} address") from None
    if (network.version == 4) != (mechanism == "ip4"):
        raise RecordError(f"“{word}”: {mechanism} with an IPv{network.version} address")
    return network


def term_network(term: SpfTerm) -> IPNetwork:
    """The network of an ip4/ip6 mechanism (already validated by ``parse_spf_term``)."""
    return _network(term.mechanism, term.value + term.cidr, str(term))


def cidr_lengths(term: SpfTerm) -> tuple[int, int]:
    """The IPv4 and IPv6 prefix lengths of an ``a`` or ``mx`` mechanism (``a/24//64``)."""
    if term.mechanism not in ("a", "mx"):
        raise RecordError(f"“{term}”: only a and mx take a prefix length")
    match = re.fullmatch(r"(?:/(\d{1,2}))?(?://(\d{1,3}))?", term.cidr)
    four = int(match.group(1) or 32) if match else 33
    six = int(match.group(2) or 128) if match else 129
    if four > 32 or six > 128:
        raise RecordError(f"“{term}” has a malformed prefix length")
    return four, six


# --- DKIM -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DkimKey:
    record: str
    key_type: str  # k=: rsa (the default) or ed25519
    public_key: str  # p=, without spaces; empty means the key was revoked

    @property
    def revoked(self) -> bool:
        return not self.public_key


def is_dkim(text: str) -> bool:
    """Whether a TXT record at a selector's name means to be a DKIM key: it says v=DKIM1 or has a
    p= tag."""
    try:
        names = {name.lower() for name, _ in _tags(text, "DKIM")}
    except RecordError:
        return text.strip().lower().startswith("v=dkim1")
    return "v" in names or "p" in names


def parse_dkim(text: str) -> DkimKey:
    pairs = _tags(text, "DKIM key")
    tags = dict(pairs)
    if "v" in tags and (pairs[0][0] != "v" or tags["v"] != "DKIM1"):
        raise RecordError("v=DKIM1, when present, must be the first tag")
    if "p" not in tags:
        raise RecordError("the public key tag p= is missing")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        raise RecordError(f"k={tags['k']} is not a key type receivers know (rsa or ed25519)")
    key = re.sub(r"\s+", "", tags["p"])
    if key:
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise RecordError("the public key p= is not valid base64") from None
    return DkimKey(record=text, key_type=key_type, public_key=key)
