"""The real container run: only with THUMBX_CONTAINER_TESTS=1 (`make test-containers`), as root, with dockerd.

`make test` collects these tests and skips them with the reason; the static checks of the same files run
there instead (`make check-containers`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import docker
import pytest

from tests.containers.engine import DockerEngine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if os.environ.get("THUMBX_CONTAINER_TESTS") != "1":
        reason = "the container run is `make test-containers` (THUMBX_CONTAINER_TESTS=1)"
    elif os.geteuid() != 0 or shutil.which("dockerd") is None:
        reason = "needs root and Debian's docker.io (dockerd)"
    if reason is None:
        return
    for item in items:
        if "tests/containers/" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    running = DockerEngine()
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def client(engine: DockerEngine) -> docker.DockerClient:
    assert engine.client is not None
    return engine.client
