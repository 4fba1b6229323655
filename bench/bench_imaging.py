"""Benchmark (not a test): thumbx's imaging core vs Pillow vs bare pyvips on real camera JPEGs.

    make bench-imaging            # or: python bench/bench_imaging.py [--rounds N] [--corpus DIR]

One process, the same three presets (1024, 512, 128 px inside, JPEG q=80), the same EXIF orientation and
sRGB handling for every contender; interleaved rounds, median images/s. Peak RSS is measured in fresh child
processes (one per contender, plus 100-megapixel baseline and progressive JPEGs made by upscaling a corpus
photo). Prints a table and writes bench/results-imaging.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (1024, 512, 128)
QUALITY = 80
SPEC = ",".join(f"s{size}:{size}:jpeg:q={QUALITY}" for size in SIZES)
BIG_MP = 100


def shared_dir() -> Path | None:
    for candidate in (os.environ.get("THUMBX_SHARED"), ROOT.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "corpus").is_dir():
            return Path(candidate)
    return None


# --- contenders: bytes -> list of output bytes ------------------------------------------------------------


def core(data: bytes) -> list[bytes]:
    from worker.core.presets import parse_presets
    from worker.imaging import Limits, render

    limits = Limits(max_pixels=200_000_000, max_progressive_pixels=200_000_000, memory_budget_bytes=2**34)
    return [r.data for r in render(data, parse_presets(SPEC), limits)]


def pillow(data: bytes) -> list[bytes]:
    from PIL import Image, ImageCms, ImageFile, ImageOps

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # one photo has a short last segment that libvips accepts
    image: Image.Image = Image.open(io.BytesIO(data))
    image.draft("RGB", (SIZES[0], SIZES[0]))
    icc = image.info.get("icc_profile")
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode != "RGB":
        image = image.convert("RGB")
    outputs = []
    for size in SIZES:  # cascade: each size from the previous one; Pillow's default filter (bicubic),
        image.thumbnail(
            (size, size)
        )  # cheaper than the lanczos3 our core uses: the comparison favours Pillow
        if icc and size == SIZES[0]:  # colour-convert once, at the first (largest) output size
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            image = converted if converted is not None else image
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=QUALITY, optimize=True)
        outputs.append(buffer.getvalue())
    return outputs


def pyvips_separate(data: bytes) -> list[bytes]:
    import pyvips

    strip = {"keep": 0} if pyvips.at_least_libvips(8, 15) else {"strip": True}
    return [
        bytes(
            pyvips.Image.thumbnail_buffer(data, s, height=s, size="down").jpegsave_buffer(Q=QUALITY, **strip)
        )
        for s in SIZES
    ]


def decode_floor(data: bytes) -> list[bytes]:
    """Only the decode at the shrink-on-load scale the 1024 preset needs: the cost nothing can avoid."""
    import pyvips

    header = pyvips.Image.new_from_buffer(data, "")
    factor = max(header.width, header.height) / SIZES[0]
    shrink = next(s for s in (8, 4, 2, 1) if factor >= s)
    pyvips.Image.jpegload_buffer(data, shrink=shrink).copy_memory()
    return []


_RETAGGED: dict[bytes, bytes] = {}


def core_adobe_rgb(data: bytes) -> list[bytes]:
    """The core on the same photo tagged Adobe RGB instead (issue 16: the cost of colour conversion)."""
    if data not in _RETAGGED:
        from tests.colour_corpus import ADOBE_RGB

        _RETAGGED[data] = with_icc_profile(data, ADOBE_RGB)
    return core(_RETAGGED[data])


def with_icc_profile(jpeg: bytes, profile: bytes) -> bytes:
    """The JPEG with its APP2 ICC_PROFILE segments replaced by ``profile`` (scan data untouched)."""
    position, kept = 2, [jpeg[:2]]
    while position + 4 <= len(jpeg) and jpeg[position] == 0xFF and jpeg[position + 1] not in (0xDA, 0xD9):
        length = int.from_bytes(jpeg[position + 2 : position + 4], "big")
        segment = jpeg[position : position + 2 + length]
        if not (segment[1] == 0xE2 and segment[4:16] == b"ICC_PROFILE\0"):
            kept.append(segment)
        position += 2 + length
    chunks = [profile[i : i + 65519] for i in range(0, len(profile), 65519)]
    app2 = [
        b"\xff\xe2"
        + (len(chunk) + 16).to_bytes(2, "big")
        + b"ICC_PROFILE\0"
        + bytes([n + 1, len(chunks)])
        + chunk
        for n, chunk in enumerate(chunks)
    ]
    return kept[0] + b"".join(app2) + b"".join(kept[1:]) + jpeg[position:]


CONTENDERS: dict[str, Callable[[bytes], list[bytes]]] = {
    "core": core,
    "core_same_photos_tagged_adobe_rgb": core_adobe_rgb,
    "pillow_draft_cascade": pillow,
    "pyvips_3_thumbnail_buffer": pyvips_separate,
    "decode_floor": decode_floor,
}


def throughput(files: list[bytes], rounds: int) -> dict[str, float]:
    """Median images/s per contender; contenders alternate image by image so load spikes hit all alike."""
    for fn in CONTENDERS.values():  # warm-up: imports, codec init
        fn(files[0])
    samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(rounds):
        spent = dict.fromkeys(CONTENDERS, 0.0)
        for data in files:
            for name, fn in CONTENDERS.items():
                started = time.perf_counter()
                fn(data)
                spent[name] += time.perf_counter() - started
        for name, seconds in spent.items():
            samples[name].append(len(files) / seconds)
    return {name: statistics.median(values) for name, values in samples.items()}


def child_rss(contender: str, path: str) -> float:
    """Peak RSS (MB) of a fresh process that runs ``contender`` over the files listed in ``path``."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", contender, path],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def make_big(photo: Path, target: Path, *, progressive: bool) -> None:
    import pyvips

    image = pyvips.Image.new_from_file(str(photo), access="sequential")
    scale = (BIG_MP * 1e6 / (image.width * image.height)) ** 0.5
    strip = {"keep": 0} if pyvips.at_least_libvips(8, 15) else {"strip": True}
    image.resize(scale).jpegsave(str(target), Q=85, interlace=progressive, **strip)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-imaging.json")
    args = parser.parse_args()
    shared = shared_dir()
    corpus = args.corpus or (shared / "corpus" / "photos" / "jpeg" if shared else None)
    if corpus is None or not corpus.is_dir():
        print("no corpus: set THUMBX_SHARED or pass --corpus DIR", file=sys.stderr)
        return 2
    paths = sorted(p for p in corpus.iterdir() if p.is_file())
    files = [p.read_bytes() for p in paths]
    from worker.imaging import build_info

    rates = throughput(files, args.rounds)
    listing = ROOT / "bench" / "photos.tmp"
    listing.write_text("\n".join(map(str, paths)))
    rss = {name: child_rss(name, str(listing)) for name in ("core", "pillow_draft_cascade")}
    big = {}
    for progressive in (False, True):
        kind = "progressive" if progressive else "baseline"
        target = ROOT / "bench" / f"big-{kind}.tmp"
        if not target.exists():
            make_big(max(paths, key=lambda p: p.stat().st_size), target, progressive=progressive)
        target_list = ROOT / "bench" / f"big-{kind}-list.tmp"
        target_list.write_text(str(target))
        big[f"core_{BIG_MP}mp_{kind}_peak_rss_mb"] = child_rss("core", str(target_list))
        big[f"thumbnail_buffer_{BIG_MP}mp_{kind}_peak_rss_mb"] = child_rss(
            "pyvips_3_thumbnail_buffer", str(target_list)
        )
    results = {
        "build": {k: v for k, v in build_info().items() if k != "suffixes"},
        "images": len(files),
        "presets": SPEC,
        "rounds": args.rounds,
        "images_per_second": {k: round(v, 2) for k, v in rates.items()},
        "core_vs_pillow_ratio": round(rates["core"] / rates["pillow_draft_cascade"], 3),
        "core_vs_pyvips_3_calls_ratio": round(rates["core"] / rates["pyvips_3_thumbnail_buffer"], 3),
        "decode_floor_vs_core_ratio": round(rates["decode_floor"] / rates["core"], 3),
        "colour_conversion_ms_per_image": round(
            1000 / rates["core_same_photos_tagged_adobe_rgb"] - 1000 / rates["core"], 1
        ),
        "photos_peak_rss_mb": rss,
        **big,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'contender':28} {'img/s':>8}")
    for name, rate in rates.items():
        print(f"{name:28} {rate:8.2f}")
    for key, value in results.items():
        if key not in ("images_per_second", "build"):
            print(f"{key}: {value}")
    print(f"build: {results['build']}   -> {args.out}")
    return 0


def rss_child(contender: str, listing: str) -> int:
    fn = CONTENDERS[contender]
    for path in Path(listing).read_text().split("\n"):
        fn(Path(path).read_bytes())
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak
    status = Path("/proc/self/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(hwm_kb / 1024)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss-child":
        sys.exit(rss_child(sys.argv[2], sys.argv[3]))
    sys.exit(main())
