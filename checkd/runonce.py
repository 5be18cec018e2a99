"""`checkd run-checks`: run checks once in the foreground and print their parsed results.

For an operator trying a new check, and for the demo: the same preparation,
runners and parsing as the scheduler, without spool or central.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from checkd.config import load_node
from checkd.config.load import SHIPPED_PLUGINS
from checkd.config.model import Objects
from checkd.config.node import NodeConfig
from checkd.plugin_output import PluginOutput
from checkd.result import CheckKey
from checkd.run.prepare import prepare
from checkd.run.runner import Runner
from checkd.scheduler import site_checks
from checkd.states import HostStatus, Status


def select(objs: Objects, node: NodeConfig, targets: Sequence[str], all_sites: bool) -> list[CheckKey]:
    """The checks named by HOST or HOST/SERVICE targets (default: the node's site)."""
    if all_sites or node.role == "central":
        keys = [k for site in sorted({h.site for h in objs.hosts.values()}) for k in site_checks(objs, site)]
    else:
        keys = site_checks(objs, node.site)
    if not targets:
        return keys
    chosen = []
    for target in targets:
        host, _, service = target.partition("/")
        match = [k for k in keys if k[0] == host and (not service or k[1] == service)]
        if not match:
            raise SystemExit(f"checkd run-checks: no check {target!r} on this node")
        chosen += match
    return chosen


async def run_all(objs: Objects, node: NodeConfig, keys: list[CheckKey],
                  concurrency: int = 32) -> list[tuple[CheckKey, PluginOutput]]:
    runner = Runner([*node.plugin_dirs, *SHIPPED_PLUGINS])
    sem = asyncio.Semaphore(concurrency)

    async def one(key: CheckKey) -> tuple[CheckKey, PluginOutput]:
        host = objs.hosts[key[0]]
        service = objs.services[(key[0], key[1])] if key[1] is not None else None
        async with sem:
            return key, await runner.run(prepare(objs, host, service, node.ssh))
    try:
        return await asyncio.gather(*(one(k) for k in keys))
    finally:
        await runner.close()


def state_name(key: CheckKey, output: PluginOutput) -> str:
    if key[1] is None:
        return HostStatus.from_plugin(output.status).name
    return Status(output.status).name


def print_results(results: list[tuple[CheckKey, PluginOutput]]) -> None:
    width = max((len(f"{h}/{s or '(host)'}") for (h, s), _ in results), default=10)
    for key, out in results:
        name = f"{key[0]}/{key[1] or '(host)'}"
        print(f"{state_name(key, out):<11} {name:<{width}}  {out.output}")
        if out.perfdata:
            print(f"{'':<11} {'':<{width}}  | {out.perfdata}")


def main(args: argparse.Namespace) -> int:
    node, objs = load_node(args.config)
    keys = select(objs, node, args.targets, args.all_sites)
    results = asyncio.run(run_all(objs, node, keys))
    print_results(results)
    sys.stdout.flush()
    return 0
