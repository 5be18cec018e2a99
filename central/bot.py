"""Central's Jabber bot: the chat bot of checkd/chat/bot.py over central.operations
(the same functions behind the HTTP API and the CLI), plus what only central
has: `unack`, `downtime` and `graph` (links to its graphs).
"""

from __future__ import annotations

import logging
import time

from central.live import Live
from central.operations import Operations
from central.read_api import ReadApi
from checkd.actions import target_name
from checkd.chat.bot import ChatBot, Handler, Reply, Usage, event_digits
from checkd.config.scope import CheckScope
from checkd.engine.store import Phase
from checkd.durations import format_duration, parse_duration
from checkd.engine.notify.jabber import JabberClient
from checkd.engine.notify.links import Links


class Bot(ChatBot):
    READ_ONLY = ChatBot.READ_ONLY | {"graph", "downtimes"}
    HELP_LINES = {**ChatBot.HELP_LINES,
                  "unack": "unack ID - take the acknowledgement back",
                  "downtime": "downtime HOST[/SERVICE] | hostgroup NAME | site NAME, DURATION [comment] - "
                              "scheduled downtime from now",
                  "downtimes": "downtimes [HOST] - downtimes to come and in effect",
                  "undowntime": "undowntime ID [series] - cancel a downtime (or every one of its series)",
                  "graph": "graph HOST/SERVICE - link to the graph",
                  "comment": "comment ID|HOST[/SERVICE] TEXT - a note on the check (and its problem)"}
    INTERNAL_ERROR = "internal error while doing that; it is in central's log"
    log = logging.getLogger(__name__)   # the log lines say central.bot
    ops: Operations                     # all of central's operations, not only ChatActions

    def __init__(self, live: Live, read: ReadApi, operations: Operations, links: Links, client: JabberClient):
        super().__init__(lambda: live.objs, lambda: live.node.section("jabber"), read.store, read.events,
                         operations, client)
        self.links = links

    def handlers(self) -> dict[str, Handler]:
        return {"wassup": self.wassup, "status": self.status, "ack": self.ack, "unack": self.unack,
                "resched": self.resched, "dis": self.dis, "ena": self.ena, "downtime": self.downtime,
                "downtimes": self.downtimes, "undowntime": self.undowntime, "comment": self.comment, "graph": self.graph, "help": self.help}

    async def unack(self, jid: str, args: str, reply: Reply) -> str:
        eid = self._event_id(args, "unack ID")
        ev = await self.ops.unack(eid, jid)
        return f"[ID#:{eid}] {target_name(ev.host, ev.service)} is no longer acknowledged."

    async def downtime(self, jid: str, args: str, reply: Reply) -> str:
        usage = "downtime HOST[/SERVICE] | hostgroup NAME | site NAME, then DURATION [comment]"
        words = args.split()
        if len(words) >= 3 and words[0].lower() in ("hostgroup", "site"):
            try:
                duration = parse_duration(words[2])
                targets = CheckScope.parse({f"{words[0].lower()}s": [words[1]]}).targets(self.objects())
            except ValueError as e:         # a bad duration, or a group or site that does not exist
                raise Usage(f"{e}. Usage: {usage}") from None
            now = time.time()
            made = await self.ops.add_downtimes(targets, now, now + duration, jid, " ".join(words[3:]))
            return (f"Downtime for {words[0].lower()} {words[1]}: {len(made)} downtime(s) from #{made[0].id}, "
                    f"for {format_duration(duration)} (until {time.strftime('%H:%M UTC', time.gmtime(made[0].end))}; "
                    f"`undowntime {made[0].id} series` cancels them all).")
        for i in range(len(words) - 1, 0, -1):      # the duration is the first word after a target
            try:
                host, service = self._target(" ".join(words[:i]))
                duration = parse_duration(words[i])
            except (Usage, ValueError):
                continue
            now = time.time()
            dt = await self.ops.add_downtime(host, service, now, now + duration, jid,
                                                      " ".join(words[i + 1:]))
            return (f"Downtime #{dt.id} for {target_name(host, service)} for {format_duration(duration)} "
                    f"(until {time.strftime('%H:%M UTC', time.gmtime(dt.end))}).")
        raise Usage(f"Usage: {usage}")

    async def downtimes(self, jid: str, args: str, reply: Reply) -> str:
        host = self._target(args)[0] if args else None
        now = time.time()
        lines = [f"#{d.id} {target_name(d.host, d.service)} {time.strftime('%a %H:%M', time.gmtime(d.start))}-"
                 f"{time.strftime('%a %H:%M UTC', time.gmtime(d.end))}"
                 f"{' flexible ' + format_duration(d.duration) if d.flexible else ''}"
                 f"{' IN EFFECT' if d.covers(d.host, d.service, now) else ''} by {d.author}"
                 f"{': ' + d.comment[:60] if d.comment else ''}"
                 for d in sorted(self.store.downtimes.values(), key=lambda d: d.start)
                 if d.phase is not Phase.ENDED and (host is None or d.host == host)]
        if not lines:
            return "No downtimes" + (f" for {host}." if host else ".")
        more = f"\n... and {len(lines) - 20} more" if len(lines) > 20 else ""
        return "\n".join(lines[:20]) + more

    async def undowntime(self, jid: str, args: str, reply: Reply) -> str:
        usage = "undowntime ID [series]"
        word, _, rest = args.partition(" ")
        did = self._event_id(word, usage)
        ids = [did]
        if rest.strip().lower() == "series":
            dt = self.store.downtimes.get(did)
            ids = self.ops.series_ids(dt.series) if dt is not None and dt.series else ids
        elif rest.strip():
            raise Usage(f"Usage: {usage}")
        gone = await self.ops.delete_downtimes(ids, jid)
        return f"Cancelled downtime{'s' if len(gone) > 1 else ''} " + ", ".join(
            f"#{d.id} {target_name(d.host, d.service)}" for d in gone[:10]) + (" ..." if len(gone) > 10 else "") + "."

    async def comment(self, jid: str, args: str, reply: Reply) -> str:
        usage = "comment ID|HOST[/SERVICE] TEXT"
        (host, service), words, named = await self._event_or_target(args, usage)
        if not words:
            raise Usage(f"Usage: {usage}")
        eid = event_digits(args.split()[0]) if named else None
        shown = await self.ops.add_comment(host, service, jid, " ".join(words), int(eid) if eid else None)
        return f"Noted on {target_name(host, service)}{f' [ID#:{shown}]' if shown else ''}."

    async def graph(self, jid: str, args: str, reply: Reply) -> str:
        host, service = self._target(args) if args else (None, None)
        if host is None or service is None:
            raise Usage("Usage: graph HOST/SERVICE")
        return self.links.graph(host, service)
