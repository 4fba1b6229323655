"""Make worker/sample_data/phone.heic, the demo's HEIC sample (dev time only: needs pillow-heif's encoder).

    .venv/bin/python tools/make_heic_sample.py

The picture is thumbx's own demo scene (worker/demo/samples.py, MIT like the rest of the project), stored the
way an iPhone stores a portrait: the pixels turned sideways, an ``irot`` transform saying how to show them
and an EXIF Orientation tag (6) describing the same turn. A thumbnail that applies the rotation twice, or
not at all, comes out visibly sideways on the contact sheet. The runtime only decodes (pi-heif has no
encoder), which is why the file is shipped rather than drawn at run time like the JPEG samples.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pillow_heif
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.demo.samples import upright_scene  # noqa: E402

TARGET = ROOT / "worker" / "sample_data" / "phone.heic"


def main() -> int:
    upright = upright_scene(900, 1200, "HEIC")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as the sensor saw it: landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # pillow-heif writes the matching irot and keeps the tag, as phones do
    exif[0x010F] = "thumbx demo camera"
    out = io.BytesIO()
    pillow_heif.from_pillow(stored).save(out, quality=60, exif=exif.tobytes())
    TARGET.write_bytes(out.getvalue())
    print(f"{TARGET.relative_to(ROOT)}: {len(out.getvalue())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
