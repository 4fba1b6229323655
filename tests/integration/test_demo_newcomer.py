"""`thumbx demo --keep-running` as a newcomer uses it: the table without log noise, the printed commands
(region included) working as printed, one line per upload processed afterwards, ``--out`` refreshed, and
the worker environment as a file a shell can source."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
from PIL import Image

import worker.demo.tour as demo
from tests.support import jpeg_bytes
from worker.demo.contact_sheet import human_bytes

pytestmark = pytest.mark.slow

NEW_NAME = "new #1? 100% grüße.jpg"


class _Lines:
    """stdout of a running process, line by line, with a bounded wait (a guard, not a timing assertion)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self._queue.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, found: Callable[[str], bool], timeout: float = 120) -> str:
        while True:
            try:
                line = self._queue.get(timeout=timeout).rstrip("\n")
            except queue.Empty:
                pytest.fail("no such line; stdout so far:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if found(line):
                return line


def test_keep_running_reports_uploads_refreshes_out_and_writes_the_env_file(tmp_path: Path) -> None:
    out, env_file = tmp_path / "out", tmp_path / "worker.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.cli.main",
            "demo",
            "--out",
            str(out),
            "--keep-running",
            "--env-file",
            str(env_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _Lines(proc)
        lines.until(lambda line: line.startswith("To run another worker against this emulator"))
        printed = "\n".join(lines.seen)
        # the expected failure is a row of the table, not a log line
        assert re.search(r"^not-an-image\.jpg .* permanent \(unsupported_format\)$", printed, re.M), printed
        assert "start a worker" not in printed.lower()
        commands = [line.strip() for line in lines.seen if line.strip().startswith("aws ")]
        assert len(commands) == 3
        assert all(" --region us-east-1 " in command for command in commands), commands
        keys = dict(
            re.findall(r"(AWS_\w+)=(\S+)", next(x for x in lines.seen if "export AWS_ACCESS_KEY_ID" in x))
        )
        endpoint = re.search(r"--endpoint-url (\S+)", commands[0])
        assert endpoint is not None

        # the env file sources in a shell to exactly the worker's variables
        sourced = subprocess.run(
            ["bash", "-c", f"set -a; . {shlex.quote(str(env_file))}; set +a; env"],
            capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
        ).stdout  # fmt: skip
        env = dict(
            line.split("=", 1) for line in sourced.splitlines() if line.startswith(("THUMBX_", "AWS_"))
        )
        assert env["THUMBX_ENDPOINT_URL"] == endpoint.group(1)
        assert env["THUMBX_QUEUE_URL"].startswith(endpoint.group(1))
        assert env["AWS_DEFAULT_REGION"] == env["THUMBX_REGION"] == "us-east-1"
        assert env["AWS_ACCESS_KEY_ID"] != keys["AWS_ACCESS_KEY_ID"], "the worker's keys, not B's admin"

        # upload more as B's admin with the printed credentials; each is reported once it is processed
        s3 = boto3.client(
            "s3", endpoint_url=endpoint.group(1), region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"], aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        s3.put_object(Bucket="thumbx-demo-images", Key=f"input/{NEW_NAME}", Body=jpeg_bytes(800, 600))
        ok = lines.until(lambda line: line.startswith(f"input/{NEW_NAME}  "))
        sizes = {
            p: (out / "thumbnails" / NEW_NAME / p).stat().st_size for p in ("sm.webp", "md.jpg", "lg.jpg")
        }
        assert ok == (
            f"input/{NEW_NAME}  succeeded  sm 128x96 {human_bytes(sizes['sm.webp'])}, "
            f"md 512x384 {human_bytes(sizes['md.jpg'])}, lg 800x600 {human_bytes(sizes['lg.jpg'])}"
        )
        s3.put_object(Bucket="thumbx-demo-images", Key="input/broken.png", Body=b"not a png")
        failed = lines.until(lambda line: line.startswith("input/broken.png  "))
        assert failed == "input/broken.png  permanent  unsupported_format: not an image format thumbx reads"

        # the same name uploaded again, other bytes: reported again, and --out shows the new upload
        s3.put_object(Bucket="thumbx-demo-images", Key=f"input/{NEW_NAME}", Body=jpeg_bytes(300, 400))
        again = lines.until(lambda line: line.startswith(f"input/{NEW_NAME}  "))
        assert again.startswith(f"input/{NEW_NAME}  succeeded  sm 96x128 ")
        assert again.endswith(
            f"lg 300x400 {human_bytes((out / 'thumbnails' / NEW_NAME / 'lg.jpg').stat().st_size)}"
        )
        with Image.open(out / "sources" / NEW_NAME) as source:
            assert source.size == (300, 400)

        # --out was refreshed: summary, thumbnails, the page and the sheet know the new uploads
        summary = {row["source"]: row for row in json.loads((out / "summary.json").read_text())}
        assert summary[NEW_NAME]["outcome"] == "succeeded"
        assert summary["broken.png"]["reason"] == "unsupported_format"
        assert (out / "sources" / NEW_NAME).read_bytes()[:2] == b"\xff\xd8"
        with Image.open(out / "thumbnails" / NEW_NAME / "md.jpg") as image:
            assert image.size == (300, 400), "never upscaled: md of a 300x400 upload"
        page = (out / "index.html").read_text(encoding="utf-8")
        assert f"src='thumbnails/{quote(NEW_NAME)}/md.jpg'" in page
        assert "not an image format thumbx reads" in page

        # the printed SQS command works as printed (two failures in the DLQ: the PDF and broken.png)
        if shutil.which("aws") is not None:
            no_aws_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | keys
            no_aws_env |= {"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
            result = subprocess.run(
                shlex.split(commands[2]), capture_output=True, text=True, check=False,
                env=no_aws_env,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["Attributes"]["ApproximateNumberOfMessages"] == "2"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert "message_done" not in stderr, stderr
    assert "{'" not in stderr + "\n".join(lines.seen), "no Python dict repr anywhere"


def test_env_file_without_keep_running_is_refused_in_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "e"
    proc = subprocess.run(
        [sys.executable, "-m", "worker.cli.main", "demo", "--out", str(tmp_path),
         "--env-file", str(env_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stdout
        == "thumbx demo: --env-file needs --keep-running (the emulator stops when the demo ends)\n"
    )
    assert not env_file.exists()


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("cat.jpg", True),
        ("a/b c#?.jpg", True),
        ("../escape.jpg", False),
        ("a/../../x", False),
        ("/abs", False),
    ],
)
def test_only_uploads_whose_name_stays_under_out_are_downloaded(name: str, local: bool) -> None:
    assert demo._local_name(name) is local
