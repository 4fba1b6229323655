"""Benchmark (not a test): HEIC/HEIF phone photos through the imaging core, beside camera JPEGs.

    make bench-heic            # or: python bench/bench_heic.py [--rounds N] [--out FILE]

The same three presets as bench_imaging.py (1024, 512, 128 px inside, JPEG q=80). Contenders, interleaved
image by image, median images/s over the rounds: the core on the HEIC/HEIF photos of
``../shared/corpus/photos/other`` (decoded by pi-heif's libheif + libde265, worker/imaging/heif.py), the
core on the camera JPEGs of ``photos/jpeg``, and the HEIC decode alone (the floor: libheif's full-size
decode, which has no shrink-on-load). Peak RSS (VmHWM) of a fresh process per format, and of one
process rendering only the HEIC with the most pixels, which is what the memory budget's estimate must
cover. Prints a table and writes bench/results-heic.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = "s1024:1024:jpeg:q=80,s512:512:jpeg:q=80,s128:128:jpeg:q=80"
HEIF_SUFFIXES = (".heic", ".heif")


def shared_corpus() -> Path | None:
    from bench.common import shared_dir

    shared = shared_dir()
    return shared / "corpus" if shared else None


def core(data: bytes) -> None:
    from worker.core.presets import parse_presets
    from worker.imaging import Limits, render

    render(data, parse_presets(SPEC), Limits(max_pixels=200_000_000, memory_budget_bytes=2**34))


def heic_decode(data: bytes) -> None:
    from worker.imaging import heif

    heif.load(data).copy_memory()


def files_of(corpus: Path) -> dict[str, list[Path]]:
    other = sorted(p for p in (corpus / "photos" / "other").iterdir() if p.suffix.lower() in HEIF_SUFFIXES)
    jpeg = sorted(p for p in (corpus / "photos" / "jpeg").iterdir() if p.is_file())
    return {"heic": other, "jpeg": jpeg}


def throughput(sets: dict[str, list[bytes]], rounds: int) -> dict[str, float]:
    """Median images/s; the contenders alternate so load spikes from other jobs hit all of them alike."""
    runs: dict[str, tuple[Callable[[bytes], None], list[bytes]]] = {
        "core_heic": (core, sets.get("heic", [])),
        "core_jpeg": (core, sets["jpeg"]),
        "heic_decode_only": (heic_decode, sets.get("heic", [])),
    }
    runs = {name: run for name, run in runs.items() if run[1]}
    for fn, files in runs.values():  # warm-up: imports, codec init
        fn(files[0])
    samples: dict[str, list[float]] = {name: [] for name in runs}
    longest = max(len(files) for _, files in runs.values())
    for _ in range(rounds):
        spent = dict.fromkeys(runs, 0.0)
        for index in range(longest):
            for name, (fn, files) in runs.items():
                if index < len(files):
                    started = time.perf_counter()
                    fn(files[index])
                    spent[name] += time.perf_counter() - started
        for name, seconds in spent.items():
            samples[name].append(len(runs[name][1]) / seconds)
    return {name: statistics.median(values) for name, values in samples.items()}


def child_rss(paths: list[Path]) -> float:
    """Peak RSS (MB) of a fresh process that renders ``paths`` with the core."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-heic.json")
    parser.add_argument(
        "--jpeg-only", action="store_true", help="JPEG rate only (to compare a tree without HEIC support)"
    )
    args = parser.parse_args()
    corpus = shared_corpus()
    if corpus is None:
        print("no corpus: set THUMBX_SHARED", file=sys.stderr)
        return 2
    from worker.imaging import build_info

    paths = files_of(corpus)
    sets = {kind: [p.read_bytes() for p in files] for kind, files in paths.items()}
    if args.jpeg_only:
        rate = throughput({"jpeg": sets["jpeg"]}, args.rounds)["core_jpeg"]
        print(json.dumps({"core_jpeg_images_per_second": round(rate, 2), "root": str(ROOT)}))
        return 0
    rates = throughput(sets, args.rounds)
    from worker.imaging import heif

    largest = max(paths["heic"], key=lambda p: math.prod(heif.dimensions(p.read_bytes())))
    results = {
        "build": {k: v for k, v in build_info().items() if k != "suffixes"},
        "presets": SPEC,
        "rounds": args.rounds,
        "images": {kind: len(files) for kind, files in paths.items()},
        "images_per_second": {k: round(v, 2) for k, v in rates.items()},
        "peak_rss_mb": {
            "heic_photos": round(child_rss(paths["heic"]), 1),
            "jpeg_photos": round(child_rss(paths["jpeg"]), 1),
            f"largest_heic ({largest.name})": round(child_rss([largest]), 1),
        },
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'contender':20} {'img/s':>8}")
    for name, rate in rates.items():
        print(f"{name:20} {rate:8.2f}")
    for name, mb in results["peak_rss_mb"].items():
        print(f"peak RSS {name}: {mb} MB")
    print(f"build: {results['build']}   -> {args.out}")
    return 0


def rss_child(paths: list[str]) -> int:
    for path in paths:
        core(Path(path).read_bytes())
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak
    status = Path("/proc/self/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(hwm_kb / 1024)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--rss-child":
        sys.exit(rss_child(sys.argv[2:]))
    sys.exit(main())
