"""Test plugin: calls sys.exit(7) from check(), as a careless script would."""
import sys

from checkd.pluginapi import Outcome


def check(args: list[str]) -> Outcome:
    sys.exit(7)
