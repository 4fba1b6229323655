"""``thumbx demo``: the whole cross-account path on an embedded moto server, end to end.

Start the emulator -> provision accounts A and B from the shipped policies -> switch on IAM enforcement ->
run the real worker (the code `thumbx worker` runs) as account A -> upload samples into B's ``input/`` as
B's administrator -> wait until every upload has thumbnails or a recorded failure -> download, draw the
contact sheet, print a summary. Exit 1 if any upload was lost (no outcome within the timeout).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import structlog

from worker import service
from worker.config import load_settings
from worker.consumer import OutcomeObserver
from worker.contact_sheet import SheetRow, write_contact_sheet
from worker.emulator import MotoEmulator, moto_client_factory
from worker.keys import MANIFEST_NAME
from worker.pipeline import Outcome
from worker.provision import Deployment, Names, admin_client, provision
from worker.queue import Message
from worker.samples import Sample, demo_samples

log = structlog.get_logger(__name__)
REGION = "us-east-1"


@dataclass
class Tracked:
    sample: Sample
    key: str
    uploaded_at: float = 0.0
    outcome: Outcome | None = None
    finished_at: float = 0.0
    downloads: list[Path] = field(default_factory=list)


def load_images(images: Path | None) -> list[Sample]:
    if images is None:
        return demo_samples()
    files = sorted(p for p in images.rglob("*") if p.is_file())
    return [Sample(p.relative_to(images).as_posix(), p.read_bytes(), "") for p in files]


async def run_demo(
    images: Path | None, out_dir: Path, *, keep_running: bool = False, timeout: float = 120.0
) -> int:
    samples = load_images(images)
    if not samples:
        print(f"thumbx demo: no files under {images}", file=sys.stderr)
        return 2
    with MotoEmulator() as emulator:
        deployment = provision(
            moto_client_factory(emulator.endpoint_url, REGION), Names(), endpoint=emulator.endpoint_url
        )
        emulator.enable_iam()
        print(f"emulator: {emulator.endpoint_url} (moto, IAM enforced)  role: {deployment.role_arn}")
        tracked = {
            f"{deployment.input_prefix}{s.name}": Tracked(s, f"{deployment.input_prefix}{s.name}")
            for s in samples
        }
        done = asyncio.Event()
        stop = asyncio.Event()
        worker = asyncio.create_task(
            service.run(
                load_settings(
                    # one-shot: no health endpoint (a fixed port could clash with a real worker)
                    deployment.worker_env() | {"THUMBX_WAIT_SECONDS": "1", "THUMBX_HEALTH_PORT": "off"}
                ),
                base_session=aioboto3.Session(
                    aws_access_key_id=deployment.worker_keys.access_key_id,
                    aws_secret_access_key=deployment.worker_keys.secret_access_key,
                    region_name=deployment.region,
                ),
                stop=stop,
                observer=_observer(tracked, done),
            )
        )
        try:
            await _upload(deployment, tracked)
            waiter = asyncio.create_task(done.wait())
            await asyncio.wait({waiter, worker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if worker.done():
                worker.result()  # a crashed worker is an error, not a timeout
            lost = [key for key, t in tracked.items() if t.outcome is None]
            _download(deployment, tracked, out_dir)
            _print_summary(list(tracked.values()))
            html_path, png_path = write_contact_sheet(_sheet_rows(tracked.values(), out_dir), out_dir)
            print(f"contact sheet: {html_path}  {png_path}")
            if keep_running:
                _print_connection(deployment)
                await worker
        finally:
            stop.set()
            await worker
    if lost:
        print(
            f"LOST: {len(lost)} upload(s) had no outcome within {timeout:.0f}s: {', '.join(lost)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _observer(tracked: dict[str, Tracked], done: asyncio.Event) -> OutcomeObserver:
    def observe(_message: Message, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            item = tracked.get(outcome.key)
            if item is not None and outcome.status in ("succeeded", "permanent") and item.outcome is None:
                item.outcome, item.finished_at = outcome, time.perf_counter()
        if all(t.outcome is not None for t in tracked.values()):
            done.set()

    return observe


async def _upload(deployment: Deployment, tracked: dict[str, Tracked]) -> None:
    s3 = admin_client(deployment, "s3")
    for item in tracked.values():
        content_type = mimetypes.guess_type(item.sample.name)[0] or "application/octet-stream"
        await asyncio.to_thread(
            s3.put_object,
            Bucket=deployment.bucket,
            Key=item.key,
            Body=item.sample.data,
            ContentType=content_type,
        )
        item.uploaded_at = time.perf_counter()


def _download(deployment: Deployment, tracked: dict[str, Tracked], out_dir: Path) -> None:
    s3 = admin_client(deployment, "s3")
    for item in tracked.values():
        source = out_dir / "sources" / item.sample.name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(item.sample.data)
        if item.outcome is None:
            continue
        for key in item.outcome.outputs:
            target = out_dir / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read())
            item.downloads.append(target)
    summary = [
        {
            "source": t.sample.name,
            "bytes": len(t.sample.data),
            "outcome": t.outcome.status if t.outcome else "lost",
            "reason": t.outcome.reason if t.outcome else "no outcome",
            "outputs": list(t.outcome.outputs) if t.outcome else [],
            "worker_ms": t.outcome.timings_ms if t.outcome else {},
            "upload_to_done_ms": _latency_ms(t),
        }
        for t in tracked.values()
    ]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")


def _latency_ms(item: Tracked) -> float | None:
    if item.outcome is None or not item.uploaded_at:
        return None
    return round(max(0.0, item.finished_at - item.uploaded_at) * 1000, 1)


def _print_summary(items: Sequence[Tracked] | Any) -> None:
    rows = [("source", "bytes", "presets written", "render ms", "total ms", "outcome")]
    for t in items:
        outcome = t.outcome
        rows.append(
            (
                t.sample.name,
                str(len(t.sample.data)),
                ", ".join(Path(k).stem for k in outcome.outputs) if outcome and outcome.outputs else "-",
                f"{outcome.timings_ms.get('render', 0):.0f}" if outcome else "-",
                f"{outcome.timings_ms.get('total', 0):.0f}" if outcome else "-",
                f"{outcome.status} ({outcome.reason})" if outcome else "LOST",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _sheet_rows(items: Any, out_dir: Path) -> list[SheetRow]:
    rows = []
    for t in items:
        caption = t.sample.name if t.outcome is None else f"{t.sample.name} [{t.outcome.reason}]"
        images = [d for d in t.downloads if d.name != MANIFEST_NAME]  # the manifest is downloaded, not shown
        rows.append(SheetRow(out_dir / "sources" / t.sample.name, images, caption))
    return rows


def _print_connection(deployment: Deployment) -> None:
    print("\nThe emulator keeps running (Ctrl-C to stop). Upload more as account B's admin:")
    print(
        f"  AWS_ACCESS_KEY_ID={deployment.admin_keys.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={deployment.admin_keys.secret_access_key} "
        f"aws --endpoint-url {deployment.endpoint} s3 cp IMAGE s3://{deployment.bucket}/{deployment.input_prefix}"
    )
    print("Worker environment (run `thumbx worker` with it):")
    for key, value in deployment.worker_env().items():
        print(f"  {key}={value}")
