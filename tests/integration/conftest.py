"""The end-to-end path on two emulators: moto (IAM enforced) and LocalStack's core (IAM not enforced).

``e2e_deployment`` is parametrised over both. Permission tests keep using ``deployment`` (moto only):
LocalStack does not enforce IAM, so a denial test there could not fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.integration.localstack import INSTALL_HINT, LocalStackServer, LocalStackUnavailable, find_python
from worker.demo.emulator import keyed_client_factory
from worker.ops.provision import Deployment, Names, provision

_unique = itertools.count(1)


@pytest.fixture(scope="session")
def localstack_server() -> Iterator[LocalStackServer]:
    python, required = find_python()
    if python is None:
        pytest.skip(f"LocalStack {INSTALL_HINT}; set THUMBX_LOCALSTACK_PYTHON to require it")
    server = LocalStackServer(python)
    try:
        server.start()
    except LocalStackUnavailable as exc:
        if required:
            raise
        pytest.skip(f"LocalStack did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def localstack_deployment(localstack_server: LocalStackServer) -> Deployment:
    """A fresh two-account deployment in the shared LocalStack, under names no other test uses."""
    n = next(_unique)
    names = Names(
        bucket=f"thumbx-e2e-{n}",
        queue=f"thumbx-jobs-{n}",
        dlq=f"thumbx-jobs-dlq-{n}",
        role_name=f"ThumbXRole{n}",
        worker_principal=f"thumbx-worker-{n}",
        admin=f"thumbx-admin-{n}",
    )
    endpoint = localstack_server.endpoint_url
    return provision(keyed_client_factory(endpoint, "us-east-1"), names, endpoint=endpoint)


@pytest.fixture(params=["moto", "localstack"])
def e2e_deployment(request: pytest.FixtureRequest) -> Deployment:
    fixture = "deployment" if request.param == "moto" else "localstack_deployment"
    deployed: Deployment = request.getfixturevalue(fixture)
    return deployed
