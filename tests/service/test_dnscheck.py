"""The DNS check of a DMARC alert's domain, against a real DNS server on loopback (dnsmasq)
serving test zones; and through the service: a DMARC refusal, its alert, the worker's check,
the findings in the alert, the API and the dashboard (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.app import create_app
from bounceback.service.db.models import Alert, Job
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, dnscheck, dnsrecords, intake
from bounceback.service.domain.dnscheck import CheckCache, DomainCheck, check_domain
from bounceback.service.settings import Settings, load
from bounceback.service.worker import build_handlers, run_until_idle

from api_support import make_settings, session_creds
from builders import account, admin, delivery, dsn, return_path
from dns_support import DnsServer, Zones, dns_server, dnsmasq_missing, silent_server

INCLUDE = "include:spf.bounceback.test"
KEY = base64.b64encode(bytes(range(256)) + bytes(38)).decode()  # 392 characters: 2 strings
DKIM = f"v=DKIM1; k=rsa; p={KEY}"

ZONES = Zones(
    txt={
        # p=reject, an SPF record without this service, no DKIM key
        "_dmarc.reject.test": ["v=DMARC1; p=reject; rua=mailto:dmarc@reject.test"],
        "reject.test": ["v=spf1 include:_spf.mailhost.test -all", "google-site-verification=x"],
        "_spf.mailhost.test": ["v=spf1 ip4:198.51.100.0/24 -all"],
        # everything in place
        "_dmarc.ready.test": ["v=DMARC1; p=reject; adkim=s; aspf=s"],
        "ready.test": [f"v=spf1 mx {INCLUDE} -all"],
        "bb1._domainkey.ready.test": [DKIM],
        # a subdomain under its organisational domain's record
        "_dmarc.parent.test": ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@parent.test"],
        "news.parent.test": [f"v=spf1 {INCLUDE} ~all"],
        "bb1._domainkey.news.parent.test": [DKIM],
        # malformed DMARC records
        "_dmarc.typo.test": ["v=DMARC1; p=rejct; rua=mailto:d@typo.test"],
        "_dmarc.nosemi.test": ["v=DMARC1 p=reject"],
        "_dmarc.lower.test": ["v=dmarc1; p=quarantine"],
        "_dmarc.twice.test": ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
        "_dmarc.nopolicy.test": ["v=DMARC1; rua=mailto:d@nopolicy.test"],
        # SPF: a chain of include and redirect, and broken records
        "chain.test": ["v=spf1 include:one.chain.test -all"],
        "one.chain.test": ["v=spf1 ip4:203.0.113.0/24 include:two.chain.test ~all"],
        "two.chain.test": ["v=spf1 redirect=three.chain.test"],
        "three.chain.test": [f"v=spf1 {INCLUDE} -all"],
        "loop.test": ["v=spf1 include:loop.test -all"],
        "dangling.test": ["v=spf1 include:gone.test -all"],
        "twospf.test": ["v=spf1 -all", f"v=spf1 {INCLUDE} ~all"],
        "badspf.test": [f"v=spf1 {INCLUDE} ip4:999.1.1.1 -all"],
        "allfirst.test": [f"v=spf1 ~all {INCLUDE}"],
        "failinclude.test": ["v=spf1 -include:spf.bounceback.test ~all"],
        # SPF by address: ip4, a (an IPv6 address), mx
        "ips.test": ["v=spf1 ip4:192.0.2.0/24 a:relay.ips.test -all"],
        "mx.ips.test": ["v=spf1 mx -all"],
        "half.test": ["v=spf1 ip4:192.0.2.10 -all"],
        # SPF alignment through the return path
        "_dmarc.aligned.test": ["v=DMARC1; p=reject"],
        "bounces.aligned.test": [f"v=spf1 {INCLUDE} -all"],
        "_dmarc.strict.test": ["v=DMARC1; p=reject; aspf=s"],
        "bounces.strict.test": [f"v=spf1 {INCLUDE} -all"],
        # DKIM problems
        "bb1._domainkey.revoked.test": ["v=DKIM1; p="],
        "bb1._domainkey.badkey.test": ["v=DKIM1; k=rsa; p=not base64!"],
        # the service test: the From domain of builders.dsn
        "_dmarc.acme.example": ["v=DMARC1; p=reject"],
        "acme.example": ["v=spf1 ip4:203.0.113.5 -all"],
    },
    hosts={"relay.ips.test": ["2001:db8::25"], "mail.ips.test": ["192.0.2.10", "2001:db8::25"]},
    mx={"mx.ips.test": ["mail.ips.test"]},
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    missing = dnsmasq_missing()
    if missing:
        pytest.skip(missing)
    with dns_server(ZONES, tmp_path_factory.mktemp("dns")) as running:
        yield running


def _settings(server: DnsServer | str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": "x",
        "bounce_domains": ("bounces.bounceback.test",),
        "spf_include": INCLUDE,
        "dkim_selector": "bb1",
        "dns_servers": (server if isinstance(server, str) else server.address,),
    }
    values.update(overrides)
    return load({}, **values)


def _check(server: DnsServer, domain: str, **overrides: Any) -> DomainCheck:
    return check_domain(domain, _settings(server, **overrides))


def _texts(check: DomainCheck) -> str:
    return "\n".join(f.text for f in check.findings)


def _record(check: DomainCheck, name: str) -> str:
    values = [f.record_value for f in check.findings if f.record_name == name]
    assert len(values) == 1, f"one finding to publish at {name}: {check.findings}"
    return values[0]


# --- the cases of the issue -------------------------------------------------------------------


def test_reject_policy_without_include_or_dkim_is_not_authorized(server: DnsServer) -> None:
    check = _check(server, "Reject.TEST.")
    assert check.domain == "reject.test"
    assert not check.authorized and check.complete
    assert check.dmarc.status == "found" and check.dmarc.policy == "reject"
    assert check.dmarc.rua == ("mailto:dmarc@reject.test",)
    assert check.spf.status == "not_authorized" and check.spf.lookups == 1
    assert check.dkim.status == "missing"
    text = _texts(check)
    assert f"Add {INCLUDE} to it" in text
    assert _record(check, "reject.test") == (
        f"v=spf1 include:_spf.mailhost.test {INCLUDE} -all"  # before its -all
    )
    assert "no DKIM key for the selector bb1" in text
    assert _record(check, "bb1._domainkey.reject.test").startswith("v=DKIM1; k=rsa; p=")
    # The return path (bounces.bounceback.test) cannot align with reject.test: DKIM must pass.
    assert "SPF cannot make DMARC pass for reject.test" in text
    assert "not authorized" in check.summary and "reject" in check.summary


def test_a_domain_fully_set_up_is_authorized(server: DnsServer) -> None:
    check = _check(server, "ready.test")
    assert check.authorized and check.complete
    assert check.dkim_aligned and not check.spf_aligned  # the return path is not ready.test
    assert check.spf.status == "pass" and check.spf.lookups == 2  # mx, then the include
    assert check.dkim.status == "found" and KEY in check.dkim.record  # read across 2 strings
    assert check.dmarc.adkim == "s" and check.dmarc.aspf == "s"
    assert check.findings == ()
    assert check.summary.startswith("This service is authorized to send for ready.test")


def test_a_subdomain_uses_its_organisational_domains_dmarc_record(server: DnsServer) -> None:
    check = _check(server, "news.parent.test")
    assert check.dmarc.status == "found" and check.dmarc.inherited
    assert check.dmarc.name == "_dmarc.parent.test"
    assert check.dmarc.policy == "quarantine"  # sp= applies to subdomains
    assert check.authorized and check.findings == ()
    deeper = _check(server, "a.b.parent.test")
    assert deeper.dmarc.name == "_dmarc.parent.test" and deeper.dmarc.inherited
    assert not deeper.authorized


def test_a_domain_that_does_not_exist(server: DnsServer) -> None:
    lookups = dnscheck.Lookups((server.address,))
    assert lookups.txt("nowhere.test").status == "nxdomain"
    check = _check(server, "nowhere.test")
    assert not check.authorized and check.complete  # NXDOMAIN is an answer
    assert (check.dmarc.status, check.spf.status, check.dkim.status) == (
        "missing",
        "missing",
        "missing",
    )
    assert _record(check, "nowhere.test") == f"v=spf1 {INCLUDE} ~all"
    assert _record(check, "_dmarc.nowhere.test") == (
        "v=DMARC1; p=none; rua=mailto:dmarc-reports@nowhere.test"
    )
    assert _record(check, "bb1._domainkey.nowhere.test")
    sub = _check(server, "mail.nowhere.test")
    assert "looked up _dmarc.mail.nowhere.test and _dmarc.nowhere.test" in _texts(sub)


@pytest.mark.parametrize(
    ("domain", "problem", "repaired"),
    [
        ("typo.test", "p=rejct is not one of none", "v=DMARC1; p=none; rua=mailto:d@typo.test"),
        ("nosemi.test", "separated by semicolons", "v=DMARC1; p=reject"),
        ("lower.test", "v=DMARC1 exactly", "v=DMARC1; p=quarantine"),
        ("twice.test", "2 DMARC records", ""),  # either of the two, as DNS orders them
        ("nopolicy.test", "p= is missing", "v=DMARC1; p=none; rua=mailto:d@nopolicy.test"),
    ],
)
def test_a_malformed_dmarc_record(
    server: DnsServer, domain: str, problem: str, repaired: str
) -> None:
    check = _check(server, domain)
    assert check.dmarc.status == "malformed", check.dmarc
    assert problem in check.dmarc.problem
    assert f"The DMARC record at _dmarc.{domain} is malformed" in _texts(check)
    fix = _record(check, f"_dmarc.{domain}")
    assert fix == repaired or not repaired
    assert dnsrecords.parse_dmarc(fix).policy in dnsrecords.POLICIES


def test_an_spf_include_chain_is_followed(server: DnsServer) -> None:
    check = _check(server, "chain.test")
    # include:one -> include:two -> redirect=three -> include:spf.bounceback.test
    assert check.spf.status == "pass" and check.spf.lookups == 4
    assert not any(f.record_name == "chain.test" for f in check.findings)


@pytest.mark.parametrize(
    ("domain", "status", "problem"),
    [
        ("loop.test", "invalid", "more than 10 DNS lookups"),
        ("dangling.test", "invalid", "include:gone.test names no SPF record"),
        ("twospf.test", "invalid", "publishes 2 SPF records"),
        ("badspf.test", "invalid", "“ip4:999.1.1.1” is not a valid ip4 address"),
        ("allfirst.test", "not_authorized", ""),  # ~all matches before the include
        ("failinclude.test", "not_authorized", ""),  # -include: fails what it matches
    ],
)
def test_spf_records_that_do_not_authorize(
    server: DnsServer, domain: str, status: str, problem: str
) -> None:
    check = _check(server, domain)
    assert check.spf.status == status and problem in check.spf.problem
    if status == "invalid":
        assert "(permerror)" in _texts(check) and INCLUDE in _texts(check)


def test_spf_by_sending_ips_through_ip4_a_and_mx(server: DnsServer) -> None:
    ips = ("192.0.2.10", "2001:db8::25")
    for domain in ("ips.test", "mx.ips.test"):
        check = _check(server, domain, spf_include="", sending_ips=ips)
        assert check.spf.status == "pass", check.spf
        assert check.spf.needed == "ip4:192.0.2.10 ip6:2001:db8::25"
    half = _check(server, "half.test", spf_include="", sending_ips=ips)
    assert half.spf.status == "not_authorized"
    assert _record(half, "half.test") == "v=spf1 ip4:192.0.2.10 ip6:2001:db8::25 -all"


def test_spf_passes_aligned_when_the_return_path_is_under_the_from_domain(
    server: DnsServer,
) -> None:
    check = _check(server, "aligned.test", bounce_domains=("bounces.aligned.test",))
    assert check.spf.domain == "bounces.aligned.test" and check.spf.status == "pass"
    assert check.spf_aligned and not check.dkim_aligned and check.authorized
    assert "selector bb1" in _texts(check)  # DKIM is still recommended
    strict = _check(server, "strict.test", bounce_domains=("bounces.strict.test",))
    assert strict.spf.status == "pass" and not strict.spf_aligned and not strict.authorized
    assert "strict SPF alignment (aspf=s)" in _texts(strict)


def test_dkim_keys_that_do_not_count(server: DnsServer) -> None:
    revoked = _check(server, "revoked.test")
    assert revoked.dkim.status == "revoked" and "is revoked" in _texts(revoked)
    bad = _check(server, "badkey.test")
    assert bad.dkim.status == "malformed" and "not valid base64" in bad.dkim.problem
    unset = _check(server, "ready.test", dkim_selector="")
    assert unset.dkim.status == "unconfigured" and not unset.authorized
    assert "BOUNCEBACK_DKIM_SELECTOR" in _texts(unset)


# --- failures are findings --------------------------------------------------------------------


def test_a_server_that_never_answers_gives_findings_not_exceptions() -> None:
    with silent_server() as silent:
        started = time.monotonic()
        check = check_domain("reject.test", _settings(silent.address), timeout=0.3, budget=1.0)
        elapsed = time.monotonic() - started
    assert silent.received, "the questions reached the server"
    assert elapsed < 3
    assert not check.complete and not check.authorized
    assert {check.dmarc.status, check.spf.status, check.dkim.status} == {"unknown"}
    assert "could not be read" in _texts(check) and "in time" in _texts(check)
    assert "could not be read" in check.summary.lower() or "not be read" in check.summary


def test_a_refusing_server_and_odd_input(server: DnsServer) -> None:
    outside = _check(server, "example.org")  # dnsmasq refuses names outside its zones
    assert outside.spf.status == "unknown" and "REFUSED" in outside.spf.problem
    assert "answered REFUSED" in _texts(outside)
    not_a_domain = _check(server, "your domain")
    assert not_a_domain.findings[0].text.startswith("“your domain” is not a domain name")
    unconfigured = _check(server, "reject.test", spf_include="", sending_ips=())
    assert unconfigured.spf.status == "unconfigured"
    assert "BOUNCEBACK_SPF_INCLUDE" in _texts(unconfigured)
    bad_setting = _check(server, "reject.test", spf_include="mx:spf.bounceback.test")
    assert "use include:, ip4: or ip6:" in bad_setting.spf.problem
    off = check_domain("reject.test", _settings("off"))
    assert "turned off" in _texts(off)


def test_dns_settings_from_the_environment() -> None:
    settings = load(
        {
            "BOUNCEBACK_DNS_SERVERS": "127.0.0.1:5353, [::1]:53,10.0.0.1",
            "BOUNCEBACK_SPF_INCLUDE": INCLUDE,
            "BOUNCEBACK_DKIM_SELECTOR": "bb1",
        }
    )
    assert settings.dns_servers == ("127.0.0.1:5353", "[::1]:53", "10.0.0.1")
    assert [dnscheck.parse_server(s) for s in settings.dns_servers] == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("10.0.0.1", 53),
    ]
    assert (settings.spf_include, settings.dkim_selector) == (INCLUDE, "bb1")


# --- records without DNS ----------------------------------------------------------------------


def test_organisational_domains_and_alignment() -> None:
    assert dnsrecords.organizational_domain("mail.news.example.com") == "example.com"
    assert dnsrecords.organizational_domain("news.example.co.uk") == "example.co.uk"
    assert dnsrecords.organizational_domain("example.com") == "example.com"
    assert dnsrecords.aligned("bounces.example.com", "example.com", "r")
    assert not dnsrecords.aligned("bounces.example.com", "example.com", "s")
    assert not dnsrecords.aligned("example.co.uk", "other.co.uk", "r")


@given(st.text(max_size=120))
def test_record_parsers_raise_only_record_errors(text: str) -> None:
    for parse in (dnsrecords.parse_dmarc, dnsrecords.parse_dkim):
        with contextlib.suppress(dnsrecords.RecordError):
            parse(text)
    with contextlib.suppress(dnsrecords.RecordError):
        spf = dnsrecords.parse_spf("v=spf1 " + text)
        for term in spf.terms:  # what the evaluation reads of a parsed term never fails
            if term.mechanism in ("ip4", "ip6"):
                dnsrecords.term_network(term)
            elif term.mechanism in ("a", "mx"):
                dnsrecords.cidr_lengths(term)


@given(st.lists(st.sampled_from(["ip4:", "a", "/", "//", "1", "24", ":", "x.test", "mx", "-"])))
def test_spf_terms_from_pieces(pieces: list[str]) -> None:
    with contextlib.suppress(dnsrecords.RecordError):
        term = dnsrecords.parse_spf_term("".join(pieces))
        if term.mechanism in ("a", "mx"):
            dnsrecords.cidr_lengths(term)


# --- the cache --------------------------------------------------------------------------------


def test_checks_are_cached_for_a_few_minutes(server: DnsServer) -> None:
    now = [1000.0]
    calls: list[str] = []

    def counted(domain: str, settings: Settings) -> DomainCheck:
        calls.append(domain)
        return check_domain(domain, settings)

    cache = CheckCache(counted, ttl=300, clock=lambda: now[0])
    settings = _settings(server)
    first = cache.get("reject.test", settings)
    assert cache.get("REJECT.test", settings) is first and calls == ["reject.test"]
    assert cache.get("reject.test", _settings(server, dkim_selector="bb2")) is not first
    now[0] += 301
    assert cache.get("reject.test", settings) == first and len(calls) == 3
    with silent_server() as silent:  # an incomplete check is not kept: the next one asks again
        slow = _settings(silent.address)
        fast = CheckCache(lambda d, s: check_domain(d, s, timeout=0.2, budget=0.4))
        assert not fast.get("reject.test", slow).complete
        asked = len(silent.received)
        fast.get("reject.test", slow)
        assert len(silent.received) > asked


# --- through the service ----------------------------------------------------------------------

DMARC_REFUSAL = (
    "550-5.7.26 Unauthenticated email from acme.example is not accepted due to domain's DMARC "
    "policy"
)


def test_a_dmarc_bounce_gets_the_dns_findings_on_its_alert(
    factory: sessionmaker[Session], server: DnsServer, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, spf_include=INCLUDE, dkim_selector="bb1", dns_servers=(server.address,)
    )
    with transaction(factory) as session:
        acme = account(session)
        boss = admin(session, acme.id)
        _, key = accounts.create_api_key(session, acme.id, "test")
        targets = [delivery(session, acme.id, a) for a in ("ann@gmail.test", "bob@yahoo.test")]
        ids = acme.id, boss.id, [t.id for t in targets]
    for address, delivery_id in zip(("ann@gmail.test", "bob@yahoo.test"), ids[2], strict=True):
        raw = dsn(address, to=return_path(delivery_id), status="5.7.26", diagnostic=DMARC_REFUSAL)
        with transaction(factory) as session:
            intake.store_raw(session, raw, source="smtp")
    assert run_until_idle(factory, build_handlers(settings)) == 3  # 2 bounces, 1 DNS check
    with factory() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.kind == "dmarc_unauthorized" and alert.data["count"] == 2
        job = session.scalars(select(Job).where(Job.kind == dnscheck.DNS_CHECK)).one()
        assert job.key == f"dnscheck:{alert.id}" and job.done_at is not None and not job.error
        assert job.payload == {"account_id": ids[0], "domain": "acme.example", "alert_id": alert.id}
        stored = alert.data["dns_check"]
        assert stored["domain"] == "acme.example" and stored["authorized"] is False
        spf_fix = "v=spf1 ip4:203.0.113.5 include:spf.bounceback.test -all"
        fixes = {f["record_name"]: f["record_value"] for f in stored["findings"]}
        assert fixes["acme.example"] == spf_fix
        assert fixes["bb1._domainkey.acme.example"].startswith("v=DKIM1")
        assert alert.body.startswith("Your domain's DMARC policy")  # the advice stays first
        assert "A receiving server answered: 550" in alert.body
        assert "\n\nDNS check of acme.example (" in alert.body
        assert f'acme.example TXT "{spf_fix}"' in alert.body
        body = alert.body
    # The job again (a worker died after it): the body holds one check, not two.
    handler = dnscheck.DnsCheckJob(settings)
    handler(factory, {"account_id": ids[0], "domain": "acme.example", "alert_id": alert.id})
    handler(factory, {"account_id": ids[0] + 1, "domain": "acme.example", "alert_id": alert.id})
    with factory() as session:
        again = session.get(Alert, alert.id)
        assert again is not None and again.body.count("DNS check of") == 1
        assert again.body.split("DNS check of")[0] == body.split("DNS check of")[0]
    client = TestClient(create_app(settings, factory))
    listed = client.get("/api/alerts", headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["total"] == 1
    item = listed["items"][0]
    assert item["domain"] == "acme.example" and item["count"] == 2
    assert item["dns_check"]["authorized"] is False
    assert {f["record_value"] for f in item["dns_check"]["findings"]} >= {spf_fix}
    assert item["dns_check"]["spf"]["status"] == "not_authorized"
    page = client.get("/", headers=session_creds(ids[1]).headers)
    assert page.status_code == 200
    assert page.text.count(spf_fix) == 1  # in the findings list, not twice
    assert "bb1._domainkey.acme.example" in page.text
    assert "This service is not authorized to send for acme.example" in page.text


def test_record_on_alert_keeps_to_the_account(
    factory: sessionmaker[Session], server: DnsServer
) -> None:
    with transaction(factory) as session:
        mine, theirs = account(session, "Mine"), account(session, "Theirs")
        alert = Alert(account_id=theirs.id, kind="dmarc_unauthorized", title="t", body="b")
        session.add(alert)
        session.flush()
        ids = mine.id, theirs.id, alert.id
    check = _check(server, "ready.test")
    when = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    with transaction(factory) as session:
        assert not dnscheck.record_on_alert(session, ids[0], ids[2], check, when)
        assert dnscheck.record_on_alert(session, ids[1], ids[2], check, when)
    with factory() as session:
        stored = session.get(Alert, ids[2])
        assert stored is not None
        assert stored.body == (
            "b\n\nDNS check of ready.test (2030-01-02 03:04 UTC): This service is authorized to "
            "send for ready.test: DKIM (selector bb1) pass aligned with it."
        )
        assert stored.data["dns_check"]["checked_at"] == when.isoformat()
