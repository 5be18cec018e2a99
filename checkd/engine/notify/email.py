"""Email channel: turns a Notification into a mail and hands it to SMTP or a Maildir.

The subject and the X-Checkd-* headers are a contract with operators' mail
filters; `subject:` may wrap the subject in a tag and a contact's address may
carry the kind as a sub-address (ops+critical@...), for filters that cannot
read headers. The body is a Jinja2 text template operators may override.
Failures become DeliveryError, retryable unless the server refused for good.
"""

from __future__ import annotations

import asyncio
import email.headerregistry
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

from checkd.engine.notify.notification import DeliveryError, Kind, Notification
from checkd.engine.notify.recipients import mail_address
from checkd import mailtags
from checkd.durations import format_duration, parse_duration

PACKAGED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
SETTINGS = frozenset({"smtp_host", "smtp_port", "from", "starttls", "tls",
                      "username", "password", "maildir", "timeout", "subject"})


class _HeaderClasses(email.headerregistry.HeaderRegistry):
    """The standard header registry, but each header class is made once.

    The stock one builds a fresh class with type() for every header set, parsed or
    folded (dozens per message), which was the largest single cost of build().
    The classes, and so the headers and their output, are the same."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[type, type] = {}

    def __getitem__(self, name: str) -> type:
        cls = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(cls)
        if made is None:
            made = self._made[cls] = super().__getitem__(name)
        return made


# Headers whose values repeat from mail to mail (the sender, a contact's address, the
# state, the site, the kind): each (name, value) is parsed and folded once, not per mail.
# In a storm of 1,000 mails a second, parsing and folding headers was the largest part of
# build() (bench/notify_latency.py --problems 1000). Header objects are immutable.
_REPEATING = frozenset({"from", "to", "auto-submitted", "x-checkd-state", "x-checkd-site", "x-checkd-type",
                        "content-type", "content-transfer-encoding", "mime-version"})
_CACHE_SIZE = 4096
_parsed: dict[tuple[str, str], Any] = {}
_folded: dict[tuple[str, str, str], bytes] = {}


class _Policy(email.policy.EmailPolicy):
    """The default policy, with the repeating headers' folded form kept (`_REPEATING`)."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() not in _REPEATING:
            return super().fold_binary(name, value)
        key = (name, str(value), self.linesep)
        done = _folded.get(key)
        if done is None:
            if len(_folded) >= _CACHE_SIZE:
                _folded.clear()
            done = _folded[key] = super().fold_binary(name, value)
        return done


def _header(name: str, value: str) -> Any:
    """The parsed header for `name: value`, made once for the repeating ones."""
    if name.lower() not in _REPEATING:
        return value
    h = _parsed.get((name, value))
    if h is None:
        if len(_parsed) >= _CACHE_SIZE:
            _parsed.clear()
        h = _parsed[(name, value)] = _POLICY.header_factory(name, value)
    return h


# Headers stay on one line up to SMTP's 998-character limit: filters such as
# procmail's `^Subject: RECOVERY` and people grepping a spool expect that.
# 7bit: non-ASCII output is encoded, so no relay needs 8BITMIME.
_POLICY = _Policy(max_line_length=998, cte_type="7bit", header_factory=_HeaderClasses())
_WIRE_POLICY = _POLICY.clone(linesep="\r\n")    # SMTP's line ending, made once
_LINE_BREAKS = re.compile(r"[\r\n\x00-\x1f\x7f]+")


def one_line(text: str) -> str:
    """Header-safe text: control characters (CR/LF above all) collapse to one space."""
    return _LINE_BREAKS.sub(" ", text).strip()


TEMPLATE_NAMES = ("notification.txt.j2", "summary.txt.j2")
# SMTP connections are kept open between messages: at most POOL_SIZE idle ones (the
# dispatcher's email workers: one each), each closed after IDLE_CLOSE seconds unused.
POOL_SIZE = 8
IDLE_CLOSE = 30.0
QUIT_TIMEOUT = 5.0


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


def _plain_text_headers() -> list[tuple[str, Any]]:
    """The headers set_content gives a 7bit text/plain body, as parsed header objects."""
    msg = email.message.EmailMessage(policy=_POLICY)
    msg.set_content("x\n")
    return msg.items()


_PLAIN_TEXT = _plain_text_headers()


def set_text(msg: email.message.EmailMessage, text: str) -> None:
    """msg.set_content(text), the same headers and payload, without re-parsing the same
    three MIME headers for every mail when the text is ASCII with lines SMTP can carry
    as they are (7bit; half of build()'s time in a storm). Anything else: set_content."""
    lines = text.encode("ascii", "replace").splitlines() if text.isascii() else None
    if lines is None or any(len(line) > _POLICY.max_line_length for line in lines):
        msg.set_content(text)
        return
    for name, value in _PLAIN_TEXT:
        msg[name] = value
    msg.set_payload(b"\n".join(lines).decode("ascii") + "\n")


class EmailChannel:
    """Sends one Notification as one mail; `settings` is the node file's `email:` section."""

    carries_graphs = True               # the dispatcher attaches the trend graph

    def __init__(self, settings: Mapping[str, Any], templates_dir: Path | None = None,
                 now: Callable[[], float] = time.time, links: Callable[[Notification], str] | None = None):
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
        self.subject_template = str(settings.get("subject") or mailtags.DEFAULT_SUBJECT)
        why = mailtags.subject_problem(self.subject_template)
        if why is not None:
            raise ValueError(f"email: subject: {why}")
        self.settings = dict(settings)
        self.timeout = parse_duration(settings.get("timeout", 30))   # "30s" or 30
        self.sender = one_line(str(settings.get("from") or "checkd@localhost"))
        self._envelope_from = email.utils.parseaddr(self.sender)[1]   # MAIL FROM, parsed once
        self.now = now
        self.links = links                  # the event page each body links to (checkd/engine/notify/links.py)
        # Loaded now so a broken override template fails at startup, not at 3 a.m.
        self.templates = load_templates(templates_dir)
        # Open SMTP connections between messages: (connection, idle since, its loop).
        self._idle: list[tuple[Any, float, asyncio.AbstractEventLoop]] = []
        self._reaper: tuple[asyncio.TimerHandle, asyncio.AbstractEventLoop] | None = None
        self._quits: set[asyncio.Task[None]] = set()

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
            n=n, kind=n.kind.value, duration=format_duration(n.created - n.since),
            link=self.links(n) if self.links else "",
            since=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(n.since)),
            until=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(n.until)))
        # Plugin output may carry CRs; normalise so the body has one line-ending style.
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def subject(self, n: Notification) -> str:
        """`subject:` filled in; without one, exactly Notification.subject."""
        if self.subject_template == mailtags.DEFAULT_SUBJECT:
            return n.subject
        return mailtags.fill(self.subject_template, {"subject": n.subject, "label": n.label,
                                                     "type": n.kind.value, "state": n.state, "site": n.site})

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
        msg["From"] = _header("From", self.sender)
        msg["To"] = _header("To", one_line(mail_address(n)))
        msg["Subject"] = one_line(self.subject(n))
        msg["Auto-Submitted"] = _header("Auto-Submitted", "auto-generated")   # RFC 3834: no vacation replies to alerts
        msg["X-Checkd-Event-ID"] = str(n.event_id)
        msg["X-Checkd-State"] = _header("X-Checkd-State", one_line(n.state))
        msg["X-Checkd-Site"] = _header("X-Checkd-Site", one_line(n.site))
        msg["X-Checkd-Type"] = _header("X-Checkd-Type", n.kind.value)
        set_text(msg, self.render(n))
        if n.graph_png:
            msg.add_attachment(n.graph_png, maintype="image", subtype="png",
                               filename=f"checkd-{n.event_id}.png")
        return msg

    async def send(self, n: Notification) -> None:
        try:
            msg = self.build(n)
        except (ValueError, TypeError, KeyError, jinja2.TemplateError) as e:
            # A bad address or template will be just as bad next time.
            raise DeliveryError(f"email to {n.address!r}: cannot build message: {e}", retryable=False) from e
        await self._deliver(msg, [email.utils.parseaddr(str(msg["To"]))[1]])

    async def send_report(self, to: list[str], subject: str, body: str,
                          attachment: tuple[str, str, bytes] | None = None) -> None:
        """A report (not about one event: docs/availability.md) as one mail to every address
        in `to`; `attachment`: (file name, MIME type, content). DeliveryError as `send`."""
        msg = email.message.EmailMessage(policy=_POLICY)
        domain = self.sender.rpartition("@")[2] or "localhost"
        msg["Message-ID"] = email.utils.make_msgid("checkd.report", domain=domain)
        msg["Date"] = email.utils.formatdate(self.now(), usegmt=True)
        msg["From"] = self.sender
        msg["To"] = ", ".join(one_line(a) for a in to)
        msg["Subject"] = one_line(subject)
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Checkd-Type"] = "REPORT"
        msg.set_content(body)
        if attachment is not None:
            name, mime, content = attachment
            maintype, _, subtype = mime.partition("/")
            msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
        await self._deliver(msg, [email.utils.parseaddr(a)[1] for a in to])

    async def _deliver(self, msg: email.message.EmailMessage, recipients: list[str]) -> None:
        if self.settings.get("smtp_host"):
            await self._smtp(msg, recipients)
        else:
            await self._maildir(msg)

    async def _smtp(self, msg: email.message.EmailMessage, recipients: list[str]) -> None:
        import aiosmtplib   # only central's extra installs it; a Maildir-only setup does without

        # Flattened here, not by aiosmtplib, whose own policy would fold the Subject.
        data = msg.as_bytes(policy=_WIRE_POLICY)
        sender = self._envelope_from
        try:
            smtp = self._take()
            if smtp is not None:
                try:
                    await smtp.sendmail(sender, recipients, data)
                except BaseException as e:
                    self._drop(smtp)
                    if not _stale(e):
                        raise
                    # The server closed it while it sat idle: once more on a fresh one.
                else:
                    self._put_back(smtp)
                    return
            smtp = await self._connect()
            try:
                await smtp.sendmail(sender, recipients, data)
            except BaseException:
                self._drop(smtp)
                raise
            self._put_back(smtp)
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

    # --- the connection pool ------------------------------------------------------------
    # Open connections wait in `_idle` (most recently used last) between messages; each
    # is used by one send at a time. At most POOL_SIZE wait; one idle for IDLE_CLOSE is
    # closed with QUIT, and close() closes them all.

    async def _connect(self) -> Any:
        import aiosmtplib

        s = self.settings
        # Only arguments aiosmtplib 2.0 (Debian 12) already accepts. start_tls=False is
        # explicit: its default (None) upgrades whenever the server offers STARTTLS.
        smtp = aiosmtplib.SMTP(
            hostname=s["smtp_host"], port=self.port,
            use_tls=bool(s.get("tls")), start_tls=bool(s.get("starttls")),
            username=s.get("username") or None, password=s.get("password") or None,
            timeout=self.timeout)
        try:
            await smtp.connect()   # + STARTTLS and AUTH when configured
        except BaseException:
            smtp.close()           # e.g. AUTH refused: connect() leaves the socket open
            raise
        return smtp

    def _take(self) -> Any:
        """An idle connection of this event loop, or None."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        while self._idle:
            smtp, since, owner = self._idle.pop()
            if owner is loop and now - since < IDLE_CLOSE:
                return smtp
            self._retire(smtp, owner)
        return None

    def _put_back(self, smtp: Any) -> None:
        loop = asyncio.get_running_loop()
        if len(self._idle) >= POOL_SIZE:
            self._retire(smtp, loop)
            return
        self._idle.append((smtp, time.monotonic(), loop))
        if self._reaper is None or self._reaper[1] is not loop:
            self._reaper = (loop.call_later(IDLE_CLOSE, self._reap), loop)

    def _reap(self) -> None:
        """Timer: close the connections idle for IDLE_CLOSE, then wait for the next one."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        keep = []
        for entry in self._idle:
            if entry[2] is loop and now - entry[1] < IDLE_CLOSE:
                keep.append(entry)
            else:
                self._retire(entry[0], entry[2])
        self._idle = keep
        if keep:
            self._reaper = (loop.call_later(keep[0][1] + IDLE_CLOSE - now, self._reap), loop)

    def _retire(self, smtp: Any, owner: asyncio.AbstractEventLoop) -> None:
        """Close a connection politely (QUIT), in the background."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if owner is running:
            task = owner.create_task(_quit(smtp))
            self._quits.add(task)
            task.add_done_callback(self._quits.discard)
        elif not owner.is_closed():
            owner.call_soon_threadsafe(smtp.close)
        # else: its loop is gone, and with it the connection's transport

    def _drop(self, smtp: Any) -> None:
        """Abandon a connection a send failed on: its state is unknown."""
        smtp.close()

    async def close(self) -> None:
        """Close the idle connections (QUIT); central calls this at shutdown."""
        if self._reaper is not None:
            self._reaper[0].cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        for smtp, _since, owner in idle:
            self._retire(smtp, owner)
        loop = asyncio.get_running_loop()
        quits = [t for t in self._quits if t.get_loop() is loop]
        if quits:
            await asyncio.gather(*quits, return_exceptions=True)

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


def _stale(e: BaseException) -> bool:
    """Whether a failure on a reused connection says only that the connection is gone:
    closed by the server while idle (a disconnect, or 421 "closing"). Not a timeout:
    that may be a hung server, and waiting twice would not help."""
    import aiosmtplib

    if isinstance(e, TimeoutError):    # SMTPTimeoutError is a TimeoutError too
        return False
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return e.code == 421
    return isinstance(e, ConnectionError)   # SMTPServerDisconnected, reset, broken pipe


async def _quit(smtp: Any) -> None:
    try:
        await asyncio.wait_for(smtp.quit(), QUIT_TIMEOUT)
    except Exception:
        pass                            # it is being closed anyway
    finally:
        smtp.close()
