"""Test plugin: an async check raising SystemExit, which a bare task would hand to the loop."""
import sys

from checkd.pluginapi import Outcome


async def check(args: list[str]) -> Outcome:
    sys.exit(7)
