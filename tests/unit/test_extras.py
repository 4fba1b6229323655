"""The plain install runs the service without the extras; an operator command that needs one says which."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

import worker.cli.main as cli

EXTRA_MODULES = ("tqdm", "aiolimiter", "yaml", "moto")
ENV = {
    "THUMBX_BUCKET": "images-b",
    "THUMBX_QUEUE_URL": "http://127.0.0.1:9/222222222222/thumbx-jobs",
    "THUMBX_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: no request may be needed to fail
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def _without_extras(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter in which every extra's module fails to import, as in the image."""
    block = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in EXTRA_MODULES)
    return subprocess.run(
        [sys.executable, "-c", block + code],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **ENV},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_service_and_the_lambda_shim_run_without_any_extra() -> None:
    proc = _without_extras(
        "import json\n"
        "from worker.cli.main import build_parser, main\n"
        "from lambda_shim import handler\n"
        "import worker.runtime.service, worker.runtime.consumer\n"
        "build_parser()  # every subcommand registers\n"
        "event = {'Records': [{'eventSource': 'aws:sqs', 'messageId': 'm-1', 'attributes': {},\n"
        "                      'body': json.dumps({'Event': 's3:TestEvent'})}]}\n"
        "print(json.dumps(handler.handler(event, None)))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("blocked", "argv", "distribution"),
    [
        ("aiolimiter", ["backfill", "--progress", "log"], "aiolimiter"),
        ("tqdm", ["backfill", "--progress", "bar"], "tqdm"),
    ],
)
def test_backfill_without_the_ops_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    blocked: str,
    argv: list[str],
    distribution: str,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, blocked, None)  # as in the service image: the import fails
    try:
        assert cli.main(argv) == 2
    finally:
        structlog.reset_defaults()  # logging was configured onto capsys' stream, closed after this test
    err = capsys.readouterr().err
    assert err == (
        f"thumbx: configuration error: thumbx backfill needs {distribution}, which is not installed: "
        "pip install 'thumbx[ops]'\n"
    )


def test_the_template_generator_without_pyyaml_says_how_to_install_it() -> None:
    proc = _without_extras("import runpy; runpy.run_module('tools.deploy_render', run_name='__main__')")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "tools.deploy_render needs PyYAML, which is not installed: pip install 'thumbx[dev]'"
    ]


def test_the_dockerfile_installs_thumbx_without_extras() -> None:
    from tools.containers.static_checks import REPO, check_plain_install

    assert check_plain_install((REPO / "Dockerfile").read_text()) == []
    with_extra = (
        "RUN /opt/thumbx/bin/pip wheel --wheel-dir /wheels '.[ops]' \\\n    && pip install thumbx[demo]\n"
    )
    assert check_plain_install(with_extra) == [
        "Dockerfile: \"pip wheel --wheel-dir /wheels '.[ops]'\" installs thumbx[ops]"
        " (images: the plain install)",
        "Dockerfile: 'pip install thumbx[demo]' installs thumbx[demo] (images: the plain install)",
    ]


def test_the_core_dependencies_name_no_extra_only_package() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    core = {dep.split(">")[0].split("[")[0].lower() for dep in project["dependencies"]}
    assert core.isdisjoint({"pyyaml", "tqdm", "aiolimiter", "moto"})
    extras = project["optional-dependencies"]
    assert {dep.split(">")[0] for dep in extras["ops"]} == {"tqdm", "aiolimiter"}
    assert "thumbx[demo,ops]" in extras["dev"]
