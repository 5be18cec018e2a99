"""Email channel: turns a Notification into a mail and hands it to SMTP or a Maildir.

The subject and the X-Checkd-* headers are a contract with operators' mail
filters; the body is a Jinja2 text template operators may override.
Failures become DeliveryError, retryable unless the server refused for good.
"""

from __future__ import annotations

import asyncio
import email.message
import email.policy
import email.utils
import importlib.util
import mailbox
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from central.notify.notification import DeliveryError, Kind, Notification
from checkd.durations import format_duration, parse_duration

PACKAGED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
SETTINGS = frozenset({"smtp_host", "smtp_port", "from", "starttls", "tls",
                      "username", "password", "maildir", "timeout"})
# Headers stay on one line up to SMTP's 998-character limit: filters such as
# procmail's `^Subject: RECOVERY` and people grepping a spool expect that.
# 7bit: non-ASCII output is encoded, so no relay needs 8BITMIME.
_POLICY = email.policy.default.clone(max_line_length=998, cte_type="7bit")
_LINE_BREAKS = re.compile(r"[\r\n\x00-\x1f\x7f]+")


def one_line(text: str) -> str:
    """Header-safe text: control characters (CR/LF above all) collapse to one space."""
    return _LINE_BREAKS.sub(" ", text).strip()


TEMPLATE_NAMES = ("notification.txt.j2", "summary.txt.j2")


def load_templates(templates_dir: Path | None) -> dict[str, jinja2.Template]:
    """The body templates: operator overrides in `templates_dir` first, then the packaged ones."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))   # operator overrides first
    loaders.append(jinja2.FileSystemLoader(str(PACKAGED_TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders), autoescape=False,   # plain text, not HTML
        undefined=jinja2.StrictUndefined,   # a typo in an override fails loudly, not blank
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return {name: env.get_template(name) for name in TEMPLATE_NAMES}


def template_problems(templates_dir: Path | None) -> list[str]:
    """`FILE:LINE: message` for each override template that does not compile (check-config)."""
    try:
        load_templates(templates_dir)
    except jinja2.TemplateSyntaxError as e:
        return [f"{e.filename}:{e.lineno}: email template: {e.message}"]
    return []


class EmailChannel:
    """Sends one Notification as one mail; `settings` is the node file's `email:` section."""

    def __init__(self, settings: Mapping[str, Any], templates_dir: Path | None = None,
                 now: Callable[[], float] = time.time):
        unknown = set(settings) - SETTINGS
        if unknown:
            raise ValueError(f"email: unknown settings {sorted(unknown)}; known: {sorted(SETTINGS)}")
        if not settings.get("smtp_host") and not settings.get("maildir"):
            raise ValueError("email: set smtp_host, or maildir for a local spool")
        if settings.get("starttls") and settings.get("tls"):
            raise ValueError("email: starttls and tls exclude each other (tls is implicit TLS, port 465)")
        if bool(settings.get("username")) != bool(settings.get("password")):
            raise ValueError("email: username and password go together")
        if settings.get("smtp_host") and importlib.util.find_spec("aiosmtplib") is None:
            raise ValueError("email: smtp_host needs aiosmtplib (Debian: python3-aiosmtplib)")
        self.settings = dict(settings)
        self.timeout = parse_duration(settings.get("timeout", 30))   # "30s" or 30
        self.sender = one_line(str(settings.get("from") or "checkd@localhost"))
        self.now = now
        # Loaded now so a broken override template fails at startup, not at 3 a.m.
        self.templates = load_templates(templates_dir)

    @property
    def endpoint(self) -> str:
        return f"{self.settings['smtp_host']}:{self.port}"

    @property
    def port(self) -> int:
        default = 465 if self.settings.get("tls") else 25
        return int(self.settings.get("smtp_port") or default)

    def render(self, n: Notification) -> str:
        name = "summary.txt.j2" if n.kind is Kind.SUMMARY else "notification.txt.j2"
        text = self.templates[name].render(
            n=n, kind=n.kind.value, duration=format_duration(max(0.0, n.created - n.since)),
            since=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(n.since)))
        # Plugin output may carry CRs; normalise so the body has one line-ending style.
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def build(self, n: Notification) -> email.message.EmailMessage:
        msg = email.message.EmailMessage(policy=_POLICY)
        domain = self.sender.rpartition("@")[2] or "localhost"
        if n.log_id:
            # Stable per logged notification: the one message a crash may repeat carries the
            # same Message-ID, and mail stores (Gmail, Dovecot's dedup) keep one copy.
            msg["Message-ID"] = f"<checkd.{n.event_id}.{n.log_id}.{n.kind.value.lower()}@{domain}>"
        else:
            # An explicit domain: make_msgid would otherwise call getfqdn(), which can block on DNS.
            msg["Message-ID"] = email.utils.make_msgid(f"checkd.{n.event_id}", domain=domain)
        msg["Date"] = email.utils.formatdate(self.now(), usegmt=True)
        msg["From"] = self.sender
        msg["To"] = one_line(n.address)
        msg["Subject"] = one_line(n.subject)
        msg["Auto-Submitted"] = "auto-generated"   # RFC 3834: no vacation replies to alerts
        msg["X-Checkd-Event-ID"] = str(n.event_id)
        msg["X-Checkd-State"] = one_line(n.state)
        msg["X-Checkd-Site"] = one_line(n.site)
        msg["X-Checkd-Type"] = n.kind.value
        msg.set_content(self.render(n))
        if n.graph_png:
            msg.add_attachment(n.graph_png, maintype="image", subtype="png",
                               filename=f"checkd-{n.event_id}.png")
        return msg

    async def send(self, n: Notification) -> None:
        try:
            msg = self.build(n)
        except (ValueError, TypeError, jinja2.TemplateError) as e:
            # A bad address or template will be just as bad next time.
            raise DeliveryError(f"email to {n.address!r}: cannot build message: {e}", retryable=False) from e
        if self.settings.get("smtp_host"):
            await self._smtp(msg)
        else:
            await self._maildir(msg)

    async def _smtp(self, msg: email.message.EmailMessage) -> None:
        import aiosmtplib   # only central's extra installs it; a Maildir-only setup does without

        s = self.settings
        try:
            # Only arguments aiosmtplib 2.0 (Debian 12) already accepts.
            # Flattened here, not by aiosmtplib, whose own policy would fold the Subject.
            await aiosmtplib.send(
                msg.as_bytes(policy=_POLICY.clone(linesep="\r\n")),
                sender=email.utils.parseaddr(self.sender)[1],
                recipients=[email.utils.parseaddr(str(msg["To"]))[1]],
                hostname=s["smtp_host"], port=self.port,
                start_tls=bool(s.get("starttls")), use_tls=bool(s.get("tls")),
                username=s.get("username") or None, password=s.get("password") or None,
                timeout=self.timeout)
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            reasons = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
            raise DeliveryError(f"SMTP {self.endpoint}: recipients refused: {reasons}",
                                retryable=any(c < 500 for c in codes)) from e
        except aiosmtplib.SMTPResponseException as e:
            # 4xx is the server asking us to come back later; 5xx is a refusal.
            raise DeliveryError(f"SMTP {self.endpoint}: {e.code} {e.message}",
                                retryable=e.code < 500) from e
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError,
                aiosmtplib.SMTPServerDisconnected, asyncio.TimeoutError, OSError) as e:
            raise DeliveryError(f"SMTP {self.endpoint}: {type(e).__name__}: {e}", retryable=True) from e
        except aiosmtplib.SMTPException as e:
            # e.g. STARTTLS asked for but not offered: configuration, not luck.
            raise DeliveryError(f"SMTP {self.endpoint}: {e}", retryable=False) from e

    async def _maildir(self, msg: email.message.EmailMessage) -> None:
        path = str(self.settings["maildir"])

        def deliver() -> None:
            # makedirs too: create=True alone fails on an existing, empty directory.
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(path, sub), exist_ok=True)
            mailbox.Maildir(path, create=False).add(msg)

        try:
            await asyncio.to_thread(deliver)   # disk stays off the event loop
        except OSError as e:
            # A full disk clears; retrying is cheap and the retry stage bounds it.
            raise DeliveryError(f"maildir {path}: {e}", retryable=True) from e
