"""Render pool tuning (a benchmark, never a test): pool size x libvips threads x libvips cache.

Each configuration renders the same corpus photos with the worker's ``render`` in a thread pool, in its own
process (``VIPS_CONCURRENCY`` is read when libvips starts); configurations are interleaved over rounds and
the median images/s and CPU s per image are reported.

Usage: python -m bench.bench_tuning [--photos 12] [--rounds 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import REPO, corpus_photos, median, table

CONFIGS = [
    # (render threads, VIPS_CONCURRENCY, vips operation cache max)
    (1, 1, None),
    (2, 1, None),
    (2, 2, None),
    (2, 1, 0),
    (3, 1, None),
    (4, 1, None),
]


def child(threads: int, photos: int) -> None:
    import pyvips

    from worker.core.presets import DEFAULT_PRESETS, parse_presets
    from worker.imaging import render

    cache = os.environ.get("THUMBX_BENCH_VIPS_CACHE")
    if cache:
        pyvips.cache_set_max(int(cache))
    presets = parse_presets(DEFAULT_PRESETS)
    data = [d for _, d in corpus_photos(photos)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda d: _safe(render, d, presets), data[:2]))  # warm up
        wall, cpu = time.perf_counter(), time.process_time()
        list(pool.map(lambda d: _safe(render, d, presets), data))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"images_per_s": len(data) / wall, "cpu_s_per_image": cpu / len(data)}))


def _safe(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.photos)
        return
    runs: dict[tuple[Any, ...], list[dict[str, float]]] = {c: [] for c in CONFIGS}
    for rnd in range(args.rounds):
        order = CONFIGS if rnd % 2 == 0 else list(reversed(CONFIGS))
        for threads, vips_threads, cache in order:
            env = os.environ | {"VIPS_CONCURRENCY": str(vips_threads), "PYTHONPATH": str(REPO)}
            if cache is not None:
                env["THUMBX_BENCH_VIPS_CACHE"] = str(cache)
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_tuning",
                    "--child",
                    str(threads),
                    "--photos",
                    str(args.photos),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            runs[(threads, vips_threads, cache)].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows, results = [], []
    for (threads, vips_threads, cache), samples in runs.items():
        rate = median([s["images_per_s"] for s in samples])
        cpu = median([s["cpu_s_per_image"] for s in samples])
        cache_text = "default" if cache is None else str(cache)
        rows.append([threads, vips_threads, cache_text, round(rate, 2), round(cpu * 1000, 1)])
        results.append(
            {
                "render_threads": threads,
                "vips_concurrency": vips_threads,
                "vips_cache_max": cache_text,
                "images_per_s": round(rate, 2),
                "cpu_ms_per_image": round(cpu * 1000, 1),
            }
        )
    print(
        table(
            f"Render pool tuning ({args.photos} corpus photos, {args.rounds} interleaved rounds, medians;"
            f" {os.cpu_count()} cores)",
            ["render threads", "VIPS_CONCURRENCY", "vips cache", "images/s", "CPU ms/image"],
            rows,
        )
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
