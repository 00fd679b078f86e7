"""The doctor's verdicts, pure: each takes facts the I/O side gathered and says pass / warn /
fail / unknown, with the record it read and what to change. Nothing here touches the network."""

from __future__ import annotations

import dataclasses
import email.utils
import ipaddress

from dripd.doctor import dkim, spf
from dripd.doctor.checks import Check, Facts, Status, answer, txt_starting

# Common DKIM selectors of the big mail hosts, tried when the mailbox names none.
COMMON_SELECTORS = ("default", "google", "selector1", "selector2", "k1", "k2", "s1", "s2", "dkim",
                    "mail", "smtp", "mxvault", "mandrill", "everlytickey1", "zoho", "fm1", "protonmail")
# The public blocklists Gmail, Yahoo and Microsoft are known to consult (or mirror).
DEFAULT_DNSBLS = ("zen.spamhaus.org", "b.barracudacentral.org", "bl.spamcop.net")
# Second-level labels under which registrations sit (co.uk, com.au...). An approximation of the
# Public Suffix List, good enough for "same organisation" between a From and a Message-ID domain.
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "gv", "ltd", "plc"}
_PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                   "100.64.0.0/10", "fc00::/7")]
CANNOT_RESOLVE = "cannot resolve"


def org_domain(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def spf_check(facts: Facts, domain: str, sending_ips: list[str]) -> tuple[Check, bool | None]:
    """SPF exists, parses, stays within 10 lookups, has no +all and authorises every sending IP.

    Returns the check and whether SPF passes for the sending hosts (None: cannot tell)."""
    got, records = spf.spf_records(facts, domain)
    if not got.resolved:
        return Check("spf", Status.UNKNOWN, f"{CANNOT_RESOLVE} TXT {domain}: {got.error}"), None
    if not records:
        return Check("spf", Status.FAIL, f"{domain} publishes no SPF record", " | ".join(got.records),
                     f'publish a TXT record at {domain}: "v=spf1 include:<your provider> -all"'), False
    record = " | ".join(records)
    if len(records) > 1:
        return Check("spf", Status.FAIL, f"{domain} publishes {len(records)} SPF records (a permerror)", record,
                     "merge them into one v=spf1 record"), False
    try:
        terms = spf.parse(records[0])
    except spf.SpfSyntaxError as exc:
        return Check("spf", Status.FAIL, f"the SPF record does not parse: {exc}", record,
                     "fix the record's syntax (RFC 7208)"), False
    walk = spf.evaluate(facts, domain, None)
    if walk.unresolved:
        return Check("spf", Status.UNKNOWN, f"{CANNOT_RESOLVE} {', '.join(walk.unresolved[:3])}", record), None
    if walk.lookups > spf.LOOKUP_LIMIT:
        return Check("spf", Status.FAIL, f"the record needs {walk.lookups} DNS lookups (limit {spf.LOOKUP_LIMIT}): "
                     "receivers treat it as a permerror", record,
                     "flatten includes into ip4:/ip6: ranges or drop unused includes"), False
    alls = [t for t in terms if t.name == "all" and not t.modifier]
    if any(t.qualifier == "+" for t in alls):
        return Check("spf", Status.FAIL, "+all authorises every host on the internet", record,
                     "end the record with -all (or ~all)"), False
    if walk.problems and any("no usable SPF" in p or "publishes" in p for p in walk.problems):
        return Check("spf", Status.FAIL, "; ".join(walk.problems), record, "fix or remove the broken include"), False
    if not sending_ips:
        return Check("spf", Status.WARN, f"the record is valid ({walk.lookups} lookups) but the sending host is "
                     "unknown, so it cannot be checked", record,
                     "use the SMTP transport or list the sending addresses in [doctor] sending_ips"), None
    refused, unknown, unevaluable = [], [], []
    for ip in sending_ips:
        result = spf.evaluate(facts, domain, ip)
        if result.unresolved:
            unknown.append(ip)
        elif result.result == "temperror":  # everything answered: a macro stood in the way
            unevaluable.append(ip)
        elif result.result != "pass":
            refused.append(f"{ip} ({result.result})")
    if refused:
        return Check("spf", Status.FAIL, f"the record does not authorise the sending host: {', '.join(refused)}",
                     record, f"add ip4:/ip6: for {', '.join(r.split()[0] for r in refused)} or your relay's include"), False
    if unknown:
        return Check("spf", Status.UNKNOWN, f"{CANNOT_RESOLVE} everything the record names for "
                     f"{', '.join(unknown)}", record), None
    if unevaluable:
        return Check("spf", Status.WARN, f"cannot evaluate the record for {', '.join(unevaluable)}: "
                     + "; ".join(walk.problems), record, "check it with your provider's SPF tool, or avoid macros"), None
    notes = [f"authorises {', '.join(sending_ips)}", f"{walk.lookups}/{spf.LOOKUP_LIMIT} lookups"]
    if walk.void_lookups > 2 or walk.problems or any(t.qualifier == "?" for t in alls) or not alls:
        extra = walk.problems + ([f"{walk.void_lookups} void lookups (limit 2)"] if walk.void_lookups > 2 else [])
        ending = "" if alls and alls[0].qualifier != "?" else "the record ends without -all or ~all"
        return Check("spf", Status.WARN, "; ".join(notes + extra + ([ending] if ending else [])), record,
                     "end the record with ~all or -all" if ending else "remove the terms named above"), True
    return Check("spf", Status.PASS, "; ".join(notes), record), True


def dkim_check(facts: Facts, domain: str, selectors: list[str]) -> tuple[Check, bool | None]:
    """A selector's key is published, usable and at least 1024 bits; returns (check, key found)."""
    unresolved, broken = [], []
    for selector in selectors:
        name = f"{selector}._domainkey.{domain}"
        got = answer(facts, name, "TXT")
        if not got.resolved:
            unresolved.append(name)
            continue
        records = [r for r in got.records if "p=" in r]
        if not records:
            continue
        key = dkim.parse_key(records[0])
        shown = f"{name}: {records[0][:120]}{'...' if len(records[0]) > 120 else ''}"
        if key.problem:
            broken.append((shown, key.problem))
            continue
        if key.bits is not None and key.bits < dkim.MIN_BITS:
            return Check("dkim", Status.FAIL, f"selector {selector}: {key.bits}-bit key, below {dkim.MIN_BITS}",
                         shown, f"publish a {dkim.RECOMMENDED_BITS}-bit key and sign with it"), False
        if key.bits is not None and key.bits < dkim.RECOMMENDED_BITS:
            return Check("dkim", Status.WARN, f"selector {selector}: {key.bits}-bit key ({dkim.RECOMMENDED_BITS} "
                         "recommended)", shown, f"rotate to a {dkim.RECOMMENDED_BITS}-bit key"), True
        size = f"{key.bits}-bit RSA" if key.bits else key.algorithm
        return Check("dkim", Status.PASS, f"selector {selector}: {size} key", shown), True
    if broken:
        shown, problem = broken[0]
        return Check("dkim", Status.FAIL, f"the DKIM record is unusable: {problem}", shown,
                     "publish the key your provider gives you (v=DKIM1; k=rsa; p=...)"), False
    if unresolved:
        return Check("dkim", Status.UNKNOWN, f"{CANNOT_RESOLVE} {', '.join(unresolved[:3])}"), None
    return Check("dkim", Status.FAIL, f"no DKIM key under selector(s) {', '.join(selectors[:6])}"
                 f"{'...' if len(selectors) > 6 else ''} of {domain}", "",
                 "turn on DKIM signing at your provider and set the mailbox's dkim_selector"), False


def dmarc_checks(facts: Facts, domain: str, spf_ok: bool | None, dkim_ok: bool | None) -> list[Check]:
    """DMARC exists with a policy; the From domain aligns through SPF or DKIM."""
    names = [f"_dmarc.{domain}"] + ([f"_dmarc.{org_domain(domain)}"] if org_domain(domain) != domain else [])
    record, where = "", ""
    for name in names:
        got, found = txt_starting(facts, name, "v=dmarc1")
        if not got.resolved:
            return [Check("dmarc", Status.UNKNOWN, f"{CANNOT_RESOLVE} TXT {name}: {got.error}"),
                    _alignment(domain, spf_ok, dkim_ok)]
        if found:
            record, where = found[0], name
            break
    if not record:
        return [Check("dmarc", Status.FAIL, f"no DMARC record at {names[0]}", "",
                      f'publish TXT at {names[0]}: "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"'),
                _alignment(domain, spf_ok, dkim_ok)]
    found_tags = dkim.tags(record)
    policy = found_tags.get("sp" if where != names[0] and "sp" in found_tags else "p", "").lower()
    shown = f"{where}: {record}"
    if policy not in ("none", "quarantine", "reject"):
        check = Check("dmarc", Status.FAIL, f"the DMARC record has no valid policy (p={policy or 'missing'})", shown,
                      "add p=none (monitor), p=quarantine or p=reject")
    elif policy == "none":
        check = Check("dmarc", Status.PASS, "policy p=none: enough for the bulk-sender rules, but it only monitors",
                      shown, "")
    else:
        check = Check("dmarc", Status.PASS, f"policy p={policy}", shown)
    return [check, _alignment(domain, spf_ok, dkim_ok)]


def _alignment(domain: str, spf_ok: bool | None, dkim_ok: bool | None) -> Check:
    # dripd's envelope sender is the mailbox address, so SPF's domain is the From domain; a key
    # under the From domain means the signature's d= is the From domain too (strict alignment).
    record = f"From domain {domain}; MAIL FROM domain {domain}"
    if spf_ok or dkim_ok:
        through = " and ".join(n for n, ok in (("SPF", spf_ok), ("DKIM", dkim_ok)) if ok)
        return Check("alignment", Status.PASS, f"the From domain aligns through {through}", record)
    if spf_ok is None or dkim_ok is None:
        return Check("alignment", Status.UNKNOWN, "cannot tell: SPF or DKIM could not be read", record)
    return Check("alignment", Status.FAIL, "neither SPF nor DKIM passes for the From domain: DMARC fails", record,
                 "fix SPF for the sending host or publish a DKIM key for the From domain")


def mx_check(facts: Facts, domain: str) -> Check:
    """Replies need somewhere to go: MX records (or at least an address, RFC 5321 5.1)."""
    got = answer(facts, domain, "MX")
    if not got.resolved:
        return Check("mx", Status.UNKNOWN, f"{CANNOT_RESOLVE} MX {domain}: {got.error}")
    records = sorted(got.records, key=lambda r: int(r.split()[0]) if r.split()[0].isdigit() else 0)
    hosts = [(r.split()[1:] or [""])[0].rstrip(".") for r in records]
    if hosts and all(not h for h in hosts):
        return Check("mx", Status.FAIL, f"{domain} publishes a null MX: replies cannot arrive", " | ".join(records),
                     "publish the MX of the mailbox that receives replies")
    if hosts:
        return Check("mx", Status.PASS, f"replies go to {', '.join(hosts[:3])}", " | ".join(records))
    address = answer(facts, domain, "A")
    if address.records:
        return Check("mx", Status.WARN, f"no MX: mail falls back to the A record {address.records[0]}", "",
                     f"publish MX records for {domain}")
    return Check("mx", Status.FAIL, f"{domain} has no MX (and no address): replies bounce", "",
                 f"publish MX records for {domain}")


def dnsbl_name(ip: str, zone: str) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(ip.split("."))) + "." + zone
    return ".".join(reversed(address.exploded.replace(":", ""))) + "." + zone


def listable(ip: str) -> bool:
    """Whether a blocklist can say anything about ``ip`` (not loopback, private or link-local)."""
    address = ipaddress.ip_address(ip)
    return not (address.is_loopback or address.is_link_local or address.is_unspecified
                or any(address in net for net in _PRIVATE_NETS if net.version == address.version))


def dnsbl_check(facts: Facts, ips: list[str], zones: list[str]) -> Check:
    """Each public sending IP against each blocklist: listed fails, refused/unreachable is unknown."""
    public = [ip for ip in ips if listable(ip)]
    if not public:
        return Check("dnsbl", Status.SKIP, "no public sending address to look up" + (f" ({', '.join(ips)})" if ips else ""),
                     fix="" if ips else "list the sending addresses in [doctor] sending_ips")
    listed, unknown, clean = [], [], []
    for ip in public:
        for zone in zones:
            got = answer(facts, dnsbl_name(ip, zone), "A")
            if not got.resolved:
                unknown.append(f"{ip}@{zone}")
            elif any(r.startswith("127.255.255.") for r in got.records):
                unknown.append(f"{ip}@{zone} (refused the query: use your own resolver)")
            elif any(r.startswith("127.") for r in got.records):
                listed.append(f"{ip} on {zone} ({', '.join(got.records)})")
            else:
                clean.append(f"{ip}@{zone}")
    if listed:
        return Check("dnsbl", Status.FAIL, f"listed: {'; '.join(listed)}", "; ".join(listed),
                     "find why (an open relay, a compromised account), fix it, then ask each list to delist")
    if unknown:
        return Check("dnsbl", Status.UNKNOWN, f"{CANNOT_RESOLVE}: {', '.join(unknown[:4])}",
                     f"not listed: {', '.join(clean)}" if clean else "")
    return Check("dnsbl", Status.PASS, f"{', '.join(public)} on none of {', '.join(zones)}")


@dataclasses.dataclass(frozen=True)
class TlsProbe:
    """What a connection to the submission server showed (filled by the I/O side)."""

    host: str
    port: int
    security: str  # "starttls" | "tls" | "none"
    reached: bool
    error: str | None = None
    starttls_offered: bool | None = None
    version: str | None = None
    cert_error: str | None = None  # verification failed (TLS itself worked)


def tls_check(probe: TlsProbe | None) -> Check:
    if probe is None:
        return Check("tls", Status.SKIP, "no submission server: this mailbox does not send over SMTP")
    where = f"{probe.host}:{probe.port} ({probe.security})"
    if not probe.reached:
        return Check("tls", Status.UNKNOWN, f"cannot connect to {where}: {probe.error}", where)
    if probe.security == "none":
        offered = "although it offers STARTTLS" if probe.starttls_offered else "and it offers no STARTTLS"
        return Check("tls", Status.FAIL, f"mail and password go in clear {offered}", where,
                     'set security = "starttls" (port 587) or "tls" (port 465)')
    if probe.security == "starttls" and probe.starttls_offered is False:
        return Check("tls", Status.FAIL, "the server does not offer STARTTLS", where,
                     'use its implicit-TLS port with security = "tls", or a server that offers STARTTLS')
    if probe.cert_error:
        return Check("tls", Status.FAIL, f"the certificate is not valid for {probe.host}: {probe.cert_error}", where,
                     "install a certificate for this host name (or set ca_file for a private CA)")
    if probe.error or not probe.version:
        return Check("tls", Status.FAIL, f"TLS failed: {probe.error}", where, "check the server's TLS setup")
    if probe.version in ("TLSv1", "TLSv1.1", "SSLv3"):
        return Check("tls", Status.WARN, f"{probe.version} is obsolete", where, "enable TLS 1.2 or 1.3 on the server")
    return Check("tls", Status.PASS, f"{probe.version}, certificate valid for {probe.host}", where)


@dataclasses.dataclass(frozen=True)
class Shape:
    """Headers of a message built as the engine builds it, and the mailbox's tracked sequences."""

    from_domain: str
    message_id: str
    date: str
    list_unsubscribe: str
    list_unsubscribe_post: str
    tracked: tuple[str, ...]  # sequences with open or click tracking
    tracked_without_headers: tuple[str, ...]  # ... of which listUnsubscribe is off


def shape_checks(shape: Shape) -> list[Check]:
    """Message-ID in the From domain, a Date, one-click List-Unsubscribe where bulk rules ask for it."""
    checks = []
    mid_domain = shape.message_id.strip("<>").rpartition("@")[2].lower()
    if mid_domain == shape.from_domain:
        checks.append(Check("message-id", Status.PASS, f"in the From domain {shape.from_domain}", shape.message_id))
    elif org_domain(mid_domain) == org_domain(shape.from_domain):
        checks.append(Check("message-id", Status.WARN, f"{mid_domain} is a sibling of the From domain", shape.message_id,
                            "leave the mailbox's domain unset so Message-IDs use the From domain"))
    else:
        checks.append(Check("message-id", Status.FAIL, f"{mid_domain} is not the From domain {shape.from_domain}",
                            shape.message_id, "leave the mailbox's domain unset (or set it to the From domain)"))
    if shape.date and email.utils.parsedate_tz(shape.date):
        checks.append(Check("date", Status.PASS, "every message carries a Date", shape.date))
    else:
        checks.append(Check("date", Status.FAIL, "the message has no valid Date", shape.date, "report this as a bug"))
    record = "; ".join(v for v in (shape.list_unsubscribe and f"List-Unsubscribe: {shape.list_unsubscribe}",
                                   shape.list_unsubscribe_post and f"List-Unsubscribe-Post: {shape.list_unsubscribe_post}") if v)
    one_click = "https://" in shape.list_unsubscribe.lower() and "one-click" in shape.list_unsubscribe_post.lower()
    if shape.tracked_without_headers:
        checks.append(Check("list-unsubscribe", Status.FAIL, "tracked sequences send without List-Unsubscribe: "
                            + ", ".join(shape.tracked_without_headers), record, "turn listUnsubscribe on for them"))
    elif one_click:
        checks.append(Check("list-unsubscribe", Status.PASS, "one-click (RFC 8058) with an https URL", record))
    elif shape.tracked:
        checks.append(Check("list-unsubscribe", Status.FAIL, "tracked sequences ("
                            + ", ".join(shape.tracked[:3]) + ") lack one-click List-Unsubscribe with an https URL",
                            record, "set [tracking] base_url to an https:// URL"))
    else:
        checks.append(Check("list-unsubscribe", Status.WARN, "no one-click https unsubscribe (needed above 5,000 "
                            "messages a day to Gmail or Yahoo)", record, "set [tracking] base_url to an https:// URL"))
    return checks
