"""Pipeline benchmark against a moto server in its own process (a benchmark, never a test).

* overhead: the real Consumer + Pipeline with a no-op renderer vs plain aioboto3 loops on the same server
  (receive -> delete, and receive -> GetObject -> delete: the same requests the no-op worker makes);
  messages/s and this process's CPU ms per message, interleaved repeats, medians.
* end to end: the corpus photos uploaded (S3 -> SQS notifications), the worker started, time until every
  thumbnail is written; vs the imaging core's own rate (``render`` in a pool of the same size, no I/O) on
  the same photos in the same run. The emulator's CPU is read from /proc to say what bounds the run.
* latency: single uploads into an idle, long-polling worker: upload returned -> outcome recorded, p50/p95.
* efficiency (issue 14): the worker process's own CPU per image (this process: event loop, botocore,
  render threads; the emulator runs in another process and is excluded) against the imaging core's CPU
  per image on the same photos (``render`` in a pool of the same size, no I/O), with 1 and 2 render
  threads and one libvips thread per render (so render threads = cores); images/s and the 2-thread
  scaling of each. Targets: worker CPU <= 1.15x the core's, scaling >= 1.8x.

Usage: python -m bench.bench_pipeline [--quick] [--json PATH] [--parts overhead,e2e,latency,efficiency]
The worker is wired like ``worker.runtime.service.open_runtime`` (assumed-role session, one S3 and one SQS
client with ``service.client_config``), with the renderer swappable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import aioboto3
from PIL import Image

from bench.common import (
    corpus_photos,
    median,
    moto_process,
    percentile,
    process_cpu_s,
    quiet_json_logging,
    table,
)
from worker.aws.credentials import assumed_role_session
from worker.aws.s3 import S3Store
from worker.aws.sqs import BatchResult, Message, SqsQueue
from worker.core.config import Settings, load_settings
from worker.core.errors import ThumbxError
from worker.core.presets import Preset
from worker.demo.emulator import moto_client_factory
from worker.imaging import Limits, Rendition, render
from worker.observability.telemetry import Metrics
from worker.ops.backfill import SourceObject, s3_event
from worker.ops.provision import Deployment, Names, admin_client, provision
from worker.runtime import service
from worker.runtime.consumer import Consumer
from worker.runtime.leases import ConsumerConfig
from worker.runtime.pipeline import Outcome, Pipeline, PipelineConfig

SRC_KEY = "input/bench/src.jpg"
# The requests the no-op worker makes per message (its idempotency HEAD included): the fair baseline.
BASELINE = "plain receive+head+get+delete"


def noop_render(_data: bytes, presets: Sequence[Preset], _limits: Limits) -> list[Rendition]:
    return [Rendition(p, b"", 1, 1) for p in presets]


class NoWriteStore(S3Store):
    """The no-op worker's store: reads (HEAD, GET) go to S3, the (empty) thumbnails are not written."""

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        return None


@dataclass
class Env:
    deployment: Deployment
    settings: Settings
    moto_pid: int
    s3: Any
    sqs: Any
    admin_s3: Any
    admin_sqs: Any


class CountingQueue(SqsQueue):
    """The worker's SqsQueue, counting its ReceiveMessage and DeleteMessageBatch calls."""

    def __init__(self, client: Any, url: str, calls: dict[str, int] | None) -> None:
        super().__init__(client, url)
        self.calls = calls if calls is not None else {}

    async def receive(
        self, max_messages: int, wait_seconds: int, *, visibility_timeout: int | None = None
    ) -> list[Message]:
        self.calls["receive"] = self.calls.get("receive", 0) + 1
        return await super().receive(max_messages, wait_seconds, visibility_timeout=visibility_timeout)

    async def delete(self, messages: Sequence[Message]) -> BatchResult:
        self.calls["delete"] = self.calls.get("delete", 0) + 1
        return await super().delete(messages)


@contextlib.asynccontextmanager
async def bench_env(overrides: dict[str, str]) -> AsyncIterator[Env]:
    with moto_process() as moto:
        deployment = provision(
            moto_client_factory(moto.endpoint, "us-east-1"), Names(), endpoint=moto.endpoint
        )
        env = deployment.worker_env() | {"THUMBX_WAIT_SECONDS": "1"} | overrides
        settings = load_settings(env)
        base = aioboto3.Session(
            aws_access_key_id=deployment.worker_keys.access_key_id,
            aws_secret_access_key=deployment.worker_keys.secret_access_key,
            region_name=deployment.region,
        )
        config = service.client_config(max(10, settings.concurrency * 4))
        assert settings.role is not None
        role = await assumed_role_session(
            base, settings.role, region=settings.region, endpoint_url=settings.endpoint_url, sts_config=config
        )
        args: dict[str, Any] = {
            "region_name": settings.region,
            "endpoint_url": moto.endpoint,
            "config": config,
        }
        async with role.session.client("s3", **args) as s3, role.session.client("sqs", **args) as sqs:
            admin_sqs = admin_client(deployment, "sqs")
            drain(admin_sqs, deployment.queue_url)  # provisioning's s3:TestEvent
            yield Env(deployment, settings, moto.pid, s3, sqs, admin_client(deployment, "s3"), admin_sqs)


async def consume(
    env: Env,
    expected: int,
    *,
    concurrency: int,
    renderer: Callable[..., list[Rendition]],
    executor: ThreadPoolExecutor | None,
    wait_seconds: int = 1,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: asyncio.Event | None = None,
    calls: dict[str, int] | None = None,
    write: bool = True,
) -> tuple[float, float, list[Outcome]]:
    """Run the real Consumer until ``expected`` messages are done: (wall s, own CPU s, outcomes)."""
    s = env.settings
    pipeline = Pipeline(
        S3Store(env.s3) if write else NoWriteStore(env.s3),
        PipelineConfig(buckets=frozenset({s.bucket}), layout=s.layout, presets=s.presets),
        executor=executor,
        renderer=renderer,
    )
    stop = stop or asyncio.Event()
    outcomes: list[Outcome] = []
    messages = 0

    def observe(_message: Message, result: Sequence[Outcome]) -> None:
        nonlocal messages
        messages += 1
        outcomes.extend(result)
        for outcome in result:
            if on_outcome is not None:
                on_outcome(outcome)
        if expected and messages >= expected:
            stop.set()

    consumer = Consumer(
        CountingQueue(env.sqs, s.queue_url, calls),
        pipeline,
        ConsumerConfig(concurrency=concurrency, wait_seconds=wait_seconds, visibility_timeout=60),
        metrics=Metrics(),
        dead_letters=SqsQueue(env.sqs, s.dlq_url) if s.dlq_url else None,
        observer=observe,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.wait_for(consumer.run(stop), timeout=600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # The consumer cancels its pending long poll on stop, but the server finishes it: a message sent in the
    # meantime would be received by nobody and stay invisible for the visibility timeout. Let it expire.
    await asyncio.sleep(wait_seconds + 0.3)
    return wall, cpu, outcomes


async def plain_loop(
    env: Env, expected: int, *, with_get: bool, with_head: bool = False, calls: dict[str, int] | None = None
) -> tuple[float, float]:
    """The baseline: receive 10 -> (HeadObject, GetObject each) -> DeleteMessageBatch, one batch at a time.

    With ``with_head`` it makes the requests the no-op worker makes: the idempotency HEAD of the last
    output (a 404 here), then the GET of the source.
    """
    url = env.settings.queue_url
    done = 0
    calls = calls if calls is not None else {}
    wall, cpu = time.perf_counter(), time.process_time()
    while done < expected:
        response = await env.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        calls["receive"] = calls.get("receive", 0) + 1
        messages = response.get("Messages", [])
        if with_get:
            await asyncio.gather(*(_get(env, m["Body"], with_head) for m in messages))
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            await env.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            calls["delete"] = calls.get("delete", 0) + 1
        done += len(messages)
    return time.perf_counter() - wall, time.process_time() - cpu


async def _get(env: Env, body: str, with_head: bool) -> None:
    record = json.loads(body)["Records"][0]["s3"]
    bucket, key = record["bucket"]["name"], unquote_plus(record["object"]["key"])
    if with_head:
        marker = env.settings.layout.outputs(key, env.settings.presets)[-1].key
        with contextlib.suppress(env.s3.exceptions.ClientError):
            await env.s3.head_object(Bucket=bucket, Key=marker)
    response = await env.s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as stream:
        await stream.read()


def drain(sqs: Any, url: str) -> None:
    """Delete whatever is visible now (PurgeQueue is allowed once a minute)."""
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages"
        )
        if not messages:
            return
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def fill_queue(env: Env, n: int) -> None:
    head = env.admin_s3.head_object(Bucket=env.settings.bucket, Key=SRC_KEY)
    src = SourceObject(SRC_KEY, head["ETag"].strip('"'), head["ContentLength"], datetime.now(UTC))
    body = json.dumps(s3_event(env.settings.bucket, src, region=env.settings.region))
    for start in range(0, n, 10):
        entries = [{"Id": str(i), "MessageBody": body} for i in range(min(10, n - start))]
        env.admin_sqs.send_message_batch(QueueUrl=env.settings.queue_url, Entries=entries)


async def bench_overhead(env: Env, n: int, repeats: int, concurrencies: Sequence[int]) -> dict[str, Any]:
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(image, "JPEG")
    env.admin_s3.put_bucket_notification_configuration(
        Bucket=env.settings.bucket, NotificationConfiguration={}
    )
    env.admin_s3.put_object(Bucket=env.settings.bucket, Key=SRC_KEY, Body=image.getvalue())

    calls: dict[str, dict[str, int]] = {}

    async def worker_variant(c: int) -> tuple[float, float]:
        wall, cpu, outcomes = await consume(
            env,
            n,
            concurrency=c,
            renderer=noop_render,
            executor=None,
            calls=calls[f"worker no-op c={c}"],
            write=False,
        )
        bad = [o for o in outcomes if o.status != "succeeded"]
        if bad:
            raise SystemExit(f"bench: no-op worker failed: {bad[0]}")
        return wall, cpu

    variants: dict[str, Callable[[], Any]] = {
        "plain receive+delete": lambda: plain_loop(env, n, with_get=False, calls=calls[names[0]]),
        "plain receive+get+delete": lambda: plain_loop(env, n, with_get=True, calls=calls[names[1]]),
        BASELINE: lambda: plain_loop(env, n, with_get=True, with_head=True, calls=calls[names[2]]),
    }
    for c in concurrencies:
        variants[f"worker no-op c={c}"] = functools.partial(worker_variant, c)
    names = list(variants)
    calls.update({name: {} for name in names})
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:  # rotate the order: interleaved
            fill_queue(env, n)
            runs[name].append(await variants[name]())
    result: dict[str, Any] = {"messages": n, "repeats": repeats, "variants": {}}
    for name, samples in runs.items():
        result["variants"][name] = {
            "msgs_per_s": round(median([n / w for w, _ in samples]), 1),
            "cpu_ms_per_msg": round(median([c * 1000 / n for _, c in samples]), 3),
            "runs_msgs_per_s": [round(n / w, 1) for w, _ in samples],
        }
    for name in names:
        result["variants"][name]["sqs_calls_per_msg"] = {
            k: round(v / (n * repeats), 3) for k, v in calls[name].items()
        }
    base = result["variants"][BASELINE]
    result["baseline"] = BASELINE
    default = result["variants"][f"worker no-op c={concurrencies[0]}"]
    best = max(
        (result["variants"][f"worker no-op c={c}"] for c in concurrencies), key=lambda v: v["msgs_per_s"]
    )
    result["worker_default"] = f"worker no-op c={concurrencies[0]}"
    result["rate_ratio_default_vs_plain"] = round(default["msgs_per_s"] / base["msgs_per_s"], 2)
    result["rate_ratio_best_vs_plain"] = round(best["msgs_per_s"] / base["msgs_per_s"], 2)
    result["worker_overhead_cpu_ms_per_msg"] = round(default["cpu_ms_per_msg"] - base["cpu_ms_per_msg"], 3)
    result["targets"] = {"rate_ratio_min": 0.9, "overhead_cpu_ms_max": 2.0}
    return result


def imaging_rate(photos: Sequence[tuple[str, bytes]], presets: Sequence[Preset], threads: int) -> float:
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(lambda p: _render_or_none(p[1], presets), photos))
        return len(photos) / (time.perf_counter() - started)


def _render_or_none(data: bytes, presets: Sequence[Preset]) -> list[Rendition] | None:
    try:
        return render(data, presets)
    except ThumbxError:  # a corpus file the worker refuses (e.g. truncated): the worker dead-letters it too
        return None


async def bench_end_to_end(
    env: Env, photos: Sequence[tuple[str, bytes]], repeats: int, concurrencies: Sequence[int]
) -> dict[str, Any]:
    """Imaging core alone and the worker at each concurrency, interleaved; the first concurrency is the
    configured one (the headline ratio)."""
    s = env.settings
    env.admin_s3.put_bucket_notification_configuration(
        Bucket=s.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": env.deployment.queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "input/"}]}},
                }
            ]
        },
    )
    drain(env.admin_sqs, s.queue_url)  # the s3:TestEvent of that configuration
    imaging: list[float] = []
    e2e: dict[int, list[dict[str, float]]] = {c: [] for c in concurrencies}
    variants: list[int | None] = [None, *concurrencies]  # None: the imaging core alone
    with ThreadPoolExecutor(s.render_threads, thread_name_prefix="render") as pool:
        for rep in range(repeats):
            for c in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
                if c is None:
                    imaging.append(await asyncio.to_thread(imaging_rate, photos, s.presets, s.render_threads))
                else:
                    e2e[c].append(await _e2e_once(env, photos, f"input/e2e/{rep}-{c}", c, pool))
    core_rate = median(imaging)
    per_c: dict[str, Any] = {}
    for c, runs in e2e.items():
        rate = median([r["images_per_s"] for r in runs])
        wall = median([r["wall_s"] for r in runs])
        per_c[str(c)] = {
            "e2e_images_per_s": round(rate, 2),
            "ratio": round(rate / core_rate, 2),
            "worker_cpu_utilisation": round(median([r["worker_cpu_s"] for r in runs]) / wall, 2),
            "emulator_cpu_utilisation": round(median([r["emulator_cpu_s"] for r in runs]) / wall, 2),
            "median_ms": {
                k: round(median([r[k] for r in runs]), 1) for k in ("get_ms", "render_ms", "put_ms")
            },
            "runs_images_per_s": [round(r["images_per_s"], 2) for r in runs],
        }
    head = per_c[str(concurrencies[0])]
    return {
        "photos": len(photos),
        "repeats": repeats,
        "concurrency": concurrencies[0],
        "render_threads": s.render_threads,
        "core_images_per_s": round(core_rate, 2),
        "runs_core_images_per_s": [round(r, 2) for r in imaging],
        "target_ratio_min": 0.8,
        **{k: head[k] for k in ("e2e_images_per_s", "ratio", "worker_cpu_utilisation")},
        **{k: head[k] for k in ("emulator_cpu_utilisation", "median_ms")},
        "by_concurrency": per_c,
    }


async def _e2e_once(
    env: Env, photos: Sequence[tuple[str, bytes]], prefix: str, concurrency: int, pool: ThreadPoolExecutor
) -> dict[str, float]:
    for name, data in photos:
        env.admin_s3.put_object(Bucket=env.settings.bucket, Key=f"{prefix}/{name}", Body=data)
    moto_cpu = process_cpu_s(env.moto_pid)
    wall, cpu, outcomes = await consume(
        env, len(photos), concurrency=concurrency, renderer=render, executor=pool
    )
    moto_cpu = process_cpu_s(env.moto_pid) - moto_cpu
    bad = [o for o in outcomes if o.status not in ("succeeded", "permanent")]
    if bad:
        raise SystemExit(f"bench: end-to-end render failed: {bad[0]}")
    return {
        "images_per_s": len(photos) / wall,
        "wall_s": wall,
        "worker_cpu_s": cpu,
        "emulator_cpu_s": moto_cpu,
        "get_ms": median([o.timings_ms.get("get", 0) for o in outcomes]),
        "render_ms": median([o.timings_ms.get("render", 0) for o in outcomes]),
        "put_ms": median([o.timings_ms.get("put", 0) for o in outcomes]),
    }


def core_run(
    photos: Sequence[tuple[str, bytes]], presets: Sequence[Preset], threads: int
) -> dict[str, float]:
    """The imaging core alone in a pool of ``threads``: images/s and this process's CPU ms per image."""
    with ThreadPoolExecutor(threads) as pool:
        wall, cpu = time.perf_counter(), time.process_time()
        list(pool.map(lambda p: _render_or_none(p[1], presets), photos))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"images_per_s": len(photos) / wall, "cpu_ms_per_image": 1000 * cpu / len(photos)}


async def bench_efficiency(
    env: Env, photos: Sequence[tuple[str, bytes]], repeats: int, threads: Sequence[int] = (1, 2)
) -> dict[str, Any]:
    """Worker process CPU per image vs the core's, and images/s at 1 and 2 render threads (interleaved)."""
    import pyvips

    s = env.settings
    previous = pyvips.concurrency_get()
    pyvips.concurrency_set(1)  # one libvips thread per render: a render thread is one core
    variants = [(kind, t) for t in threads for kind in ("core", "worker")]
    runs: dict[tuple[str, int], list[dict[str, float]]] = {v: [] for v in variants}
    try:
        for rep in range(repeats):
            for kind, t in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
                if kind == "core":
                    runs[(kind, t)].append(await asyncio.to_thread(core_run, photos, s.presets, t))
                    continue
                with ThreadPoolExecutor(t, thread_name_prefix="render") as pool:
                    got = await _e2e_once(env, photos, f"input/eff/{rep}-{t}", s.concurrency, pool)
                runs[(kind, t)].append(
                    {
                        "images_per_s": got["images_per_s"],
                        "cpu_ms_per_image": 1000 * got["worker_cpu_s"] / len(photos),
                        "emulator_cpu_ms_per_image": 1000 * got["emulator_cpu_s"] / len(photos),
                    }
                )
    finally:
        pyvips.concurrency_set(previous)
    by_threads: dict[str, Any] = {}
    for t in threads:
        core, worker = runs[("core", t)], runs[("worker", t)]
        paired = [w["cpu_ms_per_image"] / c["cpu_ms_per_image"] for w, c in zip(worker, core, strict=True)]
        by_threads[str(t)] = {
            "core_images_per_s": round(median([r["images_per_s"] for r in core]), 2),
            "core_cpu_ms_per_image": round(median([r["cpu_ms_per_image"] for r in core]), 1),
            "worker_images_per_s": round(median([r["images_per_s"] for r in worker]), 2),
            "worker_cpu_ms_per_image": round(median([r["cpu_ms_per_image"] for r in worker]), 1),
            "emulator_cpu_ms_per_image": round(median([r["emulator_cpu_ms_per_image"] for r in worker]), 1),
            "worker_vs_core_cpu": round(median(paired), 3),
            "runs_worker_vs_core_cpu": [round(x, 3) for x in paired],
        }
    one, two = by_threads[str(threads[0])], by_threads[str(threads[-1])]
    return {
        "photos": len(photos),
        "repeats": repeats,
        "concurrency": s.concurrency,
        "vips_concurrency": 1,
        "by_render_threads": by_threads,
        "core_scaling": round(two["core_images_per_s"] / one["core_images_per_s"], 2),
        "worker_scaling": round(two["worker_images_per_s"] / one["worker_images_per_s"], 2),
        "targets": {"worker_vs_core_cpu_max": 1.15, "scaling_min": 1.8},
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def bench_latency(env: Env, photos: Sequence[tuple[str, bytes]], uploads: int) -> dict[str, Any]:
    s = env.settings
    arrived: dict[str, float] = {}
    done: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def record(outcome: Outcome) -> None:
        arrived.setdefault(outcome.key, time.perf_counter())
        done[outcome.key].set()

    stop = asyncio.Event()
    with ThreadPoolExecutor(s.render_threads, thread_name_prefix="render") as pool:
        worker = asyncio.create_task(
            consume(
                env,
                0,
                concurrency=s.concurrency,
                renderer=render,
                executor=pool,
                wait_seconds=20,
                on_outcome=record,
                stop=stop,
            )
        )
        await asyncio.sleep(1.0)  # the worker is idle, long-polling
        latencies, renders = [], []
        for i in range(uploads):
            name, data = photos[i % len(photos)]
            key = f"input/latency/{i}/{name}"
            await asyncio.to_thread(env.admin_s3.put_object, Bucket=s.bucket, Key=key, Body=data)
            uploaded = time.perf_counter()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done[key].wait(), 60)
            latencies.append((arrived.get(key, float("nan")) - uploaded) * 1000)
            await asyncio.sleep(0.3)
        stop.set()
        _, _, outcomes = await worker
    renders = [o.timings_ms.get("render", 0.0) for o in outcomes]
    totals = [o.timings_ms.get("total", 0.0) for o in outcomes]
    return {
        "uploads": uploads,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "pipeline_total_p50_ms": round(percentile(totals, 50), 1),
        "render_p50_ms": round(percentile(renders, 50), 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    overrides = {}
    if args.concurrency:
        overrides["THUMBX_CONCURRENCY"] = str(args.concurrency)
    if args.render_threads:
        overrides["THUMBX_RENDER_THREADS"] = str(args.render_threads)
    photos = corpus_photos(12 if quick else None)
    results: dict[str, Any] = {}
    async with bench_env(overrides) as env:
        default_c = env.settings.concurrency
        concurrencies = [default_c] + [c for c in (4, 10) if c != default_c]  # 4 was the old default
        if "overhead" in args.parts:
            results["pipeline_overhead"] = await bench_overhead(
                env, 60 if quick else 200, 3 if quick else 5, concurrencies
            )
        if "e2e" in args.parts:
            results["end_to_end"] = await bench_end_to_end(env, photos, 2 if quick else 3, concurrencies)
        if "efficiency" in args.parts:
            results["efficiency"] = await bench_efficiency(env, photos, 2 if quick else 3)
        if "latency" in args.parts:
            results["latency"] = await bench_latency(env, photos, 6 if quick else 20)
    return results


def render_tables(results: dict[str, Any]) -> str:
    out = []
    if "pipeline_overhead" in results:
        out.append(_overhead_table(results["pipeline_overhead"]))
    if "end_to_end" in results:
        out.append(_e2e_table(results["end_to_end"]))
    if "efficiency" in results:
        out.append(_efficiency_table(results["efficiency"]))
    if "latency" in results:
        out.append(_latency_table(results["latency"]))
    return "\n\n".join(out)


def _overhead_table(ov: dict[str, Any]) -> str:
    rows = [
        [n, v["msgs_per_s"], v["cpu_ms_per_msg"], _calls(v.get("sqs_calls_per_msg"))]
        for n, v in ov["variants"].items()
    ]
    return "\n".join(
        [
            table(
                f"Pipeline overhead ({ov['messages']} msgs x {ov['repeats']} interleaved repeats, medians)",
                ["variant", "msgs/s", "CPU ms/msg", "receive / delete calls per msg"],
                rows,
            ),
            f"  {ov['worker_default']} vs {ov['baseline']}: {ov['rate_ratio_default_vs_plain']}x rate"
            f" (best concurrency {ov['rate_ratio_best_vs_plain']}x; target >= 0.9);"
            f" worker overhead {ov['worker_overhead_cpu_ms_per_msg']} CPU ms/msg (target <= 2)",
        ]
    )


def _calls(per_msg: dict[str, float] | None) -> str:
    if per_msg is None:
        return "-"
    return f"{per_msg.get('receive', 0)} / {per_msg.get('delete', 0)}"


def _e2e_table(e: dict[str, Any]) -> str:
    return table(
        f"End to end ({e['photos']} corpus photos x {e['repeats']}, concurrency {e['concurrency']},"
        f" render threads {e['render_threads']})",
        ["measure", "value"],
        [
            ["e2e images/s", e["e2e_images_per_s"]],
            ["imaging core images/s (same photos, same pool)", e["core_images_per_s"]],
            ["ratio (target >= 0.8)", e["ratio"]],
            ["worker CPU / wall (cores)", e["worker_cpu_utilisation"]],
            ["emulator CPU / wall (cores)", e["emulator_cpu_utilisation"]],
            [
                "median get / render / put ms",
                "{get_ms} / {render_ms} / {put_ms}".format(**e["median_ms"]),
            ],
            *[
                [
                    f"at concurrency {c}: images/s / ratio / worker CPU",
                    f"{v['e2e_images_per_s']} / {v['ratio']} / {v['worker_cpu_utilisation']}",
                ]
                for c, v in e["by_concurrency"].items()
            ],
        ],
    )


def _efficiency_table(e: dict[str, Any]) -> str:
    rows = [
        [
            t,
            v["core_images_per_s"],
            v["worker_images_per_s"],
            v["core_cpu_ms_per_image"],
            v["worker_cpu_ms_per_image"],
            v["worker_vs_core_cpu"],
            v["emulator_cpu_ms_per_image"],
        ]
        for t, v in e["by_render_threads"].items()
    ]
    worst = max(v["worker_vs_core_cpu"] for v in e["by_render_threads"].values())
    tg = e["targets"]
    return "\n".join(
        [
            table(
                f"Worker efficiency ({e['photos']} photos x {e['repeats']} interleaved, concurrency"
                f" {e['concurrency']}, one libvips thread per render; emulator in its own process)",
                ["render threads", "core img/s", "worker img/s", "core CPU ms/img", "worker CPU ms/img",
                 "worker/core CPU", "emulator CPU ms/img"],
                rows,
            ),
            f"  worker/core CPU per image: worst {worst:.2f}x (target <= {tg['worker_vs_core_cpu_max']});"
            f" 2-thread scaling: core {e['core_scaling']}x, worker {e['worker_scaling']}x"
            f" (target >= {tg['scaling_min']}; {e['cpus']} CPUs, load {e['load_average'][0]})",
        ]
    )  # fmt: skip


def _latency_table(lat: dict[str, Any]) -> str:
    return table(
        f"Latency: upload -> last thumbnail, idle worker ({lat['uploads']} single uploads)",
        ["p50 ms", "p95 ms", "max ms", "pipeline p50 ms", "render p50 ms"],
        [
            [
                lat["p50_ms"],
                lat["p95_ms"],
                lat["max_ms"],
                lat["pipeline_total_p50_ms"],
                lat["render_p50_ms"],
            ]
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages, photos and repeats")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--concurrency", type=int, help="THUMBX_CONCURRENCY for the worker")
    parser.add_argument("--render-threads", type=int, help="THUMBX_RENDER_THREADS for the worker")
    parser.add_argument(
        "--parts",
        default="overhead,e2e,efficiency,latency",
        type=lambda v: set(v.split(",")),
        help="what to run",
    )
    args = parser.parse_args()
    quiet_json_logging()
    results = asyncio.run(main_async(args))
    print(render_tables(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
