"""Test plugin: returns a tuple instead of an Outcome."""


def check(args: list[str]):
    return (0, "OK")
