"""Fixtures: one moto server per test session, a freshly provisioned two-account deployment per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import shared_dir
from worker.demo.emulator import MotoEmulator, moto_client_factory
from worker.ops.provision import Deployment, Names, provision


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
