"""Load a configuration: the node file given with -c and its objects directory.

Both return immutable objects or raise one ConfigError listing every problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from checkd.config import objects as o
from checkd.config import recurring
from checkd.config import service_shapes
from checkd.config.dependencies import read_dependencies
from checkd.config.errors import ConfigError, Problem, Problems, did_you_mean
from checkd.config.integrations import contact_problems
from checkd.config.macros import split_call
from checkd.config.model import (CheckSpec, Command, Contact, Group, Host, Notify, Objects, RecurringDowntime,
                                 Schedule, Service, Site, TimePeriod)
from checkd.config.node import NodeConfig, read_node
from checkd.config.references import check_references
from checkd.config.reports import report_problems
from checkd.config.sites import domain_index
from checkd.config.submitters import scope_problems
from checkd.config.weathermaps import read_weathermaps
from checkd.config.yamlsource import Node, load_yaml

# Our own Python plugins: next to the package in a checkout, /usr/lib/checkd in the .deb.
SHIPPED_PLUGINS = [Path(__file__).resolve().parents[2] / "plugins", Path("/usr/lib/checkd/plugins")]
DEFAULT_MACROS = {"PLUGINDIR": "/usr/lib/nagios/plugins",
                  "CHECKD_PLUGINDIR": str(next((p for p in SHIPPED_PLUGINS if p.is_dir()), SHIPPED_PLUGINS[0]))}


def object_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _read_docs(directory: Path, problems: Problems) -> list[Node]:
    if not directory.is_dir():
        raise ConfigError([Problem(str(directory), 0, "objects directory does not exist")])
    docs = []
    for path in object_files(directory):
        try:
            doc = load_yaml(path)
        except ConfigError as e:
            problems.items.extend(e.problems)
            continue
        if doc is None:
            continue
        if not isinstance(doc, Node):
            problems.add(str(path), 1, "expected a mapping of sections (hosts:, services:, commands:, ...)")
            continue
        for key in doc:
            if key not in o.SECTIONS:
                problems.add(doc.file, doc.line_of(key), f"unknown section {key!r}{did_you_mean(str(key), o.SECTIONS)}")
        docs.append(doc)
    return docs


def _add(table: dict[Any, Any], key: Any, obj: Any, what: str, problems: Problems) -> None:
    if key in table:
        first = table[key].where
        problems.add(obj.where.file, obj.where.line, f"duplicate {what} {key!r} (first defined at {first})")
    else:
        table[key] = obj


def _macros(docs: list[Node], extra: Mapping[str, str], problems: Problems) -> dict[str, str]:
    macros = {**DEFAULT_MACROS, **extra}
    for doc in docs:
        m = doc.get("macros")
        if m is None:
            continue
        if not isinstance(m, Node):
            problems.add(doc.file, doc.line_of("macros"), "macros: expected a mapping like USER1: /path")
            continue
        for k, v in m.items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                problems.add(m.file, m.line_of(k), f"macros: {k} must be a plain value")
            else:
                macros[str(k)] = str(v)
    return macros


def _commands(docs: list[Node], macros: dict[str, str], problems: Problems) -> dict[str, Command]:
    commands: dict[str, Command] = {}
    for doc in docs:
        section = doc.get("commands")
        if section is None:
            continue
        if not isinstance(section, Node):
            problems.add(doc.file, doc.line_of("commands"), "commands: expected a mapping of name: command line")
            continue
        for name, value in section.items():
            cmd = o.read_command(str(name), value, section.file, section.line_of(name), macros, problems)
            if cmd:
                _add(commands, cmd.name, cmd, "command", problems)
    return commands


def _services(docs: list[Node], templates: dict[str, Node], hosts: dict[str, Host],
              host_groups: dict[str, Group], commands: dict[str, Command], macros: dict[str, str],
              problems: Problems) -> dict[tuple[str, str], Service]:
    members = o.hostgroup_members(hosts, host_groups)
    services: dict[tuple[str, str], Service] = {}
    # Entries read before without a problem, by what they say besides host and description
    # (config/service_shapes.py): 100,000 generated entries are mostly one definition repeated.
    shared: dict[tuple[Any, ...], tuple[dict[str, Any], CheckSpec, Schedule, Notify]] = {}
    for doc in docs:
        for node in o.resolved(doc, "services", templates, problems):
            shape = service_shapes.service_shape(node)
            seen = shared.get(shape) if shape is not None else None
            made: Service | None = None
            before = len(problems.items)
            if seen is not None:
                read_d = service_shapes.read_service_own(node, seen[0], problems)
                if read_d is None:
                    continue
                d, check = read_d, seen[1]
            else:
                read = o.read_service_template(node, commands, macros, problems)
                if read is None:
                    continue
                d, check = read
            targets: list[str] = []
            for name in (*d.get("host", ()), *d.get("hosts", ())):
                if name.startswith("!"):
                    continue
                if name not in hosts:
                    problems.add(*node.where_of("host" if "host" in node else "hosts"),
                                 f"service {d['description']!r} on undefined host {name!r}{did_you_mean(name, hosts)}")
                targets.append(name)
            for group in d.get("hostgroups", ()):
                if group not in host_groups and group not in members:
                    problems.add(*node.where_of("hostgroups"),
                                 f"undefined hostgroup {group!r}{did_you_mean(group, members)}")
                targets.extend(sorted(members.get(group, ())))
            excluded = {n[1:] for n in (*d.get("host", ()), *d.get("hosts", ())) if n.startswith("!")}
            if not targets and not any(k in node for k in ("host", "hosts", "hostgroups")):
                problems.add(node.file, node.line, f"service {d['description']!r} applies to no host: "
                                                   "add host:, hosts: or hostgroups:")
            if check is None:
                continue
            for host in dict.fromkeys(targets):
                if host in hosts and host not in excluded:
                    made = o.make_service(host, d, check, node, problems, *(seen[2:] if seen else ()))
                    _add(services, (host, d["description"]), made, "service", problems)
            if seen is None and shape is not None and made is not None and len(problems.items) == before:
                own = {k: v for k, v in d.items() if k not in service_shapes.PER_SERVICE}
                shared[shape] = (own, check, made.schedule, made.notify)
    return services


def _check_embedded(commands: list[Command], plugin_dirs: Sequence[Path], problems: Problems) -> None:
    for cmd in commands:
        if cmd.kind is o.CommandKind.EMBEDDED and not any((d / f"{cmd.plugin}.py").is_file() for d in plugin_dirs):
            problems.add(cmd.where.file, cmd.where.line,
                         f"embedded plugin {cmd.plugin!r} not found in {', '.join(map(str, plugin_dirs))}")


def load_objects(directory: Path | str, plugin_dirs: Sequence[Path] = (),
                 extra_macros: Mapping[str, str] | None = None) -> Objects:
    """Every object file under `directory`, validated as a whole.

    `extra_macros` are the node file's resource macros ($USER3$ passwords that
    should not sit in the shared object files).
    """
    directory = Path(directory)
    problems = Problems()
    docs = _read_docs(directory, problems)
    templates = o.read_templates(docs, problems)
    macros = _macros(docs, extra_macros or {}, problems)
    commands = _commands(docs, macros, problems)
    hosts: dict[str, Host] = {}
    contacts: dict[str, Contact] = {}
    contact_groups: dict[str, Group] = {}
    host_groups: dict[str, Group] = {}
    timeperiods: dict[str, TimePeriod] = {}
    sites: dict[str, Site] = {}
    for doc in docs:                        # sites first: their domains place the hosts
        for node in o.section_items(doc, "sites", problems):
            if site := o.read_site(node, problems):
                _add(sites, site.name, site, "site", problems)
    domains = domain_index(sites, problems)
    for doc in docs:
        for node in o.resolved(doc, "hosts", templates, problems):
            if host := o.read_host(node, commands, macros, domains, problems):
                _add(hosts, host.name, host, "host", problems)
        for node in o.resolved(doc, "contacts", templates, problems):
            if contact := o.read_contact(node, problems):
                _add(contacts, contact.name, contact, "contact", problems)
        for section, table, what in (("contact_groups", contact_groups, "contact group"),
                                     ("hostgroups", host_groups, "hostgroup")):
            for node in o.section_items(doc, section, problems):
                if group := o.read_group(node, problems, what):
                    _add(table, group.name, group, what, problems)
        for node in o.section_items(doc, "timeperiods", problems):
            if tp := o.read_timeperiod(node, problems):
                _add(timeperiods, tp.name, tp, "timeperiod", problems)
    services = _services(docs, templates, hosts, host_groups, commands, macros, problems)
    inline = [s.check.command for s in services.values()] + [h.check.command for h in hosts.values() if h.check]
    inline += [o.event_handler.command for o in (*hosts.values(), *services.values()) if o.event_handler]
    _check_embedded([*commands.values(), *inline], [*plugin_dirs, *SHIPPED_PLUGINS], problems)
    objs = Objects(hosts=hosts, services=services, commands=commands, contacts=contacts,
                   contact_groups=contact_groups, host_groups=host_groups, timeperiods=timeperiods,
                   sites=sites, macros=macros, directory=str(directory))
    objs = dataclasses.replace(objs, dependencies=read_dependencies(docs, objs, problems))
    check_references(objs, problems)
    # Recurring downtimes last: their scopes and periods name the objects above.
    downtimes: dict[str, RecurringDowntime] = {}
    for doc in docs:
        for node in o.section_items(doc, "downtimes", problems):
            if rd := recurring.read(node, objs, problems):
                _add(downtimes, rd.name, rd, "downtime", problems)
    weathermaps = read_weathermaps(docs, objs, problems)
    problems.raise_if_any()
    return dataclasses.replace(objs, downtimes=downtimes, weathermaps=weathermaps) if downtimes or weathermaps \
        else objs


def load_node(path: Path | str) -> tuple[NodeConfig, Objects]:
    """The node file and the objects it points at, both valid, or ConfigError."""
    node = read_node(Path(path))
    objs = load_objects(node.objects, node.plugin_dirs, node.macros)
    unknown = [g for g in node.section("jabber").get("admin_groups", ()) if g not in objs.contact_groups]
    problems = [Problem(node.file, _line_of(node.file, "admin_groups"),
                        f"jabber: admin_groups: no contact group {g!r}{did_you_mean(g, objs.contact_groups)}")
                for g in unknown]
    problems += scope_problems(node.submitters, objs)
    problems += global_handler_problems(node, objs)
    problems += contact_problems(node.section, objs.contacts.values(), node.file)
    problems += report_problems(node.weekly_report, objs, bool(node.section("email")))
    if problems:
        raise ConfigError(problems)
    return node, objs


def global_handler_problems(node: NodeConfig, objs: Objects) -> list[Problem]:
    """`event_handlers: {global_host:, global_service:}` name commands of the objects."""
    problems = []
    for key in ("global_host", "global_service"):
        call = node.section("event_handlers").get(key)
        name = split_call(call)[0] if call else None
        if name is not None and name not in objs.commands:
            problems.append(Problem(node.file, node.lines.get(f"event_handlers.{key}", 1),
                                    f"event_handlers: {key}: undefined command {name!r}"
                                    f"{did_you_mean(name, objs.commands)}; define it under commands: "
                                    f"in the objects ({node.objects})"))
    return problems


def _line_of(file: str, key: str) -> int:
    """The first line of `file` that sets `key` (node files are small)."""
    with open(file, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            if f"{key}:" in text:
                return n
    return 1
