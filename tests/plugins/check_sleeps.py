"""Test plugin: blocks in C (time.sleep), which no injected exception can interrupt."""
import time

from checkd.pluginapi import Outcome, Status


def check(args: list[str]) -> Outcome:
    time.sleep(float(args[0]) if args else 3600)
    return Outcome(Status.OK, "woke up")
