"""Shared pytest fixtures. Keep this small; helpers live in their own modules."""

from collections.abc import Iterator

import pytest

from tests.sshd import Sshd, ensure_test_user, require_sshd


@pytest.fixture
def sshd() -> Iterator[Sshd]:
    """A throwaway sshd on 127.0.0.1 for one test, stopped by PID afterwards."""
    require_sshd()
    with Sshd(user=ensure_test_user()) as server:
        yield server
