"""Test plugin: a pure-Python infinite loop, which an injected exception can stop."""
from checkd.pluginapi import Outcome


def check(args: list[str]) -> Outcome:
    n = 0
    while True:
        n += 1
