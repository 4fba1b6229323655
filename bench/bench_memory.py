"""Memory of one worker process (a benchmark, never a test). Each mode runs in a fresh process.

* soak: N renders through the real Consumer + Pipeline + render pool, with an in-memory queue and store
  (so only the worker's own memory is measured, not the emulator's); RSS sampled after every message;
  growth = peak RSS over the last window vs the first window (windows of N/4, i.e. 500 of 2,000).
  The photos are the corpus JPEGs re-encoded to at most ``--soak-edge`` px (EXIF kept), so 2,000 renders
  fit in a minute or two on 2 cores; ``--soak-edge 0`` uses them at full size.
* Like ``thumbx worker``, the process caps glibc's malloc arenas first (``--malloc-arenas 0``: glibc's own
  default, the "before" of that tuning).
* peak: the largest corpus photos, several times over, at full concurrency; peak RSS (``ru_maxrss``).
* downloads: ``--concurrency`` max-size sources (a 24-MP JPEG padded to ``--max-mb``) downloaded and
  rendered at once through the real S3Store + Pipeline from a moto server in a child process, then as many
  oversized ones (twice the limit, events without a size: refused on ContentLength); peak RSS of this
  process over each phase only (VmHWM, reset through /proc/self/clear_refs after the uploads).

Usage: python -m bench.bench_memory soak|peak|downloads [--renders N] [--concurrency C] [--vips-cache N]
       [--max-mb M] [--memory-mb B] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from bench.common import corpus_photos, peak_rss_mb, quiet_json_logging, rss_mb
from worker.aws.s3 import ObjectHead, StoredObject
from worker.aws.sqs import Message
from worker.core.config import Settings
from worker.core.keys import KeyLayout
from worker.core.presets import DEFAULT_PRESETS, parse_presets
from worker.observability.malloc import DEFAULT_ARENAS, cap_malloc_arenas
from worker.observability.telemetry import Metrics
from worker.ops.backfill import SourceObject, s3_event
from worker.runtime.consumer import Consumer
from worker.runtime.leases import ConsumerConfig
from worker.runtime.pipeline import Outcome, Pipeline, PipelineConfig
from worker.testing import MemoryQueue, MemoryStore

BUCKET = "soak"


def shrink(data: bytes, edge: int) -> bytes:
    try:
        return _shrink(data, edge)
    except OSError:  # e.g. a truncated corpus file: kept as it is (the worker refuses it, as it should)
        return data


def _shrink(data: bytes, edge: int) -> bytes:
    with Image.open(io.BytesIO(data)) as source:
        if max(source.size) <= edge:
            return data
        exif = source.info.get("exif")
        source.draft("RGB", (edge, edge))
        image = source.convert("RGB")
        image.thumbnail((edge, edge))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90, **({"exif": exif} if exif else {}))
        return out.getvalue()


async def run_worker(
    photos: Sequence[tuple[str, bytes]], renders: int, concurrency: int, threads: int
) -> dict[str, Any]:
    sources = {f"input/{i}/{name}": data for i, (name, data) in enumerate(photos)}
    keys = list(sources)
    bodies = [
        json.dumps(s3_event(BUCKET, SourceObject(keys[i % len(keys)], "e", 0, _epoch()), region="us-east-1"))
        for i in range(renders)
    ]
    store = MemoryStore(sources, record=False)  # puts counted and dropped
    rss: list[float] = []
    statuses: dict[str, int] = {}
    stop = asyncio.Event()

    def observe(_m: Message, outcomes: Sequence[Outcome]) -> None:
        rss.append(rss_mb())
        for o in outcomes:
            statuses[o.status] = statuses.get(o.status, 0) + 1
        if len(rss) >= renders:
            stop.set()

    with ThreadPoolExecutor(threads, thread_name_prefix="render") as pool:
        pipeline = Pipeline(
            store,
            PipelineConfig(frozenset({BUCKET}), KeyLayout(), parse_presets(DEFAULT_PRESETS)),
            executor=pool,
        )
        consumer = Consumer(
            MemoryQueue(
                [Message(str(i), f"rh-{i}", b) for i, b in enumerate(bodies)], idle_seconds=0.05, record=False
            ),
            pipeline,
            ConsumerConfig(concurrency=concurrency, wait_seconds=0),
            metrics=Metrics(),
            observer=observe,
        )
        started = time.perf_counter()
        await asyncio.wait_for(consumer.run(stop), timeout=1800)
        elapsed = time.perf_counter() - started
    return {"rss": rss, "statuses": statuses, "elapsed_s": elapsed, "bytes_written": store.written}


def _epoch() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    photos = corpus_photos()
    if args.soak_edge:
        photos = [(name, shrink(data, args.soak_edge)) for name, data in photos]
    baseline = rss_mb()
    run = asyncio.run(run_worker(photos, args.renders, args.concurrency, args.threads))
    rss = run["rss"]
    window = max(1, len(rss) // 4)
    first, last = max(rss[:window]), max(rss[-window:])
    return {
        "renders": len(rss),
        "window": window,
        "photo_edge_px": args.soak_edge or "full",
        "concurrency": args.concurrency,
        "render_threads": args.threads,
        "vips_cache_max": args.vips_cache,
        "vips_concurrency": os.environ.get("VIPS_CONCURRENCY", "default"),
        "malloc_arenas": args.malloc_arenas or os.environ.get("MALLOC_ARENA_MAX", "glibc default"),
        "statuses": run["statuses"],
        "renders_per_s": round(len(rss) / run["elapsed_s"], 1),
        "rss_before_mb": round(baseline, 1),
        "rss_first_window_max_mb": round(first, 1),
        "rss_last_window_max_mb": round(last, 1),
        "rss_growth_pct": round((last / first - 1) * 100, 1),
        "target_growth_pct_max": 10,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_series_mb": [round(rss[i], 1) for i in range(0, len(rss), max(1, len(rss) // 20))],
    }


def peak(args: argparse.Namespace) -> dict[str, Any]:
    photos = corpus_photos()
    sized = []
    for name, data in photos:
        with Image.open(io.BytesIO(data)) as image:
            sized.append((image.size[0] * image.size[1], name, data))
    largest = [(name, data) for _, name, data in sorted(sized, reverse=True)[: args.largest]]
    baseline = rss_mb()
    run = asyncio.run(run_worker(largest, args.largest * 3, args.concurrency, args.threads))
    return {
        "photos": [name for name, _ in largest],
        "megapixels": [round(p / 1e6, 1) for p, _, _ in sorted(sized, reverse=True)[: args.largest]],
        "renders": len(run["rss"]),
        "concurrency": args.concurrency,
        "render_threads": args.threads,
        "vips_cache_max": args.vips_cache,
        "statuses": run["statuses"],
        "rss_before_mb": round(baseline, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def vm_hwm_mb() -> float:
    """Peak RSS since the last :func:`reset_peak` (VmHWM), MiB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def padded_jpeg(size: int) -> bytes:
    """A baseline 24-MP JPEG (noise: no shrink-on-load shortcut) followed by zeros up to ``size`` bytes."""
    image = Image.effect_noise((6000, 4000), 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    data = out.getvalue()
    if len(data) > size:
        raise SystemExit(f"bench: the sample JPEG is {len(data)} bytes, over --max-mb")
    return data + b"\0" * (size - len(data))


class CountingS3Store:
    """The real S3Store, counting GetObject calls."""

    def __init__(self, client: Any) -> None:
        from worker.aws.s3 import S3Store

        self._store = S3Store(client)
        self.gets = 0

    async def get(self, bucket: str, key: str, **options: Any) -> StoredObject:
        self.gets += 1
        return await self._store.get(bucket, key, **options)

    async def head(
        self, bucket: str, key: str, *, missing_is_error: bool = False, version_id: str | None = None
    ) -> ObjectHead | None:
        return await self._store.head(bucket, key, missing_is_error=missing_is_error, version_id=version_id)

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        await self._store.put(bucket, key, data, content_type=content_type, metadata=metadata)


async def run_downloads(endpoint: str, args: argparse.Namespace) -> dict[str, Any]:
    import aioboto3

    from worker.core.events import ObjectRef
    from worker.core.limits import MIB, Limits

    max_bytes = args.max_mb * MIB
    n = args.concurrency
    session = aioboto3.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    async with session.client("s3", endpoint_url=endpoint) as s3:
        await s3.create_bucket(Bucket=BUCKET)
        data = padded_jpeg(max_bytes)
        for i in range(n):
            await s3.put_object(Bucket=BUCKET, Key=f"input/max/{i}.jpg", Body=data)
        await s3.put_object(Bucket=BUCKET, Key="input/over.jpg", Body=data + data)
        del data
        limits = Limits(max_bytes=max_bytes, memory_budget_bytes=args.memory_mb * MIB)
        config = PipelineConfig(
            frozenset({BUCKET}), KeyLayout(), parse_presets(DEFAULT_PRESETS), limits=limits
        )
        phases: dict[str, Any] = {}
        with ThreadPoolExecutor(args.threads, thread_name_prefix="render") as pool:
            store = CountingS3Store(s3)
            pipeline = Pipeline(store, config, executor=pool)
            for phase, keys in (
                ("max_size", [f"input/max/{i}.jpg" for i in range(n)]),
                ("oversized", ["input/over.jpg"] * n),
            ):
                baseline = rss_mb()
                reset_peak()
                store.gets = 0
                started = time.perf_counter()
                outcomes = await asyncio.gather(
                    *(pipeline.process(ObjectRef(BUCKET, key, etag=f"e{i}")) for i, key in enumerate(keys))
                )
                phases[phase] = {
                    "messages": n,
                    "outcomes": sorted({f"{o.status}:{o.reason}" for o in outcomes}),
                    "get_object_calls": store.gets,  # > messages: renders that waited and read again
                    "rss_before_mb": round(baseline, 1),
                    "peak_rss_mb": round(vm_hwm_mb(), 1),
                    "elapsed_s": round(time.perf_counter() - started, 1),
                }
    return {
        "concurrency": n,
        "render_threads": args.threads,
        "max_bytes_mb": args.max_mb,
        "memory_budget_mb": args.memory_mb,
        **phases,
    }


def downloads(args: argparse.Namespace) -> dict[str, Any]:
    from bench.common import moto_process

    with moto_process() as moto:
        return asyncio.run(run_downloads(moto.endpoint, args))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("soak", "peak", "downloads"))
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument(
        "--soak-edge", type=int, default=1600, help="shrink soak photos to this edge (0: full)"
    )
    parser.add_argument("--largest", type=int, default=4, help="peak: how many of the largest photos")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=Settings.concurrency,
        help="messages in flight (THUMBX_CONCURRENCY)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="render pool size")
    parser.add_argument(
        "--vips-cache", type=int, default=None, help="pyvips.cache_set_max (default: libvips')"
    )
    parser.add_argument(
        "--malloc-arenas",
        type=int,
        default=DEFAULT_ARENAS,
        help="cap glibc malloc arenas first, as `thumbx worker` does (default 2; 0: glibc's own default)",
    )
    parser.add_argument("--max-mb", type=int, default=50, help="downloads: THUMBX_MAX_BYTES in MiB")
    parser.add_argument(
        "--memory-mb", type=int, default=1024, help="downloads: THUMBX_RENDER_MEMORY_MB (the budget)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.malloc_arenas:
        cap_malloc_arenas(args.malloc_arenas)
    if args.vips_cache is not None:
        import pyvips

        pyvips.cache_set_max(args.vips_cache)
    quiet_json_logging()
    modes = {"soak": soak, "peak": peak, "downloads": downloads}
    result = modes[args.mode](args)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
