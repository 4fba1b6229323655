"""``make bench-peers``: thumbx's imaging core against its peers, in the same run, on the same files.

The job, the same for every contender: each photo to 1024, 512 and 128 px (inside, never upscaled), JPEG
q=80, EXIF-upright, sRGB, metadata stripped; one core each (``VIPS_CONCURRENCY=1``, sharp's concurrency 1
and a one-thread libuv pool); whole-process CPU (every thread) over the photos, after one warm-up render,
read by the contender's own process (``getrusage`` / ``process.cpuUsage``). Each run starts every
contender in a fresh process, in a rotated order; the figure is the median over the runs, and the ratio
is the median of the per-run ratios to the core (paired, so a busy moment hits both sides of a ratio).

Contenders:

* thumbx core: ``worker.imaging.render`` (probe, limits, deadline, one decode cascaded to the sizes).
* sharp (npm, pinned, installed into ~/.cache/thumbx when node is there): one decode cascaded (decode +
  resize to 1024 once, the 512 and 128 resized from that raw image), and three pipelines from the input.
* Pillow-SIMD (PyPI, built with ``CC="cc -mavx2"`` into its own venv under ~/.cache/thumbx when cc, an
  AVX2 CPU and the libjpeg, zlib and lcms2 headers are there) and stock Pillow (the project's own venv):
  the draft cascade with lanczos, the ICC profile converted to sRGB once.
* libvips decode only (not a contender): the JPEG decode at the DCT scale the 1024 size needs, the floor
  any libvips-based pipeline pays.
* the core with ``huffman=standard`` presets (not a contender: every peer here writes optimised Huffman
  tables): what the one encoder option that saves CPU without touching pixels is worth.

Peers that cannot be installed are listed as skipped with the reason. None of them is a runtime
dependency of thumbx. Without ../shared/corpus the bench renders generated photos instead (and says so).

Usage: python -m bench.bench_peers [--runs 5] [--photos N] [--only core,sharp-one-decode,...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, median, shared_dir, table

SIZES = (1024, 512, 128)
QUALITY = 80
SHARP = "sharp@0.35.5"
PILLOW_SIMD = "pillow-simd==12.1.1.post0"
CACHE = Path(os.environ.get("THUMBX_CACHE", Path.home() / ".cache" / "thumbx"))
SHARP_DIR = CACHE / f"sharp-{SHARP.split('@')[1]}"
SIMD_VENV = CACHE / f"pillow-simd-{PILLOW_SIMD.split('==')[1]}-py{sys.version_info[0]}{sys.version_info[1]}"
RESULTS = REPO / "bench" / "results-peers.json"
ONE_CORE = {"VIPS_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1", "OMP_NUM_THREADS": "1"}
CORE = "thumbx core"


@dataclass
class Contender:
    key: str
    label: str
    argv: list[str] = field(default_factory=list)
    contender: bool = True  # False: a reference row (the decode floor), not a peer
    skipped: str = ""  # why it could not run


class Unavailable(Exception):
    """A peer cannot be installed or run here; the message says why."""


def _run(argv: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return " | ".join(lines[-3:])[:300] or f"exit {proc.returncode}"


def ensure_sharp() -> list[str]:
    """``node sharp_runner.mjs DIR`` with the pinned sharp installed in the cache folder (once)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node/npm not found")
    marker = SHARP_DIR / "node_modules" / "sharp" / "package.json"
    if not marker.exists():
        SHARP_DIR.mkdir(parents=True, exist_ok=True)
        (SHARP_DIR / "package.json").write_text(json.dumps({"name": "thumbx-bench-peers", "private": True}))
        print(f"installing {SHARP} into {SHARP_DIR} ...", flush=True)
        done = _run([npm, "install", "--no-audit", "--no-fund", "--silent", SHARP], 600, cwd=SHARP_DIR)
        if done.returncode != 0 or not marker.exists():
            raise Unavailable(f"npm install {SHARP} failed: {_tail(done)}")
    check = _run([node, "-e", "require('sharp')"], 60, cwd=SHARP_DIR)
    if check.returncode != 0:
        raise Unavailable(f"sharp does not load: {_tail(check)}")
    return [node, str(REPO / "bench" / "sharp_runner.mjs"), str(SHARP_DIR)]


def ensure_pillow_simd() -> str:
    """The python of a venv holding Pillow-SIMD, built from source with AVX2 (once)."""
    python = SIMD_VENV / "bin" / "python"
    probe = "import PIL, PIL.ImageCms, PIL.features as f; assert f.check('jpg'), 'no JPEG codec'"
    if python.exists() and _run([str(python), "-c", probe], 60).returncode == 0:
        return str(python)
    cc = shutil.which("cc")
    if cc is None:
        raise Unavailable("no C compiler (cc) to build it")
    if "avx2" not in Path("/proc/cpuinfo").read_text():
        raise Unavailable("this CPU has no AVX2")
    missing = [
        h
        for h in ("jpeglib.h", "zlib.h", "lcms2.h")
        if _run([cc, "-E", "-x", "c", "-"], 60, input=f"#include <{h}>\n").returncode != 0
    ]
    if missing:
        raise Unavailable(
            f"headers missing: {', '.join(missing)}"
            " (Debian: apt-get install libjpeg-dev zlib1g-dev liblcms2-dev)"
        )
    print(f"building {PILLOW_SIMD} into {SIMD_VENV} (CC='cc -mavx2', a few minutes) ...", flush=True)
    shutil.rmtree(SIMD_VENV, ignore_errors=True)
    made = _run([sys.executable, "-m", "venv", str(SIMD_VENV)], 300)
    if made.returncode != 0:
        raise Unavailable(f"venv failed: {_tail(made)}")
    env = os.environ | {"CC": f"{cc} -mavx2"}
    built = _run([str(python), "-m", "pip", "install", "--quiet", PILLOW_SIMD], 1500, env=env)
    if built.returncode != 0:
        raise Unavailable(f"pip install {PILLOW_SIMD} failed: {_tail(built)}")
    loads = _run([str(python), "-c", probe], 60)
    if loads.returncode != 0:
        raise Unavailable(f"built, but does not load: {_tail(loads)}")
    return str(python)


def contenders(only: set[str] | None) -> list[Contender]:
    sizes = [str(s) for s in SIZES]
    pillow = [str(REPO / "bench" / "pillow_runner.py"), str(QUALITY), *sizes]
    core = [sys.executable, "-m", "bench.bench_peers", "--child"]
    rows = [
        Contender("core", CORE, [*core, "core"]),
        Contender("sharp-one-decode", "sharp, one decode then resize the decoded image twice"),
        Contender("sharp-three", "sharp, three pipelines from the input (its documented usage)"),
        Contender("pillow-simd", "Pillow-SIMD draft cascade, lanczos"),
        Contender("pillow", "stock Pillow draft cascade, lanczos", [sys.executable, *pillow]),
        Contender(
            "core-standard-huffman",
            "(thumbx core with huffman=standard presets: same pixels, +2.3% bytes)",
            [*core, "core-standard-huffman"],
            False,
        ),
        Contender(
            "decode-floor", "(libvips JPEG decode at the DCT scale only)", [*core, "decode-floor"], False
        ),
    ]
    rows = [c for c in rows if only is None or c.key in only]
    wanted = {c.key for c in rows}
    if wanted & {"sharp-one-decode", "sharp-three"}:
        try:
            node = ensure_sharp()
            for c in rows:
                if c.key.startswith("sharp"):
                    mode = "one-decode" if c.key == "sharp-one-decode" else "three"
                    c.argv = [*node, mode, str(QUALITY), *sizes]
        except Unavailable as exc:
            for c in rows:
                if c.key.startswith("sharp"):
                    c.skipped = str(exc)
    if "pillow-simd" in wanted:
        try:
            simd = ensure_pillow_simd()
            next(c for c in rows if c.key == "pillow-simd").argv = [simd, *pillow]
        except Unavailable as exc:
            next(c for c in rows if c.key == "pillow-simd").skipped = str(exc)
    return rows


@contextmanager
def photo_listing(limit: int | None) -> Iterator[tuple[list[Path], str]]:
    """The corpus JPEGs, or generated camera-sized JPEGs in a temporary folder when there is no corpus."""
    shared = shared_dir()
    if shared is not None:
        folder = shared / "corpus" / "photos" / "jpeg"
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[:limit]
        if paths:
            yield paths, f"{len(paths)} corpus JPEGs ({shared / 'corpus' / 'photos' / 'jpeg'})"
            return
    with tempfile.TemporaryDirectory(prefix="thumbx-peers-") as tmp:
        paths = generated_photos(Path(tmp), limit or 12)
        yield paths, f"{len(paths)} generated JPEGs (no ../shared/corpus here: set THUMBX_SHARED)"


def generated_photos(folder: Path, count: int) -> list[Path]:
    """Camera-like JPEGs: 6-24 MP, textured, some stored sideways with an EXIF orientation."""
    import random

    from PIL import Image, ImageFilter

    from worker.demo.samples import upright_scene

    rng = random.Random(14)
    sizes = [(4000, 3000), (6000, 4000), (3264, 2448), (5472, 3648), (4032, 3024), (2992, 2000)]
    paths = []
    for n in range(count):
        width, height = sizes[n % len(sizes)]
        scene = upright_scene(width, height, f"sample {n}")
        grain = Image.effect_noise((width, height), 40 + n).filter(ImageFilter.GaussianBlur(1))
        image = Image.blend(scene, Image.merge("RGB", (grain, grain, grain)), 0.25)
        orientation = (1, 6, 1, 8, 3, 1)[n % 6]
        if orientation != 1:
            image = image.transpose({6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270,
                                     3: Image.Transpose.ROTATE_180}[orientation])  # fmt: skip
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = folder / f"generated-{n:02d}.jpg"
        image.save(path, "JPEG", quality=rng.choice((85, 90, 92)), exif=exif)
        paths.append(path)
    return paths


def run_once(contender: Contender, listing: str) -> dict[str, Any]:
    proc = _run(contender.argv, 900, input=listing, cwd=REPO, env=os.environ | ONE_CORE)
    if proc.returncode != 0:
        raise RuntimeError(f"{contender.key}: {_tail(proc)}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure(rows: list[Contender], paths: list[Path], runs: int) -> dict[str, list[dict[str, Any]]]:
    listing = "\n".join(map(str, paths))
    active = [c for c in rows if not c.skipped]
    samples: dict[str, list[dict[str, Any]]] = {c.key: [] for c in active}
    for n in range(runs):
        order = active[n % len(active) :] + active[: n % len(active)]
        for contender in order:
            try:
                samples[contender.key].append(run_once(contender, listing))
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                contender.skipped = f"failed while running: {exc}"
                print(contender.skipped, file=sys.stderr)
        print(f"run {n + 1}/{runs}: " + ", ".join(
            f"{k} {v[-1]['cpu_s']:.2f} s" for k, v in samples.items() if v), flush=True)  # fmt: skip
    return samples


def summarise(
    rows: list[Contender], samples: dict[str, list[dict[str, Any]]], images: int, source: str, runs: int
) -> dict[str, Any]:
    core = [s["cpu_s"] for s in samples.get("core", [])]
    results: dict[str, Any] = {
        "photos": source,
        "images": images,
        "job": f"{'/'.join(map(str, SIZES))} px inside, JPEG q={QUALITY}, EXIF-upright, sRGB, one core each",
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "contenders": {},
        "skipped": {c.key: c.skipped for c in rows if c.skipped},
    }
    for c in rows:
        got = samples.get(c.key, [])
        if c.skipped or not got:
            continue
        cpu = [s["cpu_s"] for s in got]
        paired = [s / k for s, k in zip(cpu, core, strict=False) if k > 0]
        results["contenders"][c.key] = {
            "label": c.label,
            "peer": c.contender,
            "cpu_s": round(median(cpu), 3),
            "cpu_ms_per_image": round(1000 * median(cpu) / images, 1),
            "ratio_vs_core": round(median(paired), 3) if paired else None,
            "cpu_s_runs": [round(x, 3) for x in cpu],
            "failures": got[-1].get("failures", 0),
            "first_photo_sizes": got[-1].get("first"),
            "versions": got[-1].get("versions", {}),
        }
    peers = {k: v for k, v in results["contenders"].items() if v["peer"] and k != "core"}
    if peers and "core" in results["contenders"]:
        fastest = min(peers, key=lambda k: peers[k]["cpu_s"])
        ratio = results["contenders"]["core"]["cpu_s"] / peers[fastest]["cpu_s"]
        results["fastest_peer"] = fastest
        results["core_vs_fastest_peer_cpu_ratio"] = round(ratio, 3)
        results["target"] = "core CPU <= 0.87x the fastest peer's"
        results["target_met"] = ratio <= 0.87
    sharp = results["contenders"].get("sharp-one-decode")
    if sharp and "core" in results["contenders"]:  # issue 14 states its target against this one, too
        ratio = results["contenders"]["core"]["cpu_s"] / sharp["cpu_s"]
        results["core_vs_sharp_one_decode_cpu_ratio"] = round(ratio, 3)
    return results


def report(results: dict[str, Any], rows: list[Contender]) -> str:
    n = results["images"]
    lines = []
    ordered = sorted(results["contenders"].items(), key=lambda kv: kv[1]["cpu_s"])
    body = [
        [
            ("> " if k == "core" else "") + v["label"],
            f"{v['cpu_s']:.2f}",
            f"{v['cpu_ms_per_image']:.1f}",
            "1.00" if k == "core" or v["ratio_vs_core"] is None else f"{v['ratio_vs_core']:.2f}",
            ", ".join(f"{a} {b}" for a, b in v["versions"].items()),
        ]
        for k, v in ordered
    ]
    body += [[c.label, "skipped", "-", "-", c.skipped] for c in rows if c.skipped]
    title = f"Peers: CPU for {n} photos ({results['photos']}), median of {results['runs']} paired runs"
    lines.append(table(title, ["contender", "CPU s", "ms/image", "x core", "versions / why"], body))
    if "core_vs_fastest_peer_cpu_ratio" in results:
        met = "met" if results["target_met"] else "missed"
        ratio = results["core_vs_fastest_peer_cpu_ratio"]
        lines.append(
            f"core / fastest peer ({results['fastest_peer']}): {ratio:.2f}x CPU; target <= 0.87x: {met}"
        )
    if "core_vs_sharp_one_decode_cpu_ratio" in results:
        ratio = results["core_vs_sharp_one_decode_cpu_ratio"]
        met = "met" if ratio <= 0.87 else "missed"
        lines.append(f"core / sharp's one-decode cascade: {ratio:.2f}x CPU; target <= 0.87x: {met}")
    failures = {k: v["failures"] for k, v in results["contenders"].items() if v["failures"]}
    if failures:
        lines.append(f"photos a contender failed to render (their CPU is in the figure): {failures}")
    return "\n".join(lines)


# --- the core's own child process ------------------------------------------------------------------------


def child(mode: str) -> None:
    """Render the files listed on stdin with the core (or only decode them); print CPU as one JSON line."""
    import pyvips

    from worker.core.presets import parse_presets
    from worker.imaging import Limits, render

    huffman = ":huffman=standard" if mode == "core-standard-huffman" else ""
    presets = parse_presets(",".join(f"s{s}:{s}:jpeg:q={QUALITY}{huffman}" for s in SIZES))
    limits = Limits(max_pixels=200_000_000, max_progressive_pixels=200_000_000, memory_budget_bytes=2**34)

    def core(data: bytes) -> list[tuple[int, int]]:
        return [(r.width, r.height) for r in render(data, presets, limits)]

    def decode_floor(data: bytes) -> list[tuple[int, int]]:
        header = pyvips.Image.new_from_buffer(data, "")
        factor = max(header.width, header.height) / SIZES[0]
        shrink = next((s for s in (8, 4, 2) if factor >= s), 1)
        image = pyvips.Image.jpegload_buffer(data, shrink=shrink, fail_on="none").copy_memory()
        return [(image.width, image.height)]

    fn = decode_floor if mode == "decode-floor" else core
    files = [Path(p).read_bytes() for p in sys.stdin.read().split("\n") if p]
    first = fn(files[0])  # warm-up: imports, libvips start, codec init
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start, failures = usage.ru_utime + usage.ru_stime, 0
    for data in files:
        try:
            fn(data)
        except Exception:  # counted and reported, like the peers' failures
            failures += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    from worker.imaging import build_info

    info = build_info()
    versions = {"libvips": f"{info['libvips']} ({info['binding']})"}
    print(
        json.dumps(
            {
                "cpu_s": usage.ru_utime + usage.ru_stime - start,
                "images": len(files),
                "failures": failures,
                "first": first,
                "versions": versions,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="paired runs (median)")
    parser.add_argument("--quick", action="store_true", help="2 runs over 12 photos")
    parser.add_argument("--photos", type=int, default=None, help="only the first N photos")
    parser.add_argument("--only", default=None, help="comma-separated contender keys")
    parser.add_argument("--json", type=Path, default=None, help=f"also write here (always {RESULTS.name})")
    parser.add_argument(
        "--child", choices=("core", "core-standard-huffman", "decode-floor"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    runs, limit = (2, args.photos or 12) if args.quick else (args.runs, args.photos)
    rows = contenders(set(args.only.split(",")) | {"core"} if args.only else None)
    with photo_listing(limit) as (paths, source):
        print(f"{source}; contenders: {', '.join(c.key for c in rows if not c.skipped)}", flush=True)
        samples = measure(rows, paths, runs)
        results = summarise(rows, samples, len(paths), source, runs)
    results["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps(results, indent=2) + "\n"
    RESULTS.write_text(text)
    if args.json:
        args.json.write_text(text)
    print()
    print(report(results, rows))
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
