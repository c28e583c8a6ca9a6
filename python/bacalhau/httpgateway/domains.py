"""Domain allow-lists of `Network HTTP` jobs, with the rules of squid's `dstdomain` (which
Bacalhau's gateway uses): `example.com` matches that host only; `.example.com` matches it and
every subdomain (`a.example.com`, `a.b.example.com`); an IP address matches itself. Names are
compared lower-cased, without a trailing dot.

A node's `Compute.Network.AllowListedDomains` uses the same forms plus `*` (any domain); a job
domain is accepted when some node entry covers every host the job domain matches.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

ANY_DOMAIN = "*"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TOP_LABEL = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


def normalize(domain: str) -> str:
    """Lower-cased, trimmed, without a trailing dot (`Example.COM.` -> `example.com`)."""
    return domain.strip().lower().rstrip(".") if domain.strip() != "." else ""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def domain_problem(domain: str) -> str:
    """Why `domain` is not a job domain (a host name with at least two labels, optionally
    led by a dot, or an IP address), or "" when it is one."""
    text = normalize(domain)
    if not text:
        return "a domain must not be blank"
    if "/" in text or (":" in text and not _is_ip(text)):
        return (f'"{domain}" is not a domain: give the host name only (example.com), without '
                "scheme, port or path")
    if _is_ip(text):
        return ""
    name = text[1:] if text.startswith(".") else text
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) \
            or not _TOP_LABEL.match(labels[-1]) or len(name) > 253:
        return (f'"{domain}" is not a domain: use a host name such as example.com, or '
                ".example.com for it and its subdomains")
    return ""


def matches(rule: str, host: str) -> bool:
    """True if the allow-list entry `rule` lets `host` through."""
    rule, host = normalize(rule), normalize(host).strip("[]")
    if rule == ANY_DOMAIN:
        return True
    if rule.startswith("."):
        return host == rule[1:] or host.endswith(rule)
    return host == rule.strip("[]")


def allowed(host: str, rules: Iterable[str]) -> bool:
    """True if some entry of `rules` lets `host` through."""
    return any(matches(rule, host) for rule in rules)


def covers(node_rule: str, job_rule: str) -> bool:
    """True if every host the job's entry matches is also matched by the node's entry."""
    node_rule, job_rule = normalize(node_rule), normalize(job_rule)
    if node_rule == ANY_DOMAIN:
        return True
    if job_rule.startswith("."):
        # a wildcard is covered only by a wildcard over it (or over a parent)
        return node_rule.startswith(".") and matches(node_rule, job_rule[1:])
    return matches(node_rule, job_rule)


def uncovered(job_domains: Sequence[str], node_rules: Sequence[str]) -> list[str]:
    """The job domains no node entry covers, in the job's order."""
    return [d for d in job_domains if not any(covers(rule, d) for rule in node_rules)]
