"""Scratch profiler for issue 14 (not a test, not part of ``make bench``): where the core's CPU goes.

    VIPS_CONCURRENCY=1 python -m bench.profile_core [--rounds 3] [--cprofile]

Runs in one process, one libvips thread, over the corpus JPEGs, the bench-peers job (1024/512/128 JPEG
q=80). Each variant is timed with ``time.process_time`` (the whole process: every thread), variants
interleaved photo by photo, median over rounds, reported as CPU ms per photo:

* ``core``: ``worker.imaging.render`` as shipped.
* ``core, no deadline``: the same internals with a no-op deadline (no timer thread, no kill list).
* ``core, huffman=standard presets``: the shipped core with the standard JPEG Huffman tables.
* stages: ``probe`` alone; the base decode alone (``_decode_base``); decode at the DCT scale alone.
* ``lean``: a prototype of a leaner render from the same primitives: ``jpegload(shrink)`` + ``resize``
  (lanczos3) to the box in stored orientation, then ``autorot`` and the ICC transform on the small image,
  the cascade with ``resize``, encode with the ICC profile already gone (no per-field metadata loop).
  Its outputs are compared with the core's (mean absolute difference, 0-255, per channel).
* encoder: ``jpegsave_buffer`` with and without ``optimize_coding``, and with mozjpeg's trellis
  quantisation or optimised progressive scans, on the 1024 base (CPU and bytes); the 1024 -> 512 step with
  ``resize``, ``reduce`` and ``thumbnail_image`` (the core's).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import pyvips

from bench.common import corpus_photos, median, table
from worker.core.presets import parse_presets
from worker.imaging import Limits, core, render

SIZES = (1024, 512, 128)
PRESETS = parse_presets(",".join(f"s{s}:{s}:jpeg:q=80" for s in SIZES))
LIMITS = Limits(max_pixels=200_000_000, max_progressive_pixels=200_000_000, memory_budget_bytes=2**34)


class NoDeadline:
    killed = False
    expired = False

    def check(self, what: str) -> None:
        return None

    def watch(self, image: Any) -> Any:
        return image


def v_core(data: bytes) -> list[bytes]:
    return [r.data for r in render(data, PRESETS, LIMITS)]


STANDARD_HUFFMAN = parse_presets(",".join(f"s{s}:{s}:jpeg:q=80:huffman=standard" for s in SIZES))


def v_core_standard_huffman(data: bytes) -> list[bytes]:
    return [r.data for r in render(data, STANDARD_HUFFMAN, LIMITS)]


def v_no_deadline(data: bytes) -> list[bytes]:
    header = core.probe(data, LIMITS)
    return [r.data for r in core._render(data, header, PRESETS, NoDeadline())]  # type: ignore[arg-type]


def v_probe(data: bytes) -> list[bytes]:
    core.probe(data, LIMITS)
    return []


def v_decode_base(data: bytes) -> list[bytes]:
    header = core.probe(data, LIMITS)
    core._decode_base(data, header, PRESETS, NoDeadline())  # type: ignore[arg-type]
    return []


def _shrink(width: int, height: int, box: tuple[int, int]) -> int:
    factor = min(width / box[0], height / box[1])
    return next((s for s in (8, 4, 2) if factor >= s), 1)


def v_dct_only(data: bytes) -> list[bytes]:
    header = core.probe(data, LIMITS)
    w, h = header.upright
    scale = min(1024 / w, 1024 / h, 1.0)
    box = (max(1, round(w * scale)), max(1, round(h * scale)))
    pyvips.Image.jpegload_buffer(data, shrink=_shrink(w, h, box), fail_on="none").copy_memory()
    return []


def v_lean(data: bytes, optimize: bool = True) -> list[bytes]:
    """Prototype: the same job from the same primitives with fewer, cheaper calls."""
    header = core.probe(data, LIMITS)
    w, h = header.upright
    scale = min(SIZES[0] / w, SIZES[0] / h, 1.0)
    target = (max(1, round(w * scale)), max(1, round(h * scale)))
    swap = header.orientation in (5, 6, 7, 8)
    stored_target = (target[1], target[0]) if swap else target
    shrink = _shrink(header.width, header.height, stored_target)
    image = pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on="none", shrink=shrink)
    if (image.width, image.height) != stored_target:
        image = image.resize(stored_target[0] / image.width, vscale=stored_target[1] / image.height)
    if header.orientation != 1:  # rotating needs random access: rotate the small image, in memory
        image = image.copy_memory().autorot()
    if image.get_typeof("icc-profile-data") != 0:
        image = image.icc_transform("srgb", embedded=True, intent="relative")
    elif image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    base = image.copy_memory()
    outs = []
    source = base
    for size in SIZES:
        s = min(size / w, size / h, 1.0)  # from the photo's own size, as the core: no cascade drift
        want = (max(1, round(w * s)), max(1, round(h * s)))
        if (source.width, source.height) != want:
            source = source.resize(want[0] / source.width, vscale=want[1] / source.height).copy_memory()
        outs.append(bytes(source.jpegsave_buffer(Q=80, optimize_coding=optimize, keep=0)))
    return outs


def mad(a: bytes, b: bytes) -> float:
    x, y = pyvips.Image.new_from_buffer(a, ""), pyvips.Image.new_from_buffer(b, "")
    if (x.width, x.height) != (y.width, y.height):
        return float("inf")
    return float((x - y).abs().avg())


VARIANTS: dict[str, Callable[[bytes], list[bytes]]] = {
    "core": v_core,
    "core, no deadline": v_no_deadline,
    "core, huffman=standard presets": v_core_standard_huffman,
    "lean prototype": v_lean,
    "lean, plain Huffman tables": lambda d: v_lean(d, optimize=False),
    "probe only": v_probe,
    "base decode only (_decode_base)": v_decode_base,
    "DCT-scale decode only": v_dct_only,
}


def icc_cost(photos: list[bytes]) -> dict[str, float]:
    """On the photos with an ICC profile: the base decode as shipped vs the profile applied after."""
    with_icc = [d for d in photos if pyvips.Image.new_from_buffer(d, "").get_typeof("icc-profile-data")]
    out: dict[str, float] = {"photos with a profile": float(len(with_icc))}
    for label, fn in (("_decode_base (ICC in thumbnail_image)", v_decode_base), ("lean", v_lean)):
        fn(with_icc[0])
        start = time.process_time()
        for d in with_icc:
            fn(d)
        out[label] = 1000 * (time.process_time() - start) / len(with_icc)
    return out


def encoders(photos: list[bytes]) -> dict[str, float]:
    bases = [v_lean_base(d) for d in photos]
    out: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for label, opts in (
        ("jpegsave 1024, optimize_coding (shipped)", {"optimize_coding": True}),
        ("jpegsave 1024, plain Huffman tables", {}),
        ("jpegsave 1024, optimize_coding + trellis_quant (mozjpeg)", {"optimize_coding": True,
                                                                      "trellis_quant": True}),
        ("jpegsave 1024, optimize_coding + optimize_scans (progressive)", {"optimize_coding": True,
                                                                          "interlace": True,
                                                                          "optimize_scans": True}),
    ):  # fmt: skip
        start = time.process_time()
        total = 0
        for b in bases:
            total += len(b.jpegsave_buffer(Q=80, keep=0, **opts))
        out[label] = 1000 * (time.process_time() - start) / len(bases)
        sizes[label] = total
    shipped = sizes["jpegsave 1024, optimize_coding (shipped)"]
    for label, total in sizes.items():
        out[f"  bytes x shipped: {label.removeprefix('jpegsave 1024, ')}"] = total / shipped
    resize_t = time.process_time()
    for b in bases:
        b.resize(0.5).copy_memory()
    out["resize 1024 -> 512 (resize)"] = 1000 * (time.process_time() - resize_t) / len(bases)
    reduce_t = time.process_time()
    for b in bases:
        b.reduce(2, 2).copy_memory()
    out["resize 1024 -> 512 (reduce 2x2, lanczos3)"] = 1000 * (time.process_time() - reduce_t) / len(bases)
    thumb_t = time.process_time()
    for b in bases:
        b.thumbnail_image(b.width // 2, height=b.height // 2, size="force").copy_memory()
    out["resize 1024 -> 512 (thumbnail_image)"] = 1000 * (time.process_time() - thumb_t) / len(bases)
    return out


def v_lean_base(data: bytes) -> Any:
    return pyvips.Image.new_from_buffer(v_lean(data)[0], "").copy_memory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    photos = [d for _, d in corpus_photos()]
    for fn in VARIANTS.values():
        fn(photos[0])
    samples: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(args.rounds):
        spent = dict.fromkeys(VARIANTS, 0.0)
        for data in photos:
            for name, fn in VARIANTS.items():
                start = time.process_time()
                fn(data)
                spent[name] += time.process_time() - start
        for name, s in spent.items():
            samples[name].append(1000 * s / len(photos))
    base = median(samples["core"])
    rows = [[k, round(median(v), 1), round(median(v) - base, 1)] for k, v in samples.items()]
    title = f"CPU ms per photo, {len(photos)} photos, median of {args.rounds}"
    print(table(title, ["variant", "ms", "vs core"], rows))
    diffs = [max(mad(a, b) for a, b in zip(v_core(d), v_lean(d), strict=True)) for d in photos]
    print(f"lean vs core outputs, mean abs difference per photo (worst size): median {median(diffs):.2f},"
          f" max {max(diffs):.2f}")  # fmt: skip
    sizes = [sum(map(len, v_core_standard_huffman(d))) / sum(map(len, v_core(d))) for d in photos]
    print(f"huffman=standard: output bytes x{median(sizes):.3f} (median per photo), x{max(sizes):.3f} max")
    enc = encoders(photos)
    print(table("encoder / resize on the 1024 base, CPU ms per photo", ["step", "ms"],
                [[k, round(v, 3)] for k, v in enc.items()]))  # fmt: skip
    print(table("ICC photos only, CPU ms per photo", ["what", "ms"],
                [[k, round(v, 1)] for k, v in icc_cost(photos).items()]))  # fmt: skip
    if args.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for data in photos:
            v_core(data)
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())


if __name__ == "__main__":
    main()
