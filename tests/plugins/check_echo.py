"""Test plugin: quick and deterministic; status and text from its arguments."""
from checkd.pluginapi import Outcome, Perf, Status, run_script


def check(args: list[str]) -> Outcome:
    status = Status[args[0]] if args else Status.OK
    return Outcome(status, " ".join(args[1:]) or "echo", [Perf("n", len(args), min=0)])


if __name__ == "__main__":
    run_script(check)
