"""The node file's `pagerduty:`, `opsgenie:` and `slack:` sections, and the webhook's
templates: read whole at load, secrets taken from the file or a `*_file`, so a
contact's `pagerduty: ops` names a routing key the objects never hold.

Each reader returns the section as a plain mapping with its secrets filled in
(docs/integrations.md); problems name the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from checkd.config import fields as f
from checkd.config.errors import Problem, Problems, did_you_mean
from checkd.config.yamlsource import Node

Secret = Callable[[dict[str, Any], Node, str, Path, Problems], str]

PAGERDUTY_URL = "https://events.pagerduty.com"
OPSGENIE_URL = "https://api.opsgenie.com"
SLACK_URL = "https://slack.com/api"

SECTION_KEYS: dict[str, dict[str, f.Converter]] = {
    "pagerduty": {"url": f.url, "timeout": f.positive_duration, "services": f.raw, "webhook_secret": f.text,
                  "webhook_secret_file": f.text},
    "opsgenie": {"url": f.url, "timeout": f.positive_duration, "teams": f.raw, "webhook_token": f.text,
                 "webhook_token_file": f.text, "webhook_header": f.text},
    "slack": {"url": f.url, "timeout": f.positive_duration, "token": f.text, "token_file": f.text,
              "webhooks": f.raw, "update_parent": f.boolean, "signing_secret": f.text,
              "signing_secret_file": f.text},
}
# name: the key a named entry holds (a routing key, an API key, an incoming webhook's URL).
ENTRIES = {"pagerduty": ("services", "routing_key"), "opsgenie": ("teams", "api_key"),
           "slack": ("webhooks", "url")}
INBOUND = {"pagerduty": "webhook_secret", "opsgenie": "webhook_token", "slack": "signing_secret"}


def read_integration(name: str, d: dict[str, Any], node: Node, base: Path, problems: Problems,
                     secret: Secret) -> dict[str, Any]:
    """One section: its named entries each with its secret, the inbound secret filled in."""
    out = dict(d)
    section = node[name]
    entries_key, key = ENTRIES[name]
    entries: dict[str, str] = {}
    raw = section.get(entries_key)
    if raw is not None and not isinstance(raw, Node):
        problems.add(*section.where_of(entries_key),
                     f"{name}: {entries_key}: expected a mapping of name to {{{key}: ...}} or {{{key}_file: ...}}")
    for entry, spec in (raw or {}).items():
        if not isinstance(spec, Node):
            problems.add(raw.file, raw.line_of(entry),
                         f"{name}: {entries_key}: {entry}: expected {{{key}: ...}} or {{{key}_file: ...}}")
            continue
        conv = f.url if key == "url" else f.text
        e = f.convert(spec, {key: conv, f"{key}_file": f.text}, problems, f"{name} {entries_key} {entry!r}")
        value = secret(e, spec, key, base, problems)
        if not value:
            if key not in spec and f"{key}_file" not in spec:    # else reported at its own line already
                problems.add(spec.file, spec.line, f"{name}: {entries_key}: {entry}: needs {key} or {key}_file")
            continue
        entries[str(entry)] = value
    out[entries_key] = entries
    inbound = INBOUND[name]
    out[inbound] = secret(d, section, inbound, base, problems)
    out.pop(f"{inbound}_file", None)
    if name == "slack":
        out["token"] = secret(d, section, "token", base, problems)
        out.pop("token_file", None)
    return out


def read_webhook_templates(value: Any, node: Node, base: Path, problems: Problems) -> dict[str, str]:
    """`webhook: {templates: {NAME: FILE}}`: each a Jinja2 template of a JSON body, tried on a
    sample notification at load so a template that cannot give JSON is refused here."""
    if value is None:
        return {}
    where = node.where_of("templates")
    if not isinstance(value, Node):
        problems.add(*where, "webhook: templates: expected a mapping of name to a template file")
        return {}
    out = {}
    for name, file in value.items():
        line = value.line_of(name)
        path = base / str(file)
        try:
            text = path.read_text()
        except OSError as e:
            problems.add(value.file, line, f"webhook: templates: {name}: cannot read {path}: {e.strerror}")
            continue
        why = template_problem(text)
        if why:
            problems.add(value.file, line, f"webhook: templates: {name} ({path}): {why}")
            continue
        out[str(name)] = text
    return out


SAMPLE = {"event_id": 1, "notification_id": 1, "type": "PROBLEM", "label": "CRITICAL",
          "subject": "db1/Disk / CRITICAL [ID#:1]", "host": "db1", "service": "Disk /", "state": "CRITICAL",
          "site": "ladc1", "output": "DISK CRITICAL - \"quoted\" \\ text", "long_output": "line 1\nline 2",
          "since": 1.0, "created": 2.0, "duration_s": 1.0, "escalation_level": 1, "author": "", "comment": "",
          "runbook": "", "notes": "", "via": "central", "summary_ids": [], "contact": "ops", "url": "http://x/event/1",
          "dedup_key": "checkd-1"}


def template_environment() -> jinja2.Environment:
    """StrictUndefined: a misspelt field is an error, not an empty string in the JSON."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def template_problem(text: str) -> str:
    """Why a webhook template cannot be used ("" when it renders valid JSON from the sample)."""
    env = template_environment()
    try:
        unknown = sorted(jinja2.meta.find_undeclared_variables(env.parse(text)) - set(SAMPLE))
        if unknown:
            return (f"unknown field {', '.join(unknown)}{did_you_mean(unknown[0], SAMPLE)}; "
                    f"fields: {', '.join(sorted(SAMPLE))}")
        body = env.from_string(text).render(SAMPLE)
    except jinja2.TemplateSyntaxError as e:
        return f"template line {e.lineno}: {e.message}"
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as e:
        return f"cannot render: {type(e).__name__}: {e}"
    try:
        json.loads(body)
    except ValueError as e:
        return (f"does not render valid JSON ({e}); put text fields through `| tojson`, "
                "e.g. {\"text\": {{ subject | tojson }}}")
    return ""


def contact_problems(section: Callable[[str], Any], contacts: Any, node_file: str) -> list[Problem]:
    """Each contact's `pagerduty:`, `opsgenie:`, `slack:` and `webhook_template:` name something
    the node file defines (`section(name)`: the node file's validated sections). A node file
    without that section is no error: a poller may leave a channel to central (a warning
    at start says so, as for email)."""
    out = []
    for c in contacts:
        where = (c.where.file, c.where.line)
        for attr, (entries_key, _key) in ENTRIES.items():
            name = getattr(c, attr)
            if not name or not section(attr):
                continue
            known = section(attr).get(entries_key, {})
            if name in known or (attr == "slack" and section("slack").get("token")):
                continue
            if attr == "slack":
                fix = (f"name one of `slack: {{webhooks:}}` in {node_file} ({', '.join(sorted(known)) or 'none'}), "
                       "or give `slack: {token_file: ...}` there to post to a channel")
            else:
                fix = (f"no {attr}: {entries_key}: {name!r} in {node_file}{did_you_mean(name, known)}; "
                       f"known: {', '.join(sorted(known)) or 'none'}")
            out.append(Problem(*where, f"contact {c.name}: {attr}: {fix}"))
        if c.webhook_template:
            known = section("webhook").get("templates", {})
            if c.webhook_template not in known:
                out.append(Problem(*where, f"contact {c.name}: webhook_template: no `webhook: {{templates: "
                                           f"{{{c.webhook_template}: FILE}}}}` in {node_file}"
                                           f"{did_you_mean(c.webhook_template, known)}"))
            if not c.webhook:
                out.append(Problem(*where, f"contact {c.name}: webhook_template needs `webhook: URL`"))
    return out
