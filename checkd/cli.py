"""The `checkd` command: thin argument parsing over the library; only here do we exit."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

from checkd.config import ConfigError, load_node, load_objects
from checkd.config.sites import site_table
from checkd.escape import log_to_stderr

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help: str, module: str) -> Callable[[Callable[[argparse.ArgumentParser], None]], None]:
    """Register a subcommand whose handler `main(args)` lives in `module` (imported lazily,
    so `checkd check-config` does not load aiohttp and friends)."""
    def wrap(add_args: Callable[[argparse.ArgumentParser], None]) -> None:
        COMMANDS[name] = (help, add_args, module)
    return wrap


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, type=Path, help="node file (central: or poller:)")


@command("check-config", "validate a node file and its objects; exit 1 on any problem", "checkd.cli")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, help="node file (central: or poller:)")
    p.add_argument("--objects", type=Path, help="check only an objects directory")
    p.add_argument("--sites", action="store_true", help="also print each host's site and the rule that chose it")


@command("run-checks", "run checks once in the foreground and print their results", "checkd.runonce")
def _(p: argparse.ArgumentParser) -> None:
    _config_arg(p)
    p.add_argument("targets", nargs="*", help="HOST or HOST/SERVICE (default: every check of this node)")
    p.add_argument("--all-sites", action="store_true", help="not only this poller's site")


@command("poller", "run a poller daemon", "checkd.poller")
def _(p: argparse.ArgumentParser) -> None:
    _config_arg(p)


@command("central", "run the central node (the checkd-central package)", "")
def _(p: argparse.ArgumentParser) -> None:
    _config_arg(p)


def _api_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, help="central node file (for its URL and API token)")
    p.add_argument("--url", help="central's base URL (default: $CHECKD_URL or http://127.0.0.1:8080)")
    p.add_argument("--token", help="API token for write calls (default: $CHECKD_TOKEN or the node file's first)")


@command("wassup", "list open problems with their event IDs", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)


@command("history", "search what happened: checkd history [--host H] [--since 24h] [--state CRITICAL] ...",
         "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("--host", action="append", help="a host name or a pattern like 'db*' (repeatable)")
    p.add_argument("--service", action="append", help="a service description or a pattern like 'Disk*' (repeatable)")
    p.add_argument("--hostgroup", action="append", help="hosts of this host group (repeatable)")
    p.add_argument("--site", action="append", help="hosts of this site (repeatable)")
    p.add_argument("--state", action="append", help="OK, WARNING, CRITICAL, UNKNOWN, UP, DOWN, UNREACHABLE (repeatable)")
    p.add_argument("--kind", action="append", help="open, state, recovery, ack, comment, ... (repeatable)")
    p.add_argument("--since", help="a duration back from now (24h, 7d), a local time ('2026-03-01 14:00') or a Unix time")
    p.add_argument("--until", help="the same, for the end")
    p.add_argument("--text", help="in the output or comment, ignoring case")
    p.add_argument("--author", help="who acted (an ack, a comment, ...)")
    p.add_argument("--limit", type=int, help="rows (default 100, at most 1000)")
    p.add_argument("--offset", type=int, help="skip this many rows (the next page)")


@command("ack", "acknowledge problems: checkd ack ID [ID ...] | --host HOST [-m comment] [--expire 2h] "
                "[--not-sticky]", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("ids", type=int, nargs="*", metavar="ID", help="event IDs")
    p.add_argument("--host", help="every open problem of this host and its services")
    p.add_argument("-m", "--message", help="comment")
    p.add_argument("--expire", metavar="DURATION", help="the acknowledgement ends after this long (e.g. 2h)")
    p.add_argument("--not-sticky", action="store_true",
                   help="it ends when the state changes (WARNING -> CRITICAL), not only at recovery")
    p.add_argument("--author", help="who acknowledges (default: the token's name)")


@command("resched", "run a check now: checkd resched host[/service] | ID", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("target", help="HOST, HOST/SERVICE or an event ID")


@command("unack", "take back an acknowledgement: checkd unack ID", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("id", type=int, help="event ID")
    p.add_argument("--author", help="who (default: the token's name)")


@command("dis", "disable notifications: checkd dis host[/service]|ID [duration]", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("target", help="HOST, HOST/SERVICE or an event ID")
    p.add_argument("duration", nargs="?", help="e.g. 2h (default: until `checkd ena`)")


@command("ena", "enable notifications again: checkd ena host[/service]|ID", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("target", help="HOST, HOST/SERVICE or an event ID")


@command("downtime", "schedule, change or cancel downtime: checkd downtime host[/service] 2h -m why",
         "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("target", nargs="?", help="HOST, HOST/SERVICE or a host pattern like 'db*' (or use --hostgroup, "
                                             "--site)")
    p.add_argument("duration", nargs="?", help="how long from its start, e.g. 30m, 2h")
    p.add_argument("-m", "--message", help="comment")
    p.add_argument("--hostgroup", action="append", default=[], help="every host of this group (repeatable)")
    p.add_argument("--site", action="append", default=[], help="every host of this site (repeatable)")
    p.add_argument("--services", help="only these services of those hosts (a name or pattern like 'Disk*')")
    p.add_argument("--start", help="when it starts: +1h, '2026-12-24 02:00' (local time) or a Unix time "
                                   "(default: now)")
    p.add_argument("--flexible", metavar="DURATION",
                   help="flexible: in effect for DURATION from the first failure within the window")
    p.add_argument("--change", type=int, metavar="ID", help="change downtime ID: give --end and/or -m")
    p.add_argument("--end", help="with --change: the new end (+2h, a local time or a Unix time)")
    p.add_argument("--cancel", type=int, metavar="ID", help="cancel downtime ID")
    p.add_argument("--series", action="store_true", help="with --change/--cancel: every downtime of its series")


@command("downtimes", "list downtimes: checkd downtimes [--host HOST]", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("--host", help="only this host's")
    p.add_argument("--all", action="store_true", help="ended ones too")


@command("comment", "a note on a check or a problem: checkd comment host[/service]|ID text ...", "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("target", help="HOST, HOST/SERVICE or an event ID")
    p.add_argument("text", nargs="+", help="the comment")


@command("status", "a host's checks (checkd status host[/service]), or without one the daemon's own state",
         "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    _api_client_args(p)
    p.add_argument("target", nargs="?", help="HOST or HOST/SERVICE (none: central's, or with -c poller.yaml "
                                             "the poller's own metrics)")


@command("deploy", "tell central about a rollout: checkd deploy start|finish|abort --hosts a,b ...",
         "checkd.client")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, help="central node file (for its URL and deploy token)")
    p.add_argument("--url", help="central's base URL (default: $CHECKD_URL or http://127.0.0.1:8080)")
    p.add_argument("--token", help="deploy token (default: $CHECKD_DEPLOY_TOKEN, $CHECKD_TOKEN or the node file's)")
    p.add_argument("action", choices=("start", "finish", "abort"))
    p.add_argument("--hosts", help="comma-separated host names")
    p.add_argument("--hostgroups", help="comma-separated host groups")
    p.add_argument("--module", help="what is deployed (required for start)")
    p.add_argument("--revision", help="its revision (required for start)")
    p.add_argument("--engineer", help="who deploys (default: the token's name)")
    p.add_argument("--summary", help="what it brings, e.g. \"$(git log -1 --format=%%B)\" (start only; "
                                     "its first line goes into the graphs' legend)")
    p.add_argument("--mute-for", dest="mute_for", help="longest mute, e.g. 20m (default 30m)")
    p.add_argument("--id", help="the id start printed (finish/abort); optional for start")


@command("submit", "send a passive result to central: checkd submit HOST [SERVICE] STATE OUTPUT", "checkd.submit")
def _(p: argparse.ArgumentParser) -> None:
    p.usage = "checkd submit [options] HOST [SERVICE] STATE OUTPUT"
    p.add_argument("-c", "--config", type=Path, help="central's node file (its address, its first submitter token), or a poller's (its central: URL)")
    p.add_argument("--url", help="central's base URL (default: $CHECKD_URL or http://127.0.0.1:8080)")
    p.add_argument("--token", help="a submitters: token (default: $CHECKD_SUBMIT_TOKEN, $CHECKD_TOKEN or -c's)")
    p.add_argument("--token-file", dest="token_file", help="read the token from this file (its first line)")
    p.add_argument("--perfdata", help="performance data, e.g. 'duration=312s;3600;7200'")
    p.add_argument("check", nargs="+", metavar="ARG",
                   help="HOST [SERVICE] STATE OUTPUT; STATE is ok, warning, critical, unknown or 0-3 "
                        "(a host: up, down or 0-2); OUTPUT may hold further lines (long output)")


@command("demo", "run the demo: example conf.d/ checks on loopback", "checkd.demo")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", type=Path, default=None, help="demo configuration directory (default: conf.d/)")
    p.add_argument("--once", action="store_true", help="run every check once, print, and exit")


@command("import-nagios", "convert a Nagios configuration into a checkd objects directory", "checkd.nagios_import.cli")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("nagios_cfg", type=Path, help="the main nagios.cfg (its cfg_file/cfg_dir are followed)")
    p.add_argument("-o", "--output", required=True, type=Path, help="objects directory to write")
    p.add_argument("--site", default="imported", help="site of every imported host (default: imported)")


def check_config(args: argparse.Namespace) -> int:
    try:
        if args.config is not None:
            node, objs = load_node(args.config)
            where = f"{args.config} ({node.role})"
        elif args.objects is not None:
            objs, where = load_objects(args.objects), str(args.objects)
        else:
            print("checkd check-config: give -c NODE_FILE or --objects DIR", file=sys.stderr)
            return 2
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(f"{len(e.problems)} problem(s) found", file=sys.stderr)
        return 1
    if args.config is not None and node.section("email"):
        from checkd.engine.notify.email import template_problems   # jinja2 only
        problems = template_problems(node.templates_dir())
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print(f"{len(problems)} problem(s) found", file=sys.stderr)
            return 1
    if args.sites:
        print("\n".join(site_table(objs)))
    if args.config is not None:
        from checkd import exposure
        from checkd.failover_timing import warnings
        for warning in [*warnings(node, objs), *exposure.warnings(node)]:
            print(warning, file=sys.stderr)
    maps = f", {len(objs.weathermaps)} weather map(s)" if objs.weathermaps else ""
    print(f"{where}: OK: {len(objs.hosts)} hosts, {len(objs.services)} services, "
          f"{len(objs.commands)} commands, {len(objs.contacts)} contacts{maps}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="checkd", description=__doc__)
    parser.add_argument("--log-level", default=None, help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help, add_args, _module) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help, description=help))
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, and logging to stderr at its --log-level."""
    args = build_parser().parse_args(argv)
    log_to_stderr(args.log_level or "info")       # one line a record: no message forges another
    return args


def run(handler: Handler, args: argparse.Namespace) -> int:
    """A subcommand's handler; configuration errors are printed, one per line, as exit 1."""
    try:
        return int(handler(args) or 0)
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def exec_central(argv: list[str]) -> int:
    """`checkd central` is the checkd-central package's own program (`python3 -m central`),
    started in this process's place: checkd never imports central, so a poller host runs
    without it. Same PID, so systemd and a test see the daemon they started."""
    if importlib.util.find_spec("central") is None:
        print("checkd central: needs the checkd-central package (no module central)", file=sys.stderr)
        return 1
    # -P: the working directory is not put on the module path.
    os.execv(sys.executable, [sys.executable, "-P", "-m", "central", *argv])
    return 1        # not reached


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.command == "check-config":
        return check_config(args)
    if args.command == "central":
        return exec_central(argv)
    module = importlib.import_module(COMMANDS[args.command][2])
    return run(module.main, args)
