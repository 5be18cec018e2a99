"""A plugin that ends its whole process: embedded, it may only take down one worker."""

import os


def check(args: list[str]) -> None:
    os._exit(3)
