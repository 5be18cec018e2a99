"""Which site a host is in: its own `site:`, else the site whose DNS domain holds its
name, else the last label of a HOST.SITE name. An FQDN in no listed domain is an error,
never a site named after its top-level domain. `check-config --sites` prints the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from checkd.config.errors import Problems
from checkd.config.model import Host, Objects, Site, SiteRule, Where

_DOMAIN_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


def read_domains(names: tuple[str, ...], site: str, where: tuple[str, int], problems: Problems) -> tuple[str, ...]:
    """The `domains:` of a site, lower case, without leading or trailing dots."""
    out = []
    for name in names:
        domain = name.strip().strip(".").lower()
        if not _DOMAIN_RE.match(domain):
            problems.add(*where, f"site {site!r}: domains: {name!r} is not a DNS domain; "
                                 "write it like ladc1.example.com")
        else:
            out.append(domain)
    return tuple(out)


def domain_index(sites: Mapping[str, Site], problems: Problems) -> dict[str, Site]:
    """Domain -> the site it belongs to; a domain given to two sites is an error."""
    index: dict[str, Site] = {}
    for site in sites.values():
        for domain in site.domains:
            first = index.get(domain)
            if first is not None and first.name != site.name:
                problems.add(site.where.file, site.where.line,
                             f"domain {domain!r} is given to site {site.name!r} and to site {first.name!r} "
                             f"(at {first.where}); a domain belongs to one site")
            index.setdefault(domain, site)
    return index


def domain_of(name: str, index: Mapping[str, Site]) -> str | None:
    """The longest listed domain that holds `name` (or is `name`), if any."""
    labels = name.strip(".").lower().split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in index:
            return candidate
    return None


def place(name: str, explicit: str | None, index: Mapping[str, Site], where: Where,
          problems: Problems) -> tuple[str, SiteRule] | None:
    """The site of host `name` and the rule that chose it; None (a problem recorded) if none does."""
    if explicit:
        return explicit, SiteRule.EXPLICIT
    domain = domain_of(name, index)
    if domain is not None:
        return index[domain].name, SiteRule.DOMAIN
    labels = name.strip(".").split(".")
    if len(labels) == 2 and all(labels):
        return labels[1], SiteRule.LAST_LABEL
    if len(labels) < 2:
        problems.add(where.file, where.line, f"host {name!r} has no site: name it HOST.SITE or add `site: ...`")
    elif all(label.isdigit() for label in labels):
        problems.add(where.file, where.line, f"host {name!r} is named by an IP address: add `site: ...`")
    else:
        parent = ".".join(labels[1:]).lower()
        problems.add(where.file, where.line,
                     f"host {name!r} is in no site's domain: add `domains: [{parent}]` to its site under "
                     f"sites:, or `site: ...` to the host (a name of three or more labels is a DNS name; "
                     f"only a HOST.SITE name takes its site from the last label)")
    return None


def explain(host: Host, objs: Objects) -> str:
    """Why `host` is in its site, for `check-config --sites`."""
    if host.site_rule is SiteRule.DOMAIN:
        site = objs.sites[host.site]
        domain = domain_of(host.name, {d: site for d in site.domains})
        return f"domain {domain} ({site.where})"
    if host.site_rule is SiteRule.EXPLICIT:
        return f"site: ({host.where})"
    return "last label of the name"


def site_table(objs: Objects) -> list[str]:
    """HOST SITE RULE lines, by site then host."""
    hosts = sorted(objs.hosts.values(), key=lambda h: (h.site, h.name))
    rows = [("HOST", "SITE", "RULE")] + [(h.name, h.site, explain(h, objs)) for h in hosts]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    return [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows]
