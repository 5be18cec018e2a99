"""Test plugin: does not compile."""

def check(args:
    return None
