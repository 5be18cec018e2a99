"""The chat bot: `wassup`, `status`, `ack`, `resched`, `dis`, `ena`, `help` for the
engineer on call with only a phone, over a daemon's ChatActions (checkd/actions.py).
It listens on the notification channel's connection, in direct chats and, when
addressed by name, in the group chat; a subclass adds commands (central/bot.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, ClassVar

from checkd import wassup
from checkd.actions import ChatActions, OpError, target_name
from checkd.config.model import Objects
from checkd.durations import format_duration, parse_duration
from checkd.engine.notify.jabber import JabberClient
from checkd.engine import problems
from checkd.engine.events import Events
from checkd.engine.store import Store
from checkd.states import state_name

MAX_CHARS = 1000                # longer messages are refused, not parsed
BURST, EVERY = 10, 1.0          # per sender, by default: 10 commands at once, then one a second
RESCHED_WAIT = 120.0            # longest wait for a rescheduled check's result
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Reply = Callable[[str], Awaitable[None]]
Handler = Callable[[str, str, Reply], Awaitable[str]]     # (sender's bare JID, arguments, reply): the answer


class Usage(Exception):
    """A bad command line: the text is the reply."""


@dataclasses.dataclass
class Bucket:
    tokens: float
    stamp: float
    warned: bool = False


class ChatBot:
    """Who may do what (`jabber:` in the node file): `admins` (JIDs) and members of
    `admin_groups` (contact groups; their contacts' `jabber:` IDs) may use every
    command; `readonly` JIDs those in READ_ONLY. Anyone else gets one refusal;
    every attempt is logged with the sender."""

    READ_ONLY: ClassVar[frozenset[str]] = frozenset({"wassup", "status", "help"})
    # `help` lists the line of each command in `commands`, in its order.
    HELP_LINES: ClassVar[dict[str, str]] = {
        "wassup": "wassup [all] - open problems, worst first",
        "status": "status HOST[/SERVICE] - current state",
        "ack": "ack ID [ID ...] | ack host HOST, [for 2h] [nonsticky] [comment] - acknowledge: stops "
               "re-notification and escalation",
        "resched": "resched ID|HOST[/SERVICE] - run the check now and tell me the result",
        "dis": "dis ID|HOST[/SERVICE] [DURATION] - disable notifications (e.g. 2h; default: until ena)",
        "ena": "ena ID|HOST[/SERVICE] - enable notifications",
        "help": "help - this list"}
    INTERNAL_ERROR: ClassVar[str] = "internal error while doing that; it is in the daemon's log"
    # A subclass logs under its own module's name, so its log lines name the daemon.
    log: ClassVar[logging.Logger] = logging.getLogger(__name__)

    def __init__(self, objects: Callable[[], Objects], settings: Callable[[], Mapping[str, Any]], store: Store,
                 events: Events, actions: ChatActions, client: JabberClient):
        """`objects` and `settings` (the node file's jabber:) are asked at each use, as a
        reload swaps them."""
        self.objects, self.settings, self.store, self.events, self.ops = objects, settings, store, events, actions
        self.client = client
        self.reconfigure()
        self.nick = client.nick
        self._buckets: dict[str, Bucket] = {}
        self._refused: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.commands = self.handlers()
        self.help_text = "\n".join(self.HELP_LINES[name] for name in self.commands)

    def handlers(self) -> dict[str, Handler]:
        """The commands, in the order `help` and the unknown-command reply list them."""
        return {"wassup": self.wassup, "status": self.status, "ack": self.ack, "resched": self.resched,
                "dis": self.dis, "ena": self.ena, "help": self.help}

    def reconfigure(self) -> None:
        """Who may do what, from the node file's jabber: and the contact groups."""
        settings, objs = self.settings(), self.objects()
        self.burst = int(settings.get("commands_burst", BURST))
        self.every = float(settings.get("commands_every", EVERY))
        self.admins = {j.lower() for j in settings.get("admins", ())}
        self.readonly = {j.lower() for j in settings.get("readonly", ())}
        for group in settings.get("admin_groups", ()):
            for name in objs.contact_groups[group].members if group in objs.contact_groups else ():
                contact = objs.contacts.get(name)
                if contact is not None and contact.jabber:
                    self.admins.add(contact.jabber.lower())

    # --- the chat side -----------------------------------------------------------------

    def on_message(self, sender: str, body: str, is_room: bool) -> None:
        """JabberClient's hook (sync): handle the message in a task of its own."""
        self._spawn(self._handle(sender, body, is_room))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)           # a strong reference until it is done; stop() cancels what is left
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, sender: str, body: str, is_room: bool) -> None:
        if is_room:
            room, _, nick = sender.partition("/")
            text = self._addressed(body)
            if text is None or nick == self.nick:
                return                      # room talk not meant for us
            jid = self.client.real_jid(sender)
            to, prefix = room, f"{nick}: "
            if jid is None:
                await self._send(to, prefix + "I cannot see who you are in this room (make it non-anonymous, "
                                              "or me a moderator); send me a direct message instead.")
                self.log.warning("jabber: command from %s in the room, real JID hidden: refused", sender)
                return
        else:
            jid, text, to, prefix = sender, body, sender, ""

        async def reply(msg: str) -> None:
            await self._send(to, prefix + msg)

        try:
            answer = await self.answer(jid, text, reply)
        except Exception:
            self.log.exception("jabber: command %r from %s failed", text[:80], jid)
            answer = self.INTERNAL_ERROR
        if answer:
            await reply(answer)

    def _addressed(self, body: str) -> str | None:
        """`checkd: wassup`, `checkd, ack 5`, `@checkd help`: the command; None when not for us."""
        m = re.match(rf"\s*@?{re.escape(self.nick)}\b[\s:,]*(.*)", body, re.IGNORECASE | re.DOTALL)
        return m.group(1) if m else None

    async def _send(self, to: str, text: str) -> None:
        try:
            await self.client.send_text(to, text)
        except Exception as e:
            self.log.error("jabber: could not answer %s: %s", to, e)

    # --- one command -------------------------------------------------------------------

    async def answer(self, jid: str, text: str, reply: Reply) -> str | None:
        """The reply to `text` from bare JID `jid` (None: say nothing)."""
        who = jid.lower()
        may_write = who in self.admins
        if not may_write and who not in self.readonly:
            self.log.warning("jabber: refused command from %s (not in admins, admin_groups or readonly): %r",
                             jid, text[:80])
            if who in self._refused:
                return None
            self._refused.add(who)
            return "You may not give me commands. Ask whoever runs checkd to add your JID to jabber: admins."
        if not self._allow(who):
            return None
        if len(text) > MAX_CHARS:
            return f"That message is {len(text)} characters long; commands are at most {MAX_CHARS}. Try `help`."
        text = _CONTROL.sub(" ", text).strip()
        if not text:
            return "Empty command. Try `help`."
        word, _, args = text.partition(" ")
        name = word.lower()
        handler = self.commands.get(name)
        if handler is None:
            return f"Unknown command {word[:40]!r}. Commands: {', '.join(self.commands)}; `help` explains them."
        if not may_write and name not in self.READ_ONLY:
            self.log.warning("jabber: read-only user %s tried %r", jid, text[:80])
            return f"You are read-only: {', '.join(sorted(self.READ_ONLY))}."
        self.log.info("jabber: %s: %s", jid, text[:200])
        try:
            return await handler(jid, args.strip(), reply)
        except Usage as e:
            return str(e)
        except OpError as e:
            return str(e)

    def _allow(self, who: str) -> bool:
        """Token bucket per sender; one warning when it runs dry, then silence."""
        now = time.monotonic()
        b = self._buckets.setdefault(who, Bucket(self.burst, now))
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) / self.every)
        b.stamp = now
        if b.tokens >= 1:
            b.tokens -= 1
            b.warned = False
            return True
        if not b.warned:
            b.warned = True
            self.log.warning("jabber: %s is sending commands too fast; dropping them", who)
            asyncio.get_running_loop().create_task(self._send(who, f"Too many commands: {self._rate()}, please."))
        return False

    def _rate(self) -> str:
        """The rate limit as a person says it: "one every 2s", or "4 a second" below a second."""
        if self.every < 1:
            return f"{1 / self.every:g} a second"
        return f"one every {format_duration(self.every)}"

    # --- argument helpers ----------------------------------------------------------------

    def _event_id(self, word: str, usage: str) -> int:
        digits = event_digits(word)
        if not digits.isdigit() or len(digits) > 18:
            raise Usage(f"Usage: {usage} (an event ID is a number, see wassup)")
        return int(digits)

    async def _event_or_target(self, args: str, usage: str) -> tuple[tuple[str, str | None], list[str], str]:
        """`367768 2h` (the event's host or service) or `HOST[/SERVICE] 2h`: the target, the
        words after it, and `[ID#:N] ` to show when an ID named it."""
        word, _, rest = args.partition(" ")
        if event_digits(word).isdigit():
            eid = self._event_id(word, usage)
            return await self.ops.event_target(eid), rest.split(), f" [ID#:{eid}]"
        target, more = self._target_then(args, usage)
        return target, more, ""

    def _target(self, text: str) -> tuple[str, str | None]:
        """HOST or HOST/SERVICE, names in any case (phones capitalise)."""
        host, sep, service = text.partition("/")
        objs = self.objects()
        real_host = self._find(host, objs.hosts)
        if real_host is None:
            raise Usage(f"Unknown host {host[:80]!r}.")
        if not sep:
            return real_host, None
        services = {s: s for h, s in objs.services if h == real_host}
        real_service = self._find(service, services)
        if real_service is None:
            raise Usage(f"Unknown service {service[:80]!r} on {real_host}.")
        return real_host, real_service

    @staticmethod
    def _find(name: str, names: Any) -> str | None:
        if name in names:
            return name
        folded = name.casefold()
        return next((n for n in names if n.casefold() == folded), None)

    def _target_then(self, args: str, usage: str) -> tuple[tuple[str, str | None], list[str]]:
        """A target (service names have spaces) followed by more words: the longest prefix that names one."""
        words = args.split()
        for i in range(len(words), 0, -1):
            try:
                return self._target(" ".join(words[:i])), words[i:]
            except Usage:
                continue
        if not words:
            raise Usage(f"Usage: {usage}")
        return self._target(" ".join(words)), []        # raises the precise "unknown ..." message

    def _duration(self, words: list[str], usage: str, required: bool) -> float | None:
        if not words:
            if required:
                raise Usage(f"Usage: {usage}")
            return None
        if len(words) > 1:
            raise Usage(f"Usage: {usage}")
        try:
            return parse_duration(words[0])
        except ValueError:
            raise Usage(f"{words[0][:40]!r} is not a duration like 30m or 2h. Usage: {usage}") from None

    # --- the commands ------------------------------------------------------------------

    async def help(self, jid: str, args: str, reply: Reply) -> str:
        return self.help_text

    async def wassup(self, jid: str, args: str, reply: Reply) -> str:
        if args and args.lower() != "all":
            raise Usage("Usage: wassup [all]")
        now = time.time()
        return wassup.render(problems.open_problems(self.store, self.events, now), now,
                             limit=None if args else wassup.CHAT_LINES)

    async def status(self, jid: str, args: str, reply: Reply) -> str:
        if not args:
            raise Usage("Usage: status HOST[/SERVICE]")
        host, service = self._target(args)
        now = time.time()
        objs = self.objects()
        keys = [(host, service)] if service is not None else \
            [(host, None)] + sorted(k for k in objs.services if k[0] == host)
        lines = []
        for key in keys:
            v = self.store.checks.get(key)
            label = key[0] if key[1] is None else (key[1] if service is None else target_name(*key))
            if key[1] is None and objs.hosts[host].check is None:
                lines.append(f"{label}: UP (no host check)")
                continue
            if v is None or not v.last_check:
                lines.append(f"{label}: no result yet")
                continue
            event = f" [ID#:{v.event_id}]" if v.event_id else ""
            muted = " muted" if self.store.muted(key[0], key[1], now) else ""
            lines.append(f"{label}: {state_name(key[1], v.status)} {v.state_type.value} "
                         f"{format_duration(now - v.last_state_change)}{event}{muted}, checked "
                         f"{format_duration(now - v.last_check)} ago: {v.output}")
        return "\n".join(lines)

    async def ack(self, jid: str, args: str, reply: Reply) -> str:
        """`ack 1 2 3 [for 2h] [nonsticky] [comment]`, or `ack host web1 ...` (its open problems)."""
        usage = "ack ID [ID ...] | ack host HOST, then [for DURATION] [nonsticky] [comment]"
        words = args.split()
        if words[:1] and words[0].lower() == "host" and len(words) > 1:
            host = self._find(words[1], self.objects().hosts)
            if host is None:
                raise Usage(f"Unknown host {words[1][:80]!r}.")
            eids, words = self.ops.problems_of(host), words[2:]
            if not eids:
                return f"No open problems on {host}."
        else:
            eids = []
            while words and event_digits(words[0]).isdigit():
                eids.append(self._event_id(words.pop(0), usage))
            if not eids:
                raise Usage(f"Usage: {usage} (an event ID is a number, see wassup)")
        expires, sticky = None, True
        while words and words[0].lower() in ("for", "nonsticky", "non-sticky"):
            if words.pop(0).lower() != "for":
                sticky = False
                continue
            duration = self._duration(words[:1], usage, required=True)
            assert duration is not None
            expires, words = time.time() + duration, words[1:]
        acked, missing = await self.ops.ack_many(eids, jid, " ".join(words), sticky, expires)
        named = ", ".join(f"[ID#:{ev.id}] {target_name(ev.host, ev.service)}" for ev in acked)
        text = f"Acknowledged {named}; escalation stopped."
        if expires is not None:
            text += f" Until {time.strftime('%H:%M UTC', time.gmtime(expires))}."
        if not sticky:
            text += " Not sticky: it ends when the state changes."
        if missing:
            text += f" Not open: {', '.join(map(str, missing))}."
        return text

    async def resched(self, jid: str, args: str, reply: Reply) -> str:
        if not args:
            raise Usage("Usage: resched ID|HOST[/SERVICE]")
        if event_digits(args).isdigit():
            ev = self.ops.open_event(self._event_id(args, "resched ID|HOST[/SERVICE]"))
            host, service = ev.host, ev.service
        else:
            host, service = self._target(args)
        asked = time.time()
        result = self.ops.next_result(host, service, asked)
        pollers = await self.ops.reschedule(host, service, jid)
        self._spawn(self._report(host, service, asked, result, reply))
        return f"Running {target_name(host, service)} now on {', '.join(pollers)}; the result follows."

    async def _report(self, host: str, service: str | None, asked: float, result: Any, reply: Reply) -> None:
        try:
            v = await asyncio.wait_for(result, RESCHED_WAIT)
        except asyncio.TimeoutError:
            await reply(f"{target_name(host, service)}: no result within {format_duration(RESCHED_WAIT)} "
                        "(is the poller connected? see wassup)")
            return
        event = f" [ID#:{v.event_id}]" if v.event_id else ""
        await reply(f"{target_name(host, service)}: {state_name(service, v.status)} {v.state_type.value}"
                    f"{event} ({format_duration(v.last_check - asked)} after asking): {v.output}")

    async def dis(self, jid: str, args: str, reply: Reply) -> str:
        usage = "dis ID|HOST[/SERVICE] [DURATION]"
        (host, service), rest, named = await self._event_or_target(args, usage)
        duration = self._duration(rest, usage, required=False)
        mute = await self.ops.set_notifications(host, service, False, duration, jid)
        until = "until `ena`" if mute is None or mute.until is None else f"for {format_duration(duration or 0)}"
        scope = " and its services" if service is None else ""
        return f"Notifications for {target_name(host, service)}{named}{scope} disabled {until}."

    async def ena(self, jid: str, args: str, reply: Reply) -> str:
        usage = "ena ID|HOST[/SERVICE]"
        (host, service), rest, named = await self._event_or_target(args, usage)
        if rest:
            raise Usage(f"Usage: {usage} (what is {' '.join(rest)[:40]!r}?)")
        await self.ops.set_notifications(host, service, True, None, jid)
        return f"Notifications for {target_name(host, service)}{named} enabled."


def event_digits(word: str) -> str:
    """An event ID as people write it: `367768`, `#367768` or `ID#:367768`, without the prefix."""
    return word.removeprefix("#").removeprefix("ID#:").removeprefix("id#:")
