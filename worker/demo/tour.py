"""``thumbx demo``: the whole cross-account path on an embedded moto server, end to end.

Start the emulator -> provision accounts A and B from the shipped policies -> switch on IAM enforcement ->
run the real worker (the code `thumbx worker` runs) as account A -> upload samples into B's ``input/`` as
B's administrator -> wait until every upload has thumbnails or a recorded failure -> download, draw the
contact sheet, print a summary. Exit 1 if any upload was lost (no outcome within the timeout).

The demo reports every outcome itself (the table; with ``--keep-running`` one line per processed upload),
so the worker's own ``message_done`` log lines are dropped below ``--log-level debug``: an expected
failure (the PDF named ``.jpg``) is an outcome in the table, not a warning.
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

from worker.aws.sqs import Message
from worker.core.config import load_settings
from worker.core.keys import MANIFEST_NAME
from worker.demo.contact_sheet import SheetRow, human_bytes, rendition, write_contact_sheet
from worker.demo.emulator import MotoEmulator, moto_client_factory
from worker.demo.samples import Sample, demo_samples
from worker.ops.provision import Deployment, Names, admin_client, provision
from worker.runtime import service
from worker.runtime.pipeline import Outcome

log = structlog.get_logger(__name__)
REGION = "us-east-1"
FINAL = ("succeeded", "permanent")


@dataclass(eq=False)
class Tracked:
    sample: Sample
    key: str
    uploaded_at: float = 0.0
    outcome: Outcome | None = None
    finished_at: float = 0.0
    downloads: list[Path] = field(default_factory=list)
    reported: Outcome | None = None  # the outcome --out and the terminal last showed


def quiet_outcome_logs() -> None:
    """Drop the worker's per-message ``message_done`` lines: the demo prints each outcome itself."""

    def drop(_logger: Any, _method: str, event_dict: Any) -> Any:
        if event_dict.get("event") == "message_done":
            raise structlog.DropEvent
        return event_dict

    config = structlog.get_config()
    structlog.configure(processors=[drop, *config["processors"]])


def load_images(images: Path | None) -> list[Sample]:
    if images is None:
        return demo_samples()
    files = sorted(p for p in images.rglob("*") if p.is_file())
    return [Sample(p.relative_to(images).as_posix(), p.read_bytes(), "") for p in files]


class _Outcomes:
    """The worker's observer: records final outcomes of uploads under the input prefix (the samples and,
    while the demo keeps running, anything else uploaded) and queues them for the live report."""

    def __init__(self, tracked: dict[str, Tracked], input_prefix: str) -> None:
        self.tracked = tracked
        self.samples = frozenset(tracked)
        self.input_prefix = input_prefix
        self.all_samples_done = asyncio.Event()
        self.processed: asyncio.Queue[Outcome] = asyncio.Queue()
        self.live = False

    def __call__(self, _message: Message, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if not outcome.key.startswith(self.input_prefix):
                continue
            if outcome.status in FINAL:
                item = self.tracked.get(outcome.key)
                if item is None:  # uploaded by the user while the demo keeps running
                    name = outcome.key[len(self.input_prefix) :]
                    if not _local_name(name):
                        print(f"{outcome.key}  {outcome.status}  (not downloaded: not a path under --out)")
                        continue
                    item = self.tracked[outcome.key] = Tracked(
                        Sample(name, b"", "uploaded while running"), outcome.key
                    )
                if item.outcome is None or self.live:
                    item.outcome, item.finished_at = outcome, time.perf_counter()
                if self.live:  # possibly uploaded again, other bytes under the same key: fetch it anew
                    item.sample = Sample(item.sample.name, b"", item.sample.note)
                self.processed.put_nowait(outcome)
            elif outcome.status == "transient" and self.live:
                self.processed.put_nowait(outcome)
        if all(self.tracked[k].outcome is not None for k in self.samples):
            self.all_samples_done.set()


def _local_name(name: str) -> bool:
    """A key whose path stays under --out when written there (no ``..``, not absolute, not empty)."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


async def run_demo(
    images: Path | None,
    out_dir: Path,
    *,
    keep_running: bool = False,
    timeout: float = 120.0,
    env_file: Path | None = None,
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
        observer = _Outcomes(tracked, deployment.input_prefix)
        stop = asyncio.Event()
        worker = asyncio.create_task(
            service.run(
                load_settings(
                    # no health endpoint (a fixed port could clash with a real worker)
                    deployment.worker_env() | {"THUMBX_WAIT_SECONDS": "1", "THUMBX_HEALTH_PORT": "off"}
                ),
                base_session=aioboto3.Session(
                    aws_access_key_id=deployment.worker_keys.access_key_id,
                    aws_secret_access_key=deployment.worker_keys.secret_access_key,
                    region_name=deployment.region,
                ),
                stop=stop,
                observer=observer,
            )
        )
        try:
            await _upload(deployment, tracked)
            waiter = asyncio.create_task(observer.all_samples_done.wait())
            await asyncio.wait({waiter, worker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if worker.done():
                worker.result()  # a crashed worker is an error, not a timeout
            lost = [key for key, t in tracked.items() if t.outcome is None]
            s3 = admin_client(deployment, "s3")
            await asyncio.to_thread(_refresh, s3, deployment, tracked, out_dir)
            _print_summary(list(tracked.values()))
            print(f"contact sheet: {out_dir / 'index.html'}  {out_dir / 'contact-sheet.png'}")
            if env_file is not None:
                await asyncio.to_thread(env_file.write_text, deployment.env_file_text(), encoding="utf-8")
            if keep_running:
                observer.live = True
                print_connection(deployment, env_file)
                await _report_live(observer, worker, s3, deployment, out_dir)
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


async def _report_live(
    observer: _Outcomes, worker: asyncio.Task[Any], s3: Any, deployment: Deployment, out_dir: Path
) -> None:
    """Until the worker stops: one line per processed upload, and --out refreshed after each batch."""
    while not worker.done():
        getter = asyncio.create_task(observer.processed.get())
        await asyncio.wait({getter, worker}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            break
        batch = [getter.result()]
        while not observer.processed.empty():
            batch.append(observer.processed.get_nowait())
        for line in await asyncio.to_thread(
            _refresh_lines, s3, deployment, dict(observer.tracked), out_dir, batch
        ):
            print(line, flush=True)
    worker.result()


def _refresh_lines(
    s3: Any, deployment: Deployment, tracked: dict[str, Tracked], out_dir: Path, batch: Sequence[Outcome]
) -> list[str]:
    changed = _refresh(s3, deployment, tracked, out_dir)
    lines = []
    for outcome in batch:
        item = tracked.get(outcome.key)
        if outcome.status == "transient":
            lines.append(live_line(outcome, []))
        elif item is not None and item in changed and item.outcome is outcome:
            lines.append(live_line(outcome, item.downloads))
    return lines


def live_line(outcome: Outcome, downloads: Sequence[Path]) -> str:
    """``input/cat.jpg  succeeded  sm 128x85 4.3 kB, …`` or ``…  permanent  reason: detail``."""
    if outcome.status == "succeeded":
        parts = []
        for path in _images(downloads):
            info = rendition(path)
            size = f"{info.width}x{info.height} " if info is not None else ""
            parts.append(f"{path.stem} {size}{human_bytes(path.stat().st_size)}")
        what = ", ".join(parts) or outcome.reason
    else:
        what = f"{outcome.reason}: {outcome.detail}" if outcome.detail else outcome.reason
        if outcome.status == "transient":
            what += " (will be retried)"
    return f"{outcome.key}  {outcome.status}  {what}"


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


def _refresh(s3: Any, deployment: Deployment, tracked: dict[str, Tracked], out_dir: Path) -> list[Tracked]:
    """Download what changed since the last refresh, then rewrite summary.json and the contact sheet.
    Returns the items whose outcome is new."""
    changed = []
    for item in list(tracked.values()):
        source = out_dir / "sources" / item.sample.name
        if not source.exists() or (item.outcome is not None and item.outcome is not item.reported):
            _fetch(s3, deployment, item, out_dir)
            changed.append(item)
    items = list(tracked.values())
    (out_dir / "summary.json").write_text(json.dumps(_summary(items), indent=2), encoding="utf-8")
    write_contact_sheet(_sheet_rows(items, out_dir), out_dir)
    return changed


def _fetch(s3: Any, deployment: Deployment, item: Tracked, out_dir: Path) -> None:
    outcome, sample = item.outcome, item.sample  # the observer may replace both meanwhile: fetch these
    if not sample.data:  # uploaded (again) while running: the source as stored in B
        body = s3.get_object(Bucket=deployment.bucket, Key=item.key)["Body"].read()
        sample = item.sample = Sample(sample.name, body, sample.note)
    source = out_dir / "sources" / sample.name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(sample.data)
    downloads = []
    for key in outcome.outputs if outcome is not None else ():
        target = out_dir / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read())
        downloads.append(target)
    item.downloads, item.reported = downloads, outcome


def _summary(items: Sequence[Tracked]) -> list[dict[str, Any]]:
    return [
        {
            "source": t.sample.name,
            "bytes": len(t.sample.data),
            "outcome": t.outcome.status if t.outcome else "lost",
            "reason": t.outcome.reason if t.outcome else "no outcome",
            "detail": t.outcome.detail if t.outcome else "",
            "outputs": list(t.outcome.outputs) if t.outcome else [],
            "worker_ms": t.outcome.timings_ms if t.outcome else {},
            "upload_to_done_ms": _latency_ms(t),
        }
        for t in items
    ]


def _latency_ms(item: Tracked) -> float | None:
    if item.outcome is None or not item.uploaded_at:
        return None
    return round(max(0.0, item.finished_at - item.uploaded_at) * 1000, 1)


def _print_summary(items: Sequence[Tracked]) -> None:
    rows = [("source", "bytes", "presets written", "render ms", "total ms", "outcome")]
    for t in items:
        outcome = t.outcome
        rows.append(
            (
                t.sample.name,
                str(len(t.sample.data)),
                (", ".join(p.stem for p in _images([Path(k) for k in outcome.outputs])) or "-")
                if outcome
                else "-",
                f"{outcome.timings_ms.get('render', 0):.0f}" if outcome else "-",
                f"{outcome.timings_ms.get('total', 0):.0f}" if outcome else "-",
                f"{outcome.status} ({outcome.reason})" if outcome else "LOST",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _images(downloads: Sequence[Path]) -> list[Path]:
    """The renditions among the downloads: the manifest is downloaded, not drawn or listed as one."""
    return [d for d in downloads if d.name != MANIFEST_NAME]


def _sheet_rows(items: Sequence[Tracked], out_dir: Path) -> list[SheetRow]:
    rows = []
    for t in items:
        outcome = f"{t.outcome.status} ({t.outcome.reason})" if t.outcome else "lost (no outcome)"
        detail = t.outcome.detail if t.outcome and t.outcome.status != "succeeded" else ""
        rows.append(
            SheetRow(
                out_dir / "sources" / t.sample.name, _images(t.downloads), t.sample.name, outcome, detail
            )
        )
    return rows


def print_connection(deployment: Deployment, env_file: Path | None) -> None:
    aws = f"aws --endpoint-url {deployment.endpoint} --region {deployment.region}"
    bucket, prefix = deployment.bucket, deployment.input_prefix
    print("\nThe emulator and the worker keep running (Ctrl-C to stop); each upload they process from now on")
    print("is printed here and refreshes --out. As account B's administrator, in a shell:")
    print(
        f"  export AWS_ACCESS_KEY_ID={deployment.admin_keys.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={deployment.admin_keys.secret_access_key}"
    )
    print(f"  {aws} s3 cp IMAGE s3://{bucket}/{prefix}")
    print(f"  {aws} s3 ls --recursive s3://{bucket}/{deployment.output_prefix}")
    print(
        f"  {aws} sqs get-queue-attributes --queue-url {deployment.dlq_url} "
        "--attribute-names ApproximateNumberOfMessages"
    )
    if env_file is not None:
        print(f"To run another worker against this emulator: set -a; . {env_file}; set +a; thumbx worker")
    else:
        print("To run another worker against this emulator (or pass --env-file PATH to get it as a file):")
        for key, value in deployment.worker_env().items():
            print(f"  {key}={value}")
