"""LocalStack's core as a second emulator, run on the host from its own virtualenv (no Docker).

``localstack-core`` 4.13.1 (the last line on Python 3.11) is installed by ``tools/localstack/venv.sh`` into
a cache folder outside the repo, pinned by LocalStack's own lock set. Which interpreter to use:

- ``THUMBX_LOCALSTACK_PYTHON`` set (``make pytest`` sets it): LocalStack must start, or the tests fail;
- otherwise the default cache venv, when it exists;
- otherwise the LocalStack-parametrised tests are skipped with the command that installs it.

The gateway listens on ``127.0.0.1`` only: hypercorn honours the host in ``GATEWAY_LISTEN`` (LocalStack's
default server binds 0.0.0.0). Its data, cache and temp folders live under one temp folder, removed on stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from worker.demo.emulator import LoopbackServer

VERSION = "4.13.1"
SERVICES = "s3,sqs,sts,iam"
INSTALL_HINT = "tools/localstack/venv.sh (or `make localstack`) installs it"


class LocalStackUnavailable(RuntimeError):
    """LocalStack could not be found or did not become ready."""


def default_venv() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    default = Path(cache) / "thumbx" / f"localstack-{VERSION}-py311"
    return Path(os.environ.get("THUMBX_LOCALSTACK_VENV", default))


def find_python() -> tuple[Path | None, bool]:
    """(interpreter, required): required is True when the caller asked for LocalStack explicitly."""
    explicit = os.environ.get("THUMBX_LOCALSTACK_PYTHON")
    if explicit:
        return Path(explicit), True
    candidate = default_venv() / "bin" / "python"
    return (candidate if candidate.exists() else None), False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class LocalStackServer(LoopbackServer):
    """One LocalStack process on 127.0.0.1:<port>; ``start()`` returns its endpoint URL."""

    def __init__(self, python: Path, *, port: int | None = None, startup_timeout: float = 90.0) -> None:
        self.python = python
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.startup_timeout = startup_timeout
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None
        self.log_path: Path | None = None

    def environment(self, root: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "THUMBX_"))}
        for sub in ("fs", "volume", "tmp", "cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        env.update(
            GATEWAY_LISTEN=f"{self.host}:{self.port}",
            LOCALSTACK_HOST=f"{self.host}:{self.port}",
            GATEWAY_SERVER="hypercorn",
            OVERRIDE_IN_DOCKER="0",
            SERVICES=SERVICES,
            PERSISTENCE="0",
            DISABLE_EVENTS="1",
            SKIP_SSL_CERT_DOWNLOAD="1",
            DNS_ADDRESS="0",
            SQS_ENDPOINT_STRATEGY="path",
            FILESYSTEM_ROOT=str(root / "fs"),
            LOCALSTACK_VOLUME_DIR=str(root / "volume"),
            TMPDIR=str(root / "tmp"),
            XDG_CACHE_HOME=str(root / "cache"),
        )
        return env

    def start(self) -> str:
        if not self.python.exists():
            raise LocalStackUnavailable(f"no LocalStack interpreter at {self.python}; {INSTALL_HINT}")
        if port_in_use(self.host, self.port):
            # A second LocalStack on a taken port prints "Ready." without binding: refuse up front.
            raise LocalStackUnavailable(f"{self.host}:{self.port} is already in use")
        self._root = Path(tempfile.mkdtemp(prefix="thumbx-localstack-"))
        self.log_path = self._root / "localstack.log"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.python), "-m", "localstack.runtime.main"],
                env=self.environment(self._root),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.endpoint_url

    def health(self) -> dict[str, object]:
        url = f"{self.endpoint_url}/_localstack/health"
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.load(response))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        wanted = set(SERVICES.split(","))
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                code = self._process.returncode
                raise LocalStackUnavailable(f"LocalStack exited with {code}:\n{self.log()}")
            with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                services = self.health().get("services", {})
                if isinstance(services, dict) and wanted <= set(services):
                    return
            time.sleep(0.25)
        raise LocalStackUnavailable(f"LocalStack not ready in {self.startup_timeout}s:\n{self.log()}")

    def log(self, tail: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-tail:].decode("utf-8", "replace")

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # start_new_session: its own process group, so its helpers go with it and nothing else does.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
