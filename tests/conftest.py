"""Shared pytest fixtures. Keep this small; helpers live in their own modules."""

from collections.abc import Iterator

import pytest

from tests.postgres import Postgres, require_postgres
from tests.sshd import Sshd, ensure_test_user, require_sshd


# The longest files start first, so that on two workers (make test) neither is left
# running alone at the end: each takes about 3 minutes.
SLOW_FIRST = ("test_central_restart.py", "test_ha.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in SLOW_FIRST)     # stable: files keep their order


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "package: builds, installs and runs the .deb files (root; tests/test_package.py)")


@pytest.fixture
def sshd() -> Iterator[Sshd]:
    """A throwaway sshd on 127.0.0.1 for one test, stopped by PID afterwards."""
    require_sshd()
    with Sshd(user=ensure_test_user()) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Postgres]:
    """One throwaway PostgreSQL on 127.0.0.1 for the session (tests/postgres.py)."""
    require_postgres()
    with Postgres() as pg:
        yield pg


@pytest.fixture
def postgres_dsn(postgres_cluster: Postgres) -> str:
    """A fresh database of that cluster for one test."""
    return postgres_cluster.new_database()
