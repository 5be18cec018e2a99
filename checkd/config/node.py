"""The node file given with -c: one `central:` or `poller:` section.

Relative paths are taken from the node file's directory, so a config tree
can be moved as a whole. Secrets may come from files (`token_file:`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checkd import mailtags
from checkd.config import fields as f
from checkd.config.errors import ConfigError, Problem, Problems, did_you_mean
from checkd.config.exports import ExportTarget, read_exports
from checkd.config.integrations import SECTION_KEYS as INTEGRATION_KEYS
from checkd.config.integrations import read_integration, read_webhook_templates
from checkd.config.livestatus import LivestatusConfig, read_livestatus
from checkd.config.model import SSHSettings
from checkd.config.objects import SSH_KEYS
from checkd.config.reports import WeeklyReport, read_reports
from checkd.config.submitters import Submitter, read_submitters
from checkd.config.yamlsource import Node, load_yaml

EMAIL_KEYS = {"smtp_host": f.text, "smtp_port": f.port, "from": f.text, "starttls": f.boolean,
              "tls": f.boolean, "username": f.text, "password": f.text, "password_file": f.text,
              "maildir": f.text, "timeout": f.positive_duration, "subject": f.text}
JABBER_KEYS = {"jid": f.text, "password": f.text, "password_file": f.text, "server": f.text,
               "admins": f.names, "readonly": f.names, "admin_groups": f.names, "room": f.text,
               "nick": f.text, "tls": f.boolean, "ca_file": f.text, "commands_burst": f.positive_int,
               "commands_every": f.positive_duration, "graphs": f.boolean, "upload_service": f.text,
               "upload_timeout": f.positive_duration}
TLS_KEYS = {"cert": f.text, "key": f.text, "ca": f.text}  # no "verify: false", by design
SECTION_KEYS: dict[str, dict[str, f.Converter]] = {
    "email": EMAIL_KEYS, "jabber": JABBER_KEYS, "tls": TLS_KEYS, "ssh": SSH_KEYS,
    "freshness": {"site_stale_after": f.positive_duration, "hold_down": f.duration, "start_grace": f.duration,
                  "contacts": f.names,
                  "contact_groups": f.names},
    "rrd": {"dir": f.text, "rrdcached": f.text, "keep_full": f.positive_duration, "mid_step": f.positive_duration,
            "keep_mid": f.positive_duration, "long_step": f.positive_duration, "keep_long": f.positive_duration,
            "queue": f.positive_int},
    "postgresql": {"dsn": f.text, "password": f.text, "password_file": f.text},
    "webhook": {"timeout": f.positive_duration, "headers": f.string_map, "user_agent": f.text,
                "templates": f.raw},
    **INTEGRATION_KEYS,     # pagerduty:, opsgenie:, slack: (docs/integrations.md)
    "web": {"session_lifetime": f.positive_duration, "refresh": f.positive_duration, "title": f.text,
            "max_rows": f.positive_int, "read": f.text},
    # Failed authentication per client address (checkd/auth_limit.py, docs/security.md).
    "auth_limit": {"failures": f.positive_int, "window": f.positive_duration},
    # What central keeps of the past (docs/retention.md); each a duration, `keep` for those not given.
    "retention": {"keep": f.positive_duration, "events": f.positive_duration, "comments": f.positive_duration,
                  "notifications": f.positive_duration, "downtimes": f.positive_duration,
                  "rrd_removed": f.positive_duration, "batch": f.positive_int},
    "notify": {"storm_threshold": f.positive_int, "storm_window": f.positive_duration,
               "storm_hold": f.positive_duration, "retry_for": f.positive_duration, "templates": f.text,
               "retry_after": f.positive_duration},
    # Nagios' enable_event_handlers, event_handler_timeout, global_host/service_event_handler.
    "event_handlers": {"enabled": f.boolean, "timeout": f.positive_duration, "global_host": f.text,
                       "global_service": f.text},
}
COMMON = {"state_dir": f.text, "objects": f.text, "plugin_dirs": f.names, "log_level": f.text,
          "max_concurrent_checks": f.positive_int, "macros": f.string_map, "email": f.raw,
          "jabber": f.raw, "tls": f.raw, "ssh": f.raw, "event_handlers": f.raw, "webhook": f.raw,
          "notify": f.raw, "pagerduty": f.raw, "opsgenie": f.raw, "slack": f.raw, "auth_limit": f.raw}
CENTRAL_KEYS = {"listen": f.text, "pollers": f.raw, "api_tokens": f.raw, "deploy_tokens": f.raw, "submitters": f.raw,
                "read_tokens": f.raw,
                "freshness": f.raw, "web": f.raw,
                "rrd": f.raw, "reports": f.raw, "store": f.text, "postgresql": f.raw, "public_url": f.url, "max_body": f.positive_int,
                "retention": f.raw, "livestatus": f.raw, "export": f.raw, **COMMON}
POLLER_KEYS = {"name": f.text, "site": f.text, "central": f.urls, "token": f.text, "token_file": f.text,
               "autonomy_after": f.positive_duration, "heartbeat_interval": f.positive_duration,
               "spool_max_bytes": f.positive_int, "batch_size": f.positive_int, "status_listen": f.text,
               "exec_workers": f.non_negative_int, "public_url": f.url, "api_tokens": f.raw,
               **COMMON}
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclasses.dataclass(frozen=True)
class PollerAuth:
    name: str
    token: str
    site: str


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    role: str                            # "central" or "poller"
    file: str
    state_dir: Path
    objects: Path
    name: str = "central"
    site: str = "central"
    listen: tuple[str, int] = ("127.0.0.1", 8080)
    central: str = ""                    # poller: the (first) central's URL
    centrals: tuple[str, ...] = ()       # poller: every central it may send to, in order (docs/ha.md)
    token: str = ""
    store: str = "sqlite"                # central: "sqlite" (state_dir/central.sqlite) or "postgresql"
    pollers: Mapping[str, PollerAuth] = dataclasses.field(default_factory=dict)
    api_tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)
    deploy_tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)   # the deploy hook's
    read_tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)     # reads only (docs/security.md)
    submitters: Mapping[str, Submitter] = dataclasses.field(default_factory=dict)  # passive results (docs/passive.md)
    autonomy_after: float = 60.0
    heartbeat_interval: float = 5.0
    spool_max_bytes: int = 1 << 30
    batch_size: int = 500
    exec_workers: int = dataclasses.field(default_factory=lambda: max(2, os.cpu_count() or 2))
    max_concurrent_checks: int = 256
    max_body: int = 16 << 20
    status_listen: str = ""              # poller: host:port for /metrics and /status ("" = none)
    public_url: str = ""                 # how people reach central (links in alerts and chat); "" = derived
    plugin_dirs: tuple[Path, ...] = ()
    log_level: str = "info"
    macros: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ssh: SSHSettings = SSHSettings()
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    weekly_report: WeeklyReport | None = None   # central: `reports: {weekly: ...}` (docs/availability.md)
    livestatus: LivestatusConfig | None = None  # central: `livestatus:` (docs/livestatus.md)
    exports: tuple[ExportTarget, ...] = ()      # central: `export:` (docs/metrics-export.md)
    lines: Mapping[str, int] = dataclasses.field(default_factory=dict)   # where timing keys are set

    def where(self, key: str) -> str:
        """`file:line` of a setting (`freshness.start_grace`), or of its section when it is not set."""
        return f"{self.file}:{self.lines.get(key, 1)}"

    def templates_dir(self) -> Path | None:
        """Where operators' email template overrides live: `notify: {templates: DIR}`,
        else templates/email/ beside the node file when it exists."""
        base = Path(self.file).resolve().parent
        given = self.section("notify").get("templates")
        if given:
            return base / given
        default = base / "templates" / "email"
        return default if default.is_dir() else None

    def section(self, name: str) -> Mapping[str, Any]:
        """email:, jabber:, tls:, freshness:, rrd: as validated mappings ({} when absent)."""
        return self.sections.get(name, {})


def _tokens(node: Node, keys: tuple[str, ...], problems: Problems) -> dict[str, dict[str, str]]:
    """`api_tokens:`-like mappings of name: token."""
    out = {}
    for key in keys:
        tokens = node.get(key) or {}
        if not isinstance(tokens, dict) or not all(isinstance(v, str) and v for v in tokens.values()):
            problems.add(*node.where_of(key), f"{key}: expected a mapping of name: token")
        else:
            out[key] = {str(k): v for k, v in tokens.items()}
    return out


def _secret(d: dict[str, Any], node: Node, key: str, base: Path, problems: Problems) -> str:
    """`key:` inline or `key_file:` read from disk (first line, stripped)."""
    if key in d:
        return d[key]
    file_key = f"{key}_file"
    if file_key not in d:
        return ""
    path = base / d[file_key]
    try:
        return path.read_text().strip()
    except OSError as e:
        problems.add(*node.where_of(file_key), f"{file_key}: cannot read {path}: {e.strerror}")
        return ""


def _listen(value: str, node: Node, problems: Problems) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        problems.add(*node.where_of("listen"), f"listen: expected HOST:PORT, e.g. 127.0.0.1:8080, got {value!r}")
        return ("127.0.0.1", 8080)
    return (host.strip("[]") or "127.0.0.1", int(port))


def _pollers(value: Any, node: Node, base: Path, problems: Problems) -> dict[str, PollerAuth]:
    if value is None:
        return {}
    if not isinstance(value, Node):
        problems.add(*node.where_of("pollers"), "pollers: expected a mapping of poller name to {token:, site:}")
        return {}
    out = {}
    for name, spec in value.items():
        if not isinstance(spec, Node):
            problems.add(value.file, value.line_of(name), f"pollers: {name}: expected {{token: ..., site: ...}}")
            continue
        d = f.convert(spec, {"token": f.text, "token_file": f.text, "site": f.text}, problems, f"poller {name!r}")
        token = _secret(d, spec, "token", base, problems)
        if not token or not d.get("site"):
            problems.add(spec.file, spec.line, f"pollers: {name}: needs a token (or token_file) and a site")
            continue
        out[str(name)] = PollerAuth(str(name), token, d["site"])
    return out


def _check_channels(sections: dict[str, dict[str, Any]], node: Node, base: Path, problems: Problems) -> None:
    """What the email and Jabber channels need, reported at load rather than at the first alert."""
    email = sections.get("email")
    if email is not None:
        where = node.where_of("email")
        if not email.get("smtp_host") and not email.get("maildir"):
            problems.add(*where, "email: give smtp_host (an SMTP relay) or maildir (a local mail spool)")
        if email.get("starttls") and email.get("tls"):
            problems.add(*where, "email: starttls and tls exclude each other (tls is SMTP over TLS, port 465)")
        if bool(email.get("username")) != bool(email.get("password")):
            problems.add(*where, "email: username and password (or password_file) go together")
        if not email.get("from"):
            problems.add(*where, "email: missing `from: checkd@example.com`")
        if "subject" in email:
            why = mailtags.subject_problem(email["subject"])
            if why is not None:
                problems.add(*node["email"].where_of("subject"), f"email: subject: {why}")
    templates = sections.get("notify", {}).get("templates")
    if templates and not (base / templates).is_dir():
        problems.add(*node["notify"].where_of("templates"),
                     f"notify: templates: directory {base / templates} does not exist "
                     "(it holds overrides of notification.txt.j2 and summary.txt.j2)")
    jabber = sections.get("jabber")
    if jabber is not None and (not jabber.get("jid") or not jabber.get("password")):
        problems.add(*node.where_of("jabber"), "jabber: needs jid and password (or password_file)")
    _check_rrd(sections.get("rrd"), node, problems)


def _check_rrd(rrd: dict[str, Any] | None, node: Node, problems: Problems) -> None:
    """The archive layout new RRD files get (docs/graphs.md): it can never change for a file."""
    if rrd is None:
        return
    where = node["rrd"].where_of
    if rrd.get("keep_full", 8 * 86400) < 8 * 86400:
        problems.add(*where("keep_full"), "rrd: keep_full must be at least 8d: the week-over-week line "
                                          "compares with values a week and a graph's width old")
    mid, long = rrd.get("mid_step", 1800), rrd.get("long_step", 86400)
    if mid >= long:
        problems.add(*where("mid_step"), "rrd: mid_step must be shorter than long_step")
    for step, keep, name in ((mid, rrd.get("keep_mid", 60 * 86400), "keep_mid"),
                             (long, rrd.get("keep_long", 730 * 86400), "keep_long")):
        if keep < step:
            problems.add(*where(name), f"rrd: {name} must be at least one step of its archive")


def read_node(path: Path) -> NodeConfig:
    doc = load_yaml(path)
    if not isinstance(doc, Node) or len(doc) != 1 or next(iter(doc)) not in ("central", "poller"):
        raise ConfigError([Problem(str(path), getattr(doc, "line", 1),
                                   "a node file holds exactly one section, `central:` or `poller:`")])
    role = next(iter(doc))
    node = doc[role]
    if not isinstance(node, Node):
        raise ConfigError([Problem(str(path), doc.line_of(role), f"{role}: expected a mapping of settings")])
    problems = Problems()
    d = f.convert(node, CENTRAL_KEYS if role == "central" else POLLER_KEYS, problems, role)
    base = path.resolve().parent
    sections: dict[str, dict[str, Any]] = {}
    for name, keys in SECTION_KEYS.items():
        sub = node.get(name)
        if sub is None or name not in d:
            continue
        if not isinstance(sub, Node):
            problems.add(*node.where_of(name), f"{name}: expected a mapping")
            continue
        sections[name] = f.convert(sub, keys, problems, f"{name} settings")
    for name in ("email", "jabber", "postgresql"):
        if name in sections:
            pw = _secret(sections[name], node[name], "password", base, problems)
            sections[name] = {**sections[name], "password": pw} if pw else sections[name]
    for name in INTEGRATION_KEYS:
        if name in sections:
            sections[name] = read_integration(name, sections[name], node, base, problems, _secret)
    if "webhook" in sections and "templates" in sections["webhook"]:
        sections["webhook"] = {**sections["webhook"], "templates": read_webhook_templates(
            node["webhook"].get("templates"), node["webhook"], base, problems)}
    _check_channels(sections, node, base, problems)
    for key in ("state_dir", "objects"):
        if key not in d:
            problems.add(node.file, node.line, f"{role}: missing `{key}: ...`")
    level = d.get("log_level", "info").lower()
    if level not in LOG_LEVELS:
        problems.add(*node.where_of("log_level"), f"log_level: one of {', '.join(LOG_LEVELS)}{did_you_mean(level, LOG_LEVELS)}")
    kw: dict[str, Any] = {}
    if role == "central":
        kw["listen"] = _listen(d.get("listen", "127.0.0.1:8080"), node, problems)
        kw["pollers"] = _pollers(node.get("pollers"), node, base, problems)
        kw["submitters"] = read_submitters(node.get("submitters"), node, base, problems, _secret)
        kw.update(_tokens(node, ("api_tokens", "deploy_tokens", "read_tokens"), problems))
        _check_read(sections.get("web", {}), kw.get("read_tokens", {}), kw.get("api_tokens", {}), node, problems)
        kw["store"] = _store(d, sections, node, problems)
        kw["weekly_report"] = read_reports(node.get("reports"), node, problems)
        kw["livestatus"] = read_livestatus(node.get("livestatus"), node, base, problems)
        kw["exports"] = read_exports(node.get("export"), node, problems)
    else:
        for key in ("name", "site", "central"):
            if key not in d:
                problems.add(node.file, node.line, f"poller: missing `{key}: ...`")
        centrals = d.get("central", ("",))
        kw.update(name=d.get("name", "poller"), site=d.get("site", "?"), central=centrals[0], centrals=centrals,
                  token=_secret(d, node, "token", base, problems))
        if not kw["token"]:
            problems.add(node.file, node.line, "poller: missing `token:` (or `token_file:`) for central")
        # Operators' token for acting at the poller while it alerts on its own (docs/failover.md).
        kw.update(_tokens(node, ("api_tokens",), problems))
        if kw.get("api_tokens") and "status_listen" not in d:
            problems.add(*node.where_of("api_tokens"), "api_tokens: operators reach the poller on status_listen; "
                         "add `status_listen: 127.0.0.1:9101` (or remove api_tokens)")
        if "status_listen" in d:
            kw["status_listen"] = d["status_listen"]
            if not _is_listen(d["status_listen"]):
                problems.add(*node.where_of("status_listen"),
                             "status_listen: expected HOST:PORT, e.g. 127.0.0.1:9101")
        for key in ("autonomy_after", "heartbeat_interval", "spool_max_bytes", "batch_size", "exec_workers"):
            if key in d:
                kw[key] = d[key]
    if role == "central" and "max_body" in d:
        kw["max_body"] = d["max_body"]
    if "public_url" in d:               # a poller's: central's pages, for links in its own alerts
        kw["public_url"] = d["public_url"]
    if "max_concurrent_checks" in d:
        kw["max_concurrent_checks"] = d["max_concurrent_checks"]
    if "ssh" in sections:
        kw["ssh"] = SSHSettings(**sections["ssh"])
    objects = base / d.get("objects", ".")
    if "objects" in d and not objects.is_dir():
        problems.add(*node.where_of("objects"), f"objects: directory {objects} does not exist")
    problems.raise_if_any()
    fresh = node.get("freshness")
    lines = {key: node.line_of(key) if key in d else node.line for key in ("heartbeat_interval", "store")}
    for key in ("site_stale_after", "start_grace"):
        lines[f"freshness.{key}"] = (fresh.line_of(key) if isinstance(fresh, Node) and key in fresh
                                     else node.line_of("freshness") if "freshness" in d else node.line)
    handlers = node.get("event_handlers")
    for key in ("global_host", "global_service"):
        if isinstance(handlers, Node) and key in handlers:
            lines[f"event_handlers.{key}"] = handlers.line_of(key)
    return NodeConfig(role=role, file=str(path), state_dir=base / d["state_dir"], objects=objects,
                      plugin_dirs=tuple(base / p for p in d.get("plugin_dirs", ())), log_level=level,
                      macros=d.get("macros", {}), sections=sections, lines=lines, **kw)


STORES = ("sqlite", "postgresql")
READ_MODES = ("open", "login")


def _check_read(web: Mapping[str, Any], read_tokens: Mapping[str, str], api_tokens: Mapping[str, str], node: Node,
                problems: Problems) -> None:
    """`web: {read: open|login}`: who may read the pages and the read API (docs/security.md)."""
    mode = web.get("read", "open")
    where = node["web"].where_of("read") if isinstance(node.get("web"), Node) else (node.file, node.line)
    if mode not in READ_MODES:
        problems.add(*where, f"web: read: one of {', '.join(READ_MODES)}{did_you_mean(mode, READ_MODES)}")
    elif mode == "login" and not (read_tokens or api_tokens):
        problems.add(*where, "web: read: login needs someone to log in: add read_tokens: (or api_tokens:)")
    both = sorted(set(read_tokens.values()) & set(api_tokens.values()))
    if both:
        problems.add(*node.where_of("read_tokens"), "read_tokens: a token that is also in api_tokens would "
                     "read with the rights of both; give read_tokens tokens of their own")


def _store(d: dict[str, Any], sections: dict[str, dict[str, Any]], node: Node, problems: Problems) -> str:
    store = d.get("store", "sqlite")
    if store not in STORES:
        problems.add(*node.where_of("store"), f"store: one of {', '.join(STORES)}{did_you_mean(store, STORES)}")
        return "sqlite"
    if store == "postgresql" and not sections.get("postgresql", {}).get("dsn"):
        pg = node.get("postgresql")
        problems.add(*(pg.where_of("dsn") if isinstance(pg, Node) else node.where_of("store")),
                     "store: postgresql needs `postgresql: {dsn: \"host=... dbname=... user=...\"}` "
                     "(a libpq connection string or postgresql:// URL; the password in password_file:)")
    elif store == "sqlite" and "postgresql" in sections:
        problems.add(*node.where_of("postgresql"), "postgresql: settings are used only with `store: postgresql`")
    return store


def _is_listen(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536
