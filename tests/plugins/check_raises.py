"""Test plugin: raises from check()."""
from checkd.pluginapi import Outcome, run_script


def check(args: list[str]) -> Outcome:
    return Outcome(1 / 0, "never")


if __name__ == "__main__":
    run_script(check)
