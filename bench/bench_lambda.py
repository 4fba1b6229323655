"""Cold start of the Lambda shim: `import lambda_shim.handler` time and the first invocation's overhead.

Run: ``.venv/bin/python bench/bench_lambda.py`` (prints a table, writes bench/results-lambda.json).

* import: a fresh interpreter per sample (what a new execution environment pays), with the interpreter's
  own start-up and the heavy dependencies measured separately for comparison.
* invocation: a fresh interpreter per sample runs the handler against a moto server (IAM enforced, two
  accounts) on a one-record SQS event: the first (cold) invocation builds the environment (settings,
  sts:AssumeRole, clients, render pool, event loop) and renders; the following (warm) ones only render.
  overhead = cold - median(warm), on same-sized images. Emulator round trips are in both, so the
  difference is the shim's own initialisation. A second set of samples starts with a no-op invocation
  (an s3:TestEvent) to split that overhead into the environment's init and the first render's extra.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results-lambda.json"
TIMEOUT = 120


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, env=env, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return float(_python(code))


def interpreter_seconds() -> float:
    started = time.perf_counter()
    _python("print(0)")
    return time.perf_counter() - started


def sqs_event(bucket: str, key: str, queue_arn: str, n: int) -> dict[str, Any]:
    from urllib.parse import quote_plus

    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": f"bench-{n}",
                "receiptHandle": "bench",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
            }
        ]
    }


def child(warm_runs: int, noop_first: bool) -> None:
    """In a fresh interpreter: import, invoke (cold), invoke again (warm). Prints one JSON line.

    With ``noop_first`` the cold invocation carries only an ``s3:TestEvent``: it pays the environment's
    initialisation and nothing else, so the next one shows what the first render adds on its own.
    """
    bucket, queue_arn = os.environ["BENCH_BUCKET"], os.environ["BENCH_QUEUE_ARN"]

    class Context:
        aws_request_id = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return 300_000

    started = time.perf_counter()
    from lambda_shim import handler as shim

    imported = time.perf_counter() - started
    events = [sqs_event(bucket, f"input/bench-{n}.jpg", queue_arn, n) for n in range(warm_runs + 1)]
    if noop_first:
        test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket})
        events.insert(0, {"Records": [{**events[0]["Records"][0], "messageId": "noop", "body": test_event}]})
    timings = []
    for event in events:
        mark = time.perf_counter()
        response = shim.handler(event, Context())
        timings.append(time.perf_counter() - mark)
        if response != {"batchItemFailures": []}:
            raise SystemExit(f"invocation failed: {response}")
    runtime = shim.environment().runtime
    refreshes = runtime.role.stats.refreshes if runtime and runtime.role else -1
    shim.reset()  # close clients cleanly (a real environment is frozen or killed instead)
    print(json.dumps({"import_s": imported, "timings_s": timings, "sts": refreshes}))


def invocations(samples: int, warm_runs: int) -> dict[bool, list[dict[str, Any]]]:
    """Child runs keyed by noop_first, interleaved so machine noise hits both sets alike."""
    from PIL import Image

    from worker.demo.emulator import MotoEmulator, moto_client_factory
    from worker.ops.provision import admin_client, provision

    with MotoEmulator() as moto:
        deployment = provision(
            moto_client_factory(moto.endpoint_url, "us-east-1"), endpoint=moto.endpoint_url
        )
        moto.enable_iam()
        image = io.BytesIO()
        Image.new("RGB", (1600, 1200), "teal").save(image, "JPEG", quality=85)
        s3 = admin_client(deployment, "s3")
        for n in range(warm_runs + 1):
            s3.put_object(Bucket=deployment.bucket, Key=f"input/bench-{n}.jpg", Body=image.getvalue())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THUMBX_"))}
        env |= deployment.worker_env() | {
            "THUMBX_LOG_LEVEL": "warning",
            "BENCH_BUCKET": deployment.bucket,
            "BENCH_QUEUE_ARN": deployment.queue_arn,
        }
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _, noop_first in itertools.product(range(samples), (False, True)):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(warm_runs),
                    *(["--noop-first"] if noop_first else []),
                ],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env=env,
                check=True,
            )
            runs[noop_first].append(json.loads(done.stdout.strip().splitlines()[-1]))
        return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--noop-first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.noop_first)
        return

    load_before = os.getloadavg()[0]
    interpreter = [interpreter_seconds() for _ in range(args.samples)]
    imports = {
        m: [import_seconds(m) for _ in range(args.samples)]
        for m in ("lambda_shim.handler", "aioboto3", "pyvips", "structlog")
    }
    both = invocations(args.samples, args.warm)
    runs, split = both[False], both[True]
    cold = [r["timings_s"][0] for r in runs]
    warm = [statistics.median(r["timings_s"][1:]) for r in runs]
    overhead = [c - w for c, w in zip(cold, warm, strict=True)]
    init_only = [r["timings_s"][0] for r in split]
    first_render_extra = [r["timings_s"][1] - statistics.median(r["timings_s"][2:]) for r in split]

    def ms(values: list[float]) -> dict[str, float]:
        return {
            "median_ms": round(statistics.median(values) * 1000, 1),
            "min_ms": round(min(values) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }

    results = {
        "benchmark": "lambda cold start",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "samples": args.samples,
        "interpreter_startup": ms(interpreter),
        "import": {m: ms(v) for m, v in imports.items()},
        "import_in_invocation_process": ms([r["import_s"] for r in runs]),
        "first_invocation": ms(cold),
        "warm_invocation": ms(warm),
        "first_invocation_overhead": ms(overhead),
        "of_which_environment_init": ms(init_only),
        "of_which_first_render_extra": ms(first_render_extra),
        "sts_assume_role_calls_per_environment": sorted({r["sts"] for r in runs + split}),
        "note": "moto server on loopback; one 1600x1200 JPEG per invocation, 3 presets",
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':40} {'median ms':>10} {'min':>8} {'max':>8}")
    rows: list[tuple[str, dict[str, float]]] = [
        ("python -c (interpreter start)", results["interpreter_startup"])
    ]
    rows += [(f"import {m}", v) for m, v in results["import"].items()]
    rows += [(k.replace("_", " "), results[k]) for k in ("first_invocation", "warm_invocation")]
    rows += [("first invocation overhead (cold - warm)", results["first_invocation_overhead"])]
    rows += [("  environment init (no-op 1st invocation)", results["of_which_environment_init"])]
    rows += [("  first render's extra over a warm one", results["of_which_first_render_extra"])]
    for name, row in rows:
        print(f"{name:40} {row['median_ms']:>10} {row['min_ms']:>8} {row['max_ms']:>8}")
    print(f"load average (1 min) before/after: {results['load_average_1min']}")
    print(f"sts:AssumeRole calls per environment: {results['sts_assume_role_calls_per_environment']}")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
