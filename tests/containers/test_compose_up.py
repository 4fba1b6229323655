"""`docker compose up` with LocalStack yields thumbnails, on a real engine, with loopback-only networking.

One test, in the order a user lives it: build the image from the repo's Dockerfile, `compose up` (the init
step provisions through `thumbx provision`, the worker starts once LocalStack is healthy and init has
succeeded), copy a photo into `input/`, read the thumbnails back, `compose stop` (SIGTERM: the worker must
exit 0) and `compose down`. On failure every container's log is printed.
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
from typing import Any

import boto3
import docker
import pytest
from PIL import Image

from tests.containers.engine import (
    REPO,
    THUMBX_IMAGE,
    Compose,
    DockerEngine,
    build_image,
    compose_bin,
    prepare_images,
    project_containers,
    timed,
)
from tests.integration.localstack import free_port
from tests.support import jpeg_bytes

ACCOUNT_B = "222222222222"
BUCKET = "thumbx-demo-images"
EXPECTED = {"sm.webp": 128, "md.jpg": 512, "lg.jpg": 1024}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP listener on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                address, hex_port = fields[1].rsplit(":", 1)
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                    found.add(address)
    return found


def _wait(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def _state(client: docker.DockerClient, project: str, service: str) -> dict[str, Any]:
    for container in project_containers(client, project):
        if container.labels.get("com.docker.compose.service") == service:
            container.reload()
            return dict(container.attrs["State"])
    return {}


def _dump_logs(client: docker.DockerClient, project: str) -> None:
    for container in project_containers(client, project):
        name = container.labels.get("com.docker.compose.service", container.name)
        print(f"\n----- {name} ({container.status}) -----", file=sys.stderr)
        print(container.logs(tail=200).decode("utf-8", "replace"), file=sys.stderr)


def _has_healthcheck_command(client: docker.DockerClient) -> bool:
    try:
        client.containers.run(
            THUMBX_IMAGE, ["healthcheck", "--help"], entrypoint=["thumbx"], network_mode="none", remove=True
        )
    except docker.errors.ContainerError:
        return False
    return True


@pytest.mark.slow
def test_compose_up_turns_an_upload_into_thumbnails(
    engine: DockerEngine, client: docker.DockerClient
) -> None:
    timings: dict[str, float] = {}
    build_log: list[str] = []
    started = time.monotonic()
    try:
        prepare_images(client, timings, build_log)
    except Exception:
        print("".join(build_log[-200:]), file=sys.stderr)
        raise
    image = client.images.get(THUMBX_IMAGE)
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001", "the worker runs as a fixed non-root user"
    assert config["Entrypoint"] == ["thumbx", "worker"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "thumbx", "healthcheck"]
    with timed("lambda_build", timings):
        build_image(client, build_log, path=str(REPO), target="lambda", tag="thumbx-lambda:local")
    lambda_config = client.images.get("thumbx-lambda:local").attrs["Config"]
    assert lambda_config["Entrypoint"] == ["python", "-m", "awslambdaric"]
    assert lambda_config["Cmd"] == ["lambda_shim.handler.handler"]
    probe = "import awslambdaric, worker.cli.main, pyvips; print(pyvips.version(0))"
    out = client.containers.run(
        "thumbx-lambda:local", ["-I", "-c", probe], entrypoint=["python"], network_mode="none", remove=True
    )
    assert out.strip() == b"8", "the Lambda image carries the runtime client, the worker and libvips"
    # the demo's emulator (moto[server], ~220 MB of Flask, cryptography, sympy...) is an extra, not shipped
    absent = "import importlib.util as u; print(u.find_spec('moto') is None, u.find_spec('flask') is None)"
    for tag in (THUMBX_IMAGE, "thumbx-lambda:local"):
        out = client.containers.run(
            tag, ["-I", "-c", absent], entrypoint=["python"], network_mode="none", remove=True
        )
        assert out.strip() == b"True True", f"{tag} ships the demo emulator"
    # nor the operator and tooling extras: tqdm, aiolimiter (`ops`), PyYAML (`dev`)
    extras = (
        "import importlib.util as u; print([m for m in ('tqdm', 'aiolimiter', 'yaml') if u.find_spec(m)])"
    )
    for tag in (THUMBX_IMAGE, "thumbx-lambda:local"):
        out = client.containers.run(
            tag, ["-I", "-c", extras], entrypoint=["python"], network_mode="none", remove=True
        )
        assert out.strip() == b"[]", f"{tag} ships an extra: {out!r}"

    port = free_port()
    project = f"thumbx-ctest-{uuid.uuid4().hex[:8]}"
    compose = Compose(compose_bin(), engine.host, project, port)
    try:
        t = time.monotonic()
        up = compose("up", "--detach", "--no-build", "--pull", "never", timeout=600)
        assert up.returncode == 0, up.stderr
        _wait(lambda: _state(client, project, "worker").get("Running"), 180, "worker running")
        timings["compose_up_to_worker_running"] = round(time.monotonic() - t, 1)

        # no container has a network of its own: all share the host's loopback; LocalStack binds 127.0.0.1
        for container in project_containers(client, project):
            assert container.attrs["HostConfig"]["NetworkMode"] == "host", container.name
            if container.labels.get("com.docker.compose.service") in {"init", "worker"}:
                assert container.attrs["HostConfig"]["ReadonlyRootfs"], "read-only root filesystem"
        assert _listening_addresses(port) == {"0100007F"}, "LocalStack listens on 127.0.0.1 only"
        init = _state(client, project, "init")
        assert init["Status"] == "exited", init
        assert init["ExitCode"] == 0, init
        assert _state(client, project, "localstack")["Health"]["Status"] == "healthy"

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=ACCOUNT_B,  # LocalStack: the access key id picks account B
            aws_secret_access_key="localstack",
        )
        t = time.monotonic()
        s3.put_object(Bucket=BUCKET, Key="input/holiday photo.jpg", Body=jpeg_bytes(1600, 1200))

        def outputs() -> list[str]:
            listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="thumbnails/holiday photo.jpg/")
            return [o["Key"] for o in listed.get("Contents", [])]

        # every rendition, then the manifest (the completion marker, written last)
        _wait(lambda: len(outputs()) == len(EXPECTED) + 1, 120, "thumbnails written", interval=0.5)
        timings["upload_to_thumbnails"] = round(time.monotonic() - t, 1)
        for name, longest in EXPECTED.items():
            body = s3.get_object(Bucket=BUCKET, Key=f"thumbnails/holiday photo.jpg/{name}")["Body"].read()
            assert max(Image.open(io.BytesIO(body)).size) == longest, name
        manifest_key = "thumbnails/holiday photo.jpg/manifest.json"
        manifest = s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read()
        assert sorted(json.loads(manifest)["renditions"]) == sorted(n.split(".")[0] for n in EXPECTED)

        worker_logs = next(
            c for c in project_containers(client, project)
            if c.labels.get("com.docker.compose.service") == "worker"
        ).logs().decode()  # fmt: skip
        assert any(line.startswith("{") for line in worker_logs.splitlines()), "JSON log lines on stdout/err"

        if _has_healthcheck_command(client):
            _wait(
                lambda: _state(client, project, "worker").get("Health", {}).get("Status") == "healthy",
                90, "worker healthy",
            )  # fmt: skip
        else:
            print("note: `thumbx healthcheck` is not in this build yet; worker health not asserted")

        t = time.monotonic()
        stop = compose("stop", "--timeout", "30", "worker", timeout=120)
        assert stop.returncode == 0, stop.stderr
        timings["worker_stop"] = round(time.monotonic() - t, 1)
        assert _state(client, project, "worker")["ExitCode"] == 0, "SIGTERM: the worker drains and exits 0"
    except BaseException:
        _dump_logs(client, project)
        raise
    finally:
        down = compose("down", "--volumes", "--timeout", "20", timeout=180)
        timings["total"] = round(time.monotonic() - started, 1)
        print("container run timings (s):", json.dumps(timings))
    assert down.returncode == 0, down.stderr
    assert not list(project_containers(client, project)), "compose down removed every container"
