"""The embedded AWS emulator: a real moto server over HTTP on 127.0.0.1, and per-account admin clients."""

from __future__ import annotations

import abc
import logging
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.config import Config

from worker.core.extras import require

ClientFactory = Callable[[str, str], Any]
"""(service, account_id) -> a boto3 client acting as that account's administrator."""


class LoopbackServer(abc.ABC):
    """A server started on 127.0.0.1 for the length of a ``with`` block (moto, LocalStack, test proxies)."""

    @abc.abstractmethod
    def start(self) -> str:
        """Start serving; return the endpoint URL."""

    @abc.abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MotoEmulator(LoopbackServer):
    """``moto.server.ThreadedMotoServer`` bound to loopback on a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> str:
        # the service image and the Lambda package leave the emulator out (the demo extra)
        threaded_moto_server = require("moto.server", "the embedded emulator").ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = threaded_moto_server(ip_address=self._host, port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def enable_iam(self) -> None:
        """From now on every request is checked against the IAM policies of its credentials."""
        self._post("/moto-api/reset-auth", b"0")

    def disable_iam(self) -> None:
        """Back to moto's default: every request allowed (for provisioning)."""
        self._post("/moto-api/reset-auth", b"inf")

    def reset(self) -> None:
        self._post("/moto-api/reset", b"")

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            self.endpoint_url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def moto_client_factory(endpoint_url: str, region: str) -> ClientFactory:
    """Clients that act in a chosen account through moto's ``x-moto-account-id`` header."""

    def factory(service: str, account_id: str) -> Any:
        client = boto3.client(
            service,
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id="provisioning",
            aws_secret_access_key="provisioning",  # noqa: S106 - emulator placeholder, never real
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

        def add_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id

        client.meta.events.register("before-send.*.*", add_account)
        return client

    return factory


def keyed_client_factory(endpoint_url: str, region: str) -> ClientFactory:
    """Clients whose access key id is the account id (how LocalStack chooses the account)."""

    def factory(service: str, account_id: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=account_id,
            aws_secret_access_key="provisioning",  # noqa: S106 - emulator placeholder, never real
        )

    return factory
