"""Fixtures: one moto server per test session, a freshly provisioned two-account deployment per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import shared_dir
from worker.demo.emulator import MotoEmulator, moto_client_factory
from worker.ops.provision import Deployment, Names, provision

# each suite directory is a marker (registered in pyproject): `pytest -m unit`, `-m "not containers"`, ...
SUITES = ("unit", "integration", "corpus", "containers")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts if item.path.is_relative_to(tests) else ()
        if parts and parts[0] in SUITES:
            item.add_marker(parts[0])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoEmulator]:
    with MotoEmulator() as emulator:
        yield emulator


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def deployment(moto_server: MotoEmulator, names: Names) -> Iterator[Deployment]:
    """Accounts A and B provisioned from the shipped policies, with IAM enforcement switched on."""
    moto_server.disable_iam()
    moto_server.reset()
    deployed = provision(
        moto_client_factory(moto_server.endpoint_url, "us-east-1"), names, endpoint=moto_server.endpoint_url
    )
    moto_server.enable_iam()
    yield deployed
    moto_server.disable_iam()


@pytest.fixture
def shared():  # type: ignore[no-untyped-def]
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (corpus and events) is not beside this checkout")
    return path
