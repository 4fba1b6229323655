"""The Pillow contenders of bench/bench_peers.py (stock Pillow or Pillow-SIMD, whichever ``PIL`` imports).

Run by any interpreter that has PIL, with nothing of thumbx on its path (Pillow-SIMD lives in its own
venv): ``python bench/pillow_runner.py QUALITY SIZE... < listing`` renders every file listed on stdin as a
draft cascade with lanczos (decode at the JPEG DCT scale that covers the largest size, EXIF-upright,
embedded ICC profile converted to sRGB once, then each size from the previous one) and prints one JSON
line: whole-process CPU seconds for the files after one warm-up render.
"""

from __future__ import annotations

import io
import json
import resource
import sys

import PIL
from PIL import Image, ImageCms, ImageFile, ImageOps, features

ImageFile.LOAD_TRUNCATED_IMAGES = True  # one corpus photo is a few bytes short; libvips accepts it too
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def render(data: bytes, sizes: list[int], quality: int) -> list[tuple[int, int]]:
    image: Image.Image = Image.open(io.BytesIO(data))
    image.draft("RGB", (sizes[0], sizes[0]))
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image) or image
    if image.mode != "RGB":
        image = image.convert("RGB")
    made = []
    for n, size in enumerate(sizes):
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        if icc and n == 0:  # colour-convert once, at the largest output size
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            image = ImageCms.profileToProfile(image, source, SRGB, outputMode="RGB") or image
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True)
        made.append(image.size)
    return made


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    quality, sizes = int(sys.argv[1]), sorted(map(int, sys.argv[2:]), reverse=True)
    files = [open(path, "rb").read() for path in sys.stdin.read().split("\n") if path]  # noqa: SIM115
    first = render(files[0], sizes, quality)  # warm-up: imports, codec init
    start, failures = cpu_s(), 0
    for data in files:
        try:
            render(data, sizes, quality)
        except (OSError, ValueError, SyntaxError):
            failures += 1
    used = cpu_s() - start
    print(
        json.dumps(
            {
                "cpu_s": used,
                "images": len(files),
                "failures": failures,
                "first": first,
                "versions": {"pillow": PIL.__version__, "libjpeg_turbo": features.version("libjpeg_turbo")},
            }
        )
    )


if __name__ == "__main__":
    main()
