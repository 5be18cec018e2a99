"""Test plugin: raises from check()."""
from checkd.pluginapi import Outcome


def check(args: list[str]) -> Outcome:
    return Outcome(1 / 0, "never")
