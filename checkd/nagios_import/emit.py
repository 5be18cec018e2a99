"""Build the checkd objects from parsed Nagios definitions and write them as YAML.

One file per section in OUTDIR; IMPORT-REPORT.txt lists what was left behind.
"""

from __future__ import annotations

import json

from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from checkd.config.load import DEFAULT_MACROS
from checkd.config.macros import split_call, unknown_macros
from checkd.nagios_import import convert as cv
from checkd.nagios_import import depend
from checkd.nagios_import.escalate import NOTIFICATION_INTERVAL_DEFAULT, attach, level
from checkd.nagios_import.parse import Definition, parse_main
from checkd.nagios_import.report import Report
from checkd.nagios_import.resolve import Membership, Resolver, split_list, target_hosts
from checkd.nagios_import.timeperiod import convert_timeperiod

TEMPLATE_TYPES = ("host", "service", "contact")
HANDLED = {"host", "service", "command", "contact", "contactgroup", "hostgroup", "timeperiod",
           "hostescalation", "serviceescalation", "servicedependency", "hostdependency"}


def _template_names(defs: list[Definition]) -> dict[tuple[str, str], str]:
    """checkd has one namespace for templates; a name used by two Nagios types gets a type prefix."""
    by_name: dict[str, set[str]] = defaultdict(set)
    for d in defs:
        if d.type in TEMPLATE_TYPES and "name" in d.attrs:
            by_name[d.attrs["name"]].add(d.type)
    return {(t, n): (n if len(types) == 1 else f"{t}-{n}") for n, types in by_name.items() for t in types}


class Importer:
    def __init__(self, cfg: Path, site: str) -> None:
        self.report = Report()
        self.nagios = parse_main(cfg, self.report)
        self.site = site
        self.resolver = Resolver(self.nagios.definitions, self.report)
        self.by_type: dict[str, list[Definition]] = defaultdict(list)
        for d in self.nagios.definitions:
            self.by_type[d.type].append(d)
        self.ctx = cv.Context(self.nagios.interval_length, self.report,
                              _template_names(self.nagios.definitions), self.resolver.attrs)
        self.out: dict[str, Any] = {"templates": [], "hosts": [], "services": [], "commands": {},
                                    "contacts": [], "contact_groups": [], "hostgroups": [], "timeperiods": [],
                                    "dependencies": []}
        # Emitted objects by what they monitor, so escalations can be attached to them.
        self.objects_by_host: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self.objects_by_service: dict[tuple[str, str], tuple[dict[str, Any], dict[str, str], list[str]]] = {}

    def registered(self, type_: str) -> list[tuple[Definition, dict[str, str]]]:
        return [(d, self.resolver.attrs(d)) for d in self.by_type[type_] if d.registered]

    def run(self) -> dict[str, Any]:
        for d in self.nagios.definitions:
            if d.type not in HANDLED:
                self.report.add(*d.where(), f"define {d.type} is not carried over: checkd has no {d.type}")
        self.commands()
        hosts = {a["host_name"]: a for d, a in self.registered("host") if "host_name" in a}
        self.host_members = Membership(hosts, {a["hostgroup_name"]: a for d, a in self.registered("hostgroup")},
                                       "members", "hostgroups", "hostgroup_members")
        self.checkables("host", cv.HOST_RULES, self.out["hosts"], self.host_extra)
        self.checkables("service", cv.SERVICE_RULES, self.out["services"], self.service_extra)
        self.checkables("contact", cv.CONTACT_RULES, self.out["contacts"], self.contact_extra)
        self.groups()
        for d, a in self.registered("timeperiod"):
            if tp := convert_timeperiod(d, a, self.report):
                self.out["timeperiods"].append(tp)
        self.escalations()
        self.dependencies()
        if self.nagios.resource_macros:
            self.out["macros"] = dict(self.nagios.resource_macros)
        return self.out

    # --- commands ---------------------------------------------------------------------------

    def commands(self) -> None:
        macros = {**DEFAULT_MACROS, **self.nagios.resource_macros}
        for d, a in self.registered("command"):
            name, line = a.get("command_name"), a.get("command_line")
            if not name or not line:
                self.report.add(*d.where(), "command without command_name or command_line")
                continue
            bad = unknown_macros(line, macros)
            if bad:
                self.report.add(*d.where("command_line"), f"command {name!r} not carried over: uses "
                                f"{', '.join('$' + b + '$' for b in bad)}, which checkd does not have "
                                "(notification commands: checkd notifies itself)")
                continue
            self.out["commands"][name] = line

    def known_check(self, d: Definition, a: dict[str, str]) -> bool:
        call = a.get("check_command")
        if call is None or split_call(call)[0] in self.out["commands"]:
            return True
        self.report.add(*d.where("check_command"), f"{d.type} check_command {call!r}: "
                                                    "its command was not carried over")
        return False

    # --- hosts, services, contacts: templates stay templates --------------------------------

    def checkables(self, type_: str, rules: dict, target: list, extra) -> None:
        name_key = {"host": "host_name", "service": "service_description", "contact": "contact_name"}[type_]
        for d in self.by_type[type_]:
            a = self.resolver.attrs(d)
            skip = {"service": ("host_name", "hostgroup_name"),
                    "contact": ("host_notification_period", "service_notification_period")}.get(type_, ())
            body = cv.convert(d, rules, self.ctx, skip=skip)
            if type_ == "contact":
                cv.notification_period(d, body, self.ctx)
            if "name" in d.attrs:
                tpl_name = self.ctx.template_names[(type_, d.attrs["name"])]
                body.pop("name", None)
                self.out["templates"].append({"name": tpl_name, **body})
                if not d.registered:
                    continue
                body = {"use": tpl_name}
                if name_key in a and type_ != "service":
                    body["name"] = a[name_key]
            if type_ != "service" and not a.get(name_key):
                self.report.add(*d.where(), f"{type_} without {name_key}; not carried over")
                continue
            obj = extra(d, a, body)
            if isinstance(obj, list):
                target.extend(obj)
            elif obj is not None:
                target.append(obj)

    def host_extra(self, d: Definition, a: dict[str, str], body: dict[str, Any]) -> dict[str, Any] | None:
        body = {"name": a["host_name"], **{k: v for k, v in body.items() if k != "name"}, "site": self.site}
        if not self.known_check(d, a):
            body.pop("command", None)
        self.objects_by_host[a["host_name"]] = (body, a)
        return body

    def service_extra(self, d: Definition, a: dict[str, str], body: dict[str, Any]) -> list[dict[str, Any]] | None:
        desc = a.get("service_description")
        if not desc or "check_command" not in a:
            self.report.add(*d.where(), "service without service_description or check_command; not carried over")
            return None
        if not self.known_check(d, a):
            return None
        hosts = sorted(target_hosts(a, self.host_members))
        if not hosts:
            self.report.add(*d.where(), f"service {desc!r} applies to no host; not carried over")
            return None
        host_names, groups = split_list(a.get("host_name")), split_list(a.get("hostgroup_name"))
        where: dict[str, Any]
        if "*" in host_names or any(g == "*" or g.startswith("!") for g in groups):
            where = {"hosts": hosts}  # checkd has no `*` or group exclusions: list the hosts
        else:
            where = {k: v for k, v in (("hosts", host_names), ("hostgroups", groups)) if v}
        if "description" not in body:
            body["description"] = desc
        groups = self.implied(a, hosts)
        if len(groups) == 1:
            objs = [{**where, **body, **groups[0][1]}]
            covers = [hosts]
        else:  # hosts hand down different contacts: one service per set of hosts
            objs = [{"hosts": group_hosts, **body, **vals} for group_hosts, vals in groups]
            covers = [group_hosts for group_hosts, _ in groups]
        for obj, covered in zip(objs, covers):
            for h in covered:
                self.objects_by_service[(h, desc)] = (obj, a, covered)
        return objs

    def implied(self, a: dict[str, str], hosts: list[str]) -> list[tuple[list[str], dict[str, Any]]]:
        """Nagios 4's implied inheritance: a service without contacts and contact groups takes
        its host's; without notification_interval or notification_period, its host's too.
        Hosts that hand down the same values are grouped together."""
        groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
        for h in hosts:
            ha = self.objects_by_host[h][1] if h in self.objects_by_host else {}
            vals: dict[str, Any] = {}
            if not a.get("contacts") and not a.get("contact_groups"):
                for key in ("contacts", "contact_groups"):
                    if ha.get(key):
                        vals[key] = split_list(ha[key])
            if "notification_interval" not in a and "notification_interval" in ha:
                vals["notification_interval"] = cv.interval_seconds(ha["notification_interval"], self.ctx)
            if "notification_period" not in a and "notification_period" in ha:
                vals["notification_period"] = ha["notification_period"]
            groups.setdefault(json.dumps(vals, sort_keys=True), ([], vals))[0].append(h)
        return list(groups.values())

    def contact_extra(self, d: Definition, a: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"name": a["contact_name"], **{k: v for k, v in body.items() if k != "name"}}

    # --- groups ----------------------------------------------------------------------------

    def groups(self) -> None:
        for d, a in self.registered("hostgroup"):
            name = a.get("hostgroup_name")
            members = sorted(self.host_members.members(name))
            self.out["hostgroups"].append({"name": name, **({"alias": a["alias"]} if "alias" in a else {}),
                                           "members": members})
        contacts = {a["contact_name"]: a for d, a in self.registered("contact") if "contact_name" in a}
        cgroups = {a["contactgroup_name"]: a for d, a in self.registered("contactgroup")}
        membership = Membership(contacts, cgroups, "members", "contactgroups", "contactgroup_members")
        for name, a in cgroups.items():
            self.out["contact_groups"].append({"name": name, **({"alias": a["alias"]} if "alias" in a else {}),
                                               "members": sorted(membership.members(name))})

    # --- escalations -----------------------------------------------------------------------

    def _every(self, a: dict[str, str]) -> float:
        return float(a.get("notification_interval", NOTIFICATION_INTERVAL_DEFAULT)) * self.nagios.interval_length

    def escalations(self) -> None:
        for d, a in self.registered("hostescalation"):
            for h in sorted(target_hosts(a, self.host_members)):
                if h in self.objects_by_host:
                    obj, ha = self.objects_by_host[h]
                    if lv := level(d, a, self._every(ha), self.nagios.interval_length, self.report):
                        attach(obj, lv, d, self.report)
        for d, a in self.registered("serviceescalation"):
            hosts = target_hosts(a, self.host_members)
            descs = split_list(a.get("service_description"))
            done: set[int] = set()
            for (h, desc), (obj, sa, covers) in self.objects_by_service.items():
                if h not in hosts or not ("*" in descs or desc in descs) or id(obj) in done:
                    continue
                done.add(id(obj))
                if not set(covers) <= hosts:
                    self.report.add(*d.where(), f"serviceescalation for {desc!r} on {h}: the service is defined "
                                    f"for several hosts ({', '.join(covers)}) and the escalation covers only some; "
                                    "not carried over (split the service definition)")
                    continue
                if lv := level(d, a, self._every(sa), self.nagios.interval_length, self.report):
                    attach(obj, lv, d, self.report)

    # --- dependencies ----------------------------------------------------------------------

    def dependencies(self) -> None:
        carried: dict[str, list[str]] = {}
        for host, desc in self.objects_by_service:
            carried.setdefault(host, []).append(desc)

        def services(d: Definition, hosts: list[str], descs: list[str], groups: list[str],
                     members: dict[str, set[tuple[str, str | None]]]) -> list[tuple[str, str | None]]:
            return depend.services_on(d, hosts, descs, groups, lambda h: carried.get(h, []), members, self.report)

        members = self._servicegroups()
        for d, a in self.registered("servicedependency"):
            masters = sorted(target_hosts(a, self.host_members))
            named = {"host_name": a.get("dependent_host_name"), "hostgroup_name": a.get("dependent_hostgroup_name")}
            own = split_list(a.get("service_description")), split_list(a.get("servicegroup_name"))
            theirs = (split_list(a.get("dependent_service_description")),
                      split_list(a.get("dependent_servicegroup_name")))
            if any(named.values()) or theirs[1]:
                sides = [(masters, sorted(target_hosts(named, self.host_members)), members)]
            else:               # Nagios' same-host dependency: each master host's services to its own
                sides = [([h], [h], {g: {k for k in m if k[0] == h} for g, m in members.items()}) for h in masters]
            for m_hosts, d_hosts, groups in sides:
                self._add_dependency(d, a, services(d, m_hosts, *own, groups), services(d, d_hosts, *theirs, groups))
        for d, a in self.registered("hostdependency"):
            named = {"host_name": a.get("dependent_host_name"), "hostgroup_name": a.get("dependent_hostgroup_name")}
            self._add_dependency(d, a, [(h, None) for h in sorted(target_hosts(a, self.host_members))],
                                 [(h, None) for h in sorted(target_hosts(named, self.host_members))])

    def _add_dependency(self, d: Definition, a: dict[str, str], masters: list[tuple[str, str | None]],
                        dependents: list[tuple[str, str | None]]) -> None:
        if (e := depend.entry(d, a, masters, dependents, self.report)) is not None:
            self.out["dependencies"].append(e)

    def _servicegroups(self) -> dict[str, set[tuple[str, str | None]]]:
        """Each servicegroup's (host, service) members: from the services' `servicegroups` and
        the groups' own `members` (host,service pairs)."""
        members: dict[str, set[tuple[str, str | None]]] = {}
        for key, (_, a, _covers) in self.objects_by_service.items():
            for g in split_list(a.get("servicegroups")):
                members.setdefault(g, set()).add(key)
        for d, a in self.registered("servicegroup"):
            pairs = split_list(a.get("members"))
            for host, desc in zip(pairs[::2], pairs[1::2]):
                if (host, desc) in self.objects_by_service:
                    members.setdefault(a.get("servicegroup_name", ""), set()).add((host, desc))
        return members


def import_nagios(cfg: Path, outdir: Path, site: str = "imported") -> Report:
    """Import `cfg` (a nagios.cfg) into `outdir`; returns what could not be carried over."""
    importer = Importer(cfg, site)
    sections = importer.run()
    outdir.mkdir(parents=True, exist_ok=True)
    header = f"# Imported from {cfg} by `checkd import-nagios`; see IMPORT-REPORT.txt\n"
    for section, value in sections.items():
        if value:
            text = yaml.safe_dump({section: value}, sort_keys=False, allow_unicode=True, width=120)
            (outdir / f"{section}.yaml").write_text(header + text)
    (outdir / "IMPORT-REPORT.txt").write_text(importer.report.text())
    return importer.report
