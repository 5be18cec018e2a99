"""The Jabber bot against a real prosody (the bot, an operator, a read-only viewer
and a stranger), a real central, a real poller running real checks, and an
SMTP server for the escalation mail."""

from __future__ import annotations

import asyncio
import time

from tests.central_proc import CentralProc, start_poller
from tests.helpers import require_plugins
from tests.notify_env import MailSink, node_extra
from tests.prosody import Phone, Prosody, require_prosody

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N)\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com, jabber: "{ops}"}}
  - {{name: boss, email: boss@example.com}}
contact_groups:
  - {{name: oncall, members: [ops]}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Mysql Health Slave Check, command: "from_file!mysql", interval: 1h,
     max_attempts: 1, contacts: [ops], escalations: [{{after: 8s, contacts: [boss]}}]}}
  - {{host: db1.ladc1, description: Disk /, command: "from_file!disk", interval: 1h, max_attempts: 1,
     contacts: [ops]}}
"""
SVC = "Mysql Health Slave Check"
ROOM = "noc@conference.localhost"


def history(c: CentralProc, eid: int) -> list[tuple[str, str | None]]:
    return [(h["kind"], h["author"]) for h in c.get(f"/api/v1/events/{eid}")["history"]]


def test_the_bot_handles_a_night_on_call(tmp_path):
    require_prosody()
    require_plugins()
    states = tmp_path / "states"
    states.mkdir()
    for name in ("mysql", "disk"):
        (states / name).write_text("0\n")
    sink = MailSink()
    with Prosody() as prosody:
        bot = prosody.register("checkd", "botpw")
        ops = prosody.register("ops", "opspw")
        viewer = prosody.register("viewer", "viewpw")
        stranger = prosody.register("stranger", "strangepw")
        jabber = {"jid": bot, "password": "botpw", "server": f"127.0.0.1:{prosody.port}", "tls": "false",
                  "room": ROOM, "nick": "checkd", "admin_groups": "[oncall]", "readonly": f"[{viewer}]",
                  "commands_burst": 30, "commands_every": "2s"}
        c = CentralProc(tmp_path, objects=OBJECTS.format(dir=states, ops=ops),
                        extra=node_extra(sink.port, jabber) + "  public_url: https://noc.example.com/\n")

        async def night() -> None:
            await asyncio.to_thread(c.start)
            deadline = time.monotonic() + 20
            while "jabber: connected" not in c.log.read_text():   # the bot made the room: it sees who speaks
                assert time.monotonic() < deadline, c.log.read_text()
                await asyncio.sleep(0.1)
            me = Phone(ops, "opspw", prosody.port, bot, room=ROOM)
            guest = Phone(stranger, "strangepw", prosody.port, bot)
            watcher = Phone(viewer, "viewpw", prosody.port, bot)
            for phone in (me, guest, watcher):
                await phone.start()
            try:
                await scenario(me, guest, watcher)
            finally:
                for phone in (me, guest, watcher):
                    await phone.stop()

        async def scenario(me: Phone, guest: Phone, watcher: Phone) -> None:
            assert "wassup [all]" in await me.ask("help")
            assert await me.ask("wassup") == "all quiet: no open problems"

            # A stranger is refused once, then ignored; nothing changes.
            assert "You may not give me commands" in await guest.ask("wassup")
            guest.messages.clear()
            await guest.client.send_text(bot, "dis db1.ladc1")
            await asyncio.sleep(1.5)
            assert guest.messages == []
            assert c.get("/api/v1/status?host=db1.ladc1")["hosts"][0]["muted"] is False

            # resched: the real poller runs the check now and the fresh result comes back.
            (states / "mysql").write_text("2\n")
            first = await me.ask("RESCHED db1.ladc1/mysql health slave check")
            assert first == f"Running db1.ladc1/{SVC} now on poller-ladc1; the result follows."
            fresh = await me.next_reply(lambda b: b.startswith(f"db1.ladc1/{SVC}:"))
            assert f"db1.ladc1/{SVC}: CRITICAL HARD [ID#:" in fresh and "state 2 at" in fresh
            eid = int(fresh.split("[ID#:")[1].split("]")[0])
            alert = await me.next_reply(lambda b: b.startswith(f"db1.ladc1/{SVC} CRITICAL"))
            assert alert.splitlines()[0] == f"db1.ladc1/{SVC} CRITICAL [ID#:{eid}]"

            listing = await me.ask("wassup")
            assert listing.startswith("1 problem (1 CRITICAL), worst first:")
            assert f"CRITICAL db1.ladc1/{SVC} " in listing and f"[ID#:{eid}]: state 2 at" in listing

            # ack stops the escalation (level 2 is due 8 s after the problem opened).
            assert await me.ask(f"ack {eid} looking") == \
                f"Acknowledged [ID#:{eid}] db1.ladc1/{SVC}; escalation stopped."
            assert ("ack", ops) in history(c, eid)
            await asyncio.sleep(9)
            assert sink.to("boss@example.com") == []
            # unack: it resumes, and level 2 hears at once.
            assert "no longer acknowledged" in await me.ask(f"unack #{eid}")
            await asyncio.to_thread(sink.wait, lambda m: m["To"] == "boss@example.com")
            assert ("unack", ops) in history(c, eid)

            # dis mutes the next notification; ena lets the held problem out once.
            assert await me.ask("dis db1.ladc1/Disk / 1h") == \
                "Notifications for db1.ladc1/Disk / disabled for 1h."
            (states / "disk").write_text("2\n")
            await me.ask("resched db1.ladc1/Disk /")
            await me.next_reply(lambda b: b.startswith("db1.ladc1/Disk /: CRITICAL"))
            assert [b for b in await me.quiet(2.0) if "Disk" in b] == []
            assert await me.ask("ena db1.ladc1/Disk /") == "Notifications for db1.ladc1/Disk / enabled."
            late = await me.next_reply(lambda b: b.startswith("db1.ladc1/Disk / CRITICAL"))
            disk = int(late.split("[ID#:")[1].split("]")[0])
            assert ("notifications_enabled", ops) in history(c, disk)   # dis came before the event

            # dis and ena take an event ID, as ack and resched do: the ID names its check.
            assert await me.ask(f"dis {disk} 30m") == \
                f"Notifications for db1.ladc1/Disk / [ID#:{disk}] disabled for 30m."
            assert c.get(f"/api/v1/events/{disk}")["muted"] is True
            assert ("notifications_disabled", ops) in history(c, disk)
            assert await me.ask(f"ena ID#:{disk} now") == "Usage: ena ID|HOST[/SERVICE] (what is 'now'?)"
            assert await me.ask(f"ena #{disk}") == f"Notifications for db1.ladc1/Disk / [ID#:{disk}] enabled."
            assert c.get(f"/api/v1/events/{disk}")["muted"] is False
            assert await me.ask("dis 999999999 1h") == "no event 999999999 (see wassup for the IDs of open problems)"

            status = await me.ask("status DB1.LADC1")
            assert status.splitlines()[0] == "db1.ladc1: UP (no host check)"
            assert f"{SVC}: CRITICAL HARD" in status and "Disk /: CRITICAL HARD" in status
            # The reply and the DOWNTIMESTART notice (below) may arrive in either order.
            me.messages.clear()
            await me.client.send_text(bot, "downtime db1.ladc1/Disk / 30m swapping the disk")
            reply = await me.next_reply(lambda b: not b.startswith("DOWNTIMESTART"))
            assert reply.startswith("Downtime #1 for db1.ladc1/Disk / for 30m (until ")
            [dt] = c.get("/api/v1/downtimes")["downtimes"]
            assert (dt["author"], dt["comment"], dt["service"]) == (ops, "swapping the disk", "Disk /")
            # The check's contacts hear that the downtime began (Nagios' DOWNTIMESTART), with the open problem's ID.
            notice = await me.next_reply(lambda b: b.startswith("DOWNTIMESTART"))
            assert notice.splitlines()[0] == f"DOWNTIMESTART db1.ladc1/Disk / CRITICAL [ID#:{disk}]"
            assert f"Downtime #{dt['id']} by {ops} until " in notice and notice.endswith("Via: central")
            assert await me.ask("graph db1.ladc1/Disk /") == \
                "https://noc.example.com/graph/db1.ladc1/Disk%20%2F.png"
            # Downtimes listed and cancelled from chat (here the one above; the notice may come first).
            assert (await me.ask("downtimes")).startswith(f"#{dt['id']} db1.ladc1/Disk / ")
            me.messages.clear()
            await me.client.send_text(bot, f"undowntime {dt['id']}")
            assert await me.next_reply(lambda b: b.startswith("Cancelled")) == \
                f"Cancelled downtime #{dt['id']} db1.ladc1/Disk /."
            cancelled = await me.next_reply(lambda b: b.startswith("DOWNTIMECANCELLED"))
            assert cancelled.splitlines()[0] == f"DOWNTIMECANCELLED db1.ladc1/Disk / CRITICAL [ID#:{disk}]"
            assert c.get("/api/v1/downtimes?ended=hide")["downtimes"] == []

            # Bad input gets a clear reply, never a trace.
            assert await me.ask("   ") == "Empty command. Try `help`."
            assert "commands are at most 1000" in await me.ask("x" * 10_000)
            assert await me.ask("wassup ☃") == "Usage: wassup [all]"
            assert await me.ask("ack") == ("Usage: ack ID [ID ...] | ack host HOST, then [for DURATION] [nonsticky] "
                                           "[comment] (an event ID is a number, see wassup)")
            assert await me.ask("ack 999999999") == \
                "no open event 999999999 (it recovered, or the ID is wrong: see wassup)"
            assert (await me.ask("frobnicate now")).startswith("Unknown command 'frobnicate'.")
            assert await me.ask("dis nosuchhost") == "Unknown host 'nosuchhost'."
            assert await me.ask("dis db1.ladc1 forever") == \
                "'forever' is not a duration like 30m or 2h. Usage: dis ID|HOST[/SERVICE] [DURATION]"

            # The group chat: the bot answers when addressed, to the one who asked.
            room_reply = await me.ask("checkd: wassup", to=ROOM)
            assert room_reply.startswith("ops: 2 problems (2 CRITICAL), worst first:")

            # Read-only may look, not touch; everyone is rate-limited.
            assert "2 problems" in await watcher.ask("wassup")
            assert (await watcher.ask(f"ack {eid}")).startswith("You are read-only")
            watcher.messages.clear()
            for _ in range(40):
                await watcher.client.send_text(bot, "help")
            await asyncio.sleep(2.0)
            replies = [b for s, b, r in watcher.messages if s == bot]
            assert "Too many commands: one every 2s, please." in replies
            assert 25 <= sum(1 for b in replies if b.startswith("wassup [all]")) <= 30

        sink.start()
        poller = start_poller(tmp_path, c.url)
        try:
            asyncio.run(night())
        finally:
            poller.terminate()
            poller.wait(timeout=30)
            c.stop()
            sink.stop()
        log = c.log.read_text()
        assert f"refused command from {stranger}" in log and "'dis db1.ladc1'" in log
