"""Colour-managed test corpus made at test time, and the yardstick: littleCMS (Pillow ImageCms) itself.

Profiles are written here byte by byte (ICC v2: matrix/TRC for Adobe RGB, ProPhoto, Display P3 and grey;
a CLUT ``A2B0`` profile for an XYB-encoded JPEG modelled on jpegli's ``--xyb``) or taken from libvips'
built-in set (Display P3, CMYK). Each source is a colourful sRGB picture converted into the profile's
device values by lcms (or, for XYB, by the opsin formulas) and saved with the profile embedded.

``mad(thumbnail, source)``: the thumbnail against the source converted to sRGB by lcms with the intent
the core documents, resized alike: mean absolute difference per channel, 0-255, over 4x4-pixel blocks.

    .venv/bin/python -m tests.colour_corpus                        # the table for this checkout
    .venv/bin/python -m tests.colour_corpus --worker-root ../main  # the same table for another checkout
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps, ImageStat

D50 = (0.9642, 1.0, 0.8249)
D65_XY = (0.3127, 0.3290)
D50_XY = (0.3457, 0.3585)
SRGB_TO_XYZ_D50 = (
    (0.4360747, 0.3850649, 0.1430804),
    (0.2225045, 0.7168786, 0.0606169),
    (0.0139322, 0.0971045, 0.7141733),
)
INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION
SIZE = (320, 240)
PRESET = "t:160:png"
BLOCK = 4
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


# --- ICC v2 writer ------------------------------------------------------------------------------------


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * (4 + 4 + 2 + 1 + 67)


def _gamma(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _srgb_curve(entries: int = 1024) -> bytes:
    def eotf(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    table = [round(eotf(i / (entries - 1)) * 65535) for i in range(entries)]
    return b"curv\0\0\0\0" + struct.pack(f">I{entries}H", entries, *table)


def icc_profile(space: bytes, device_class: bytes, tags: dict[bytes, bytes]) -> bytes:
    """An ICC v2.1 profile (PCS XYZ, D50) with these tags, each padded to 4 bytes."""
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags.items():
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + device_class
        + space
        + b"XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + b"".join(_s15(v) for v in D50)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _xy_to_xyz(x: float, y: float) -> tuple[float, float, float]:
    return (x / y, 1.0, (1 - x - y) / y)


def _solve(m: Sequence[Sequence[float]], v: Sequence[float]) -> list[float]:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    inv = (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )
    return [sum(inv[r][k] * v[k] for k in range(3)) for r in range(3)]


def _mul(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[sum(a[r][k] * b[k][c] for k in range(3)) for c in range(3)] for r in range(3)]


BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))


def colorants_d50(primaries: Sequence[tuple[float, float]], white: tuple[float, float]) -> list[list[float]]:
    """The RGB->XYZ matrix of these primaries and white, chromatically adapted to D50 (Bradford)."""
    columns = [_xy_to_xyz(*p) for p in primaries]
    m = [[columns[c][r] for c in range(3)] for r in range(3)]
    white_xyz = _xy_to_xyz(*white)
    scale = _solve(m, white_xyz)
    rgb_to_xyz = [[m[r][c] * scale[c] for c in range(3)] for r in range(3)]
    src = [sum(BRADFORD[r][k] * white_xyz[k] for k in range(3)) for r in range(3)]
    dst = [sum(BRADFORD[r][k] * D50[k] for k in range(3)) for r in range(3)]
    diag = [[dst[r] / src[r] if r == c else 0.0 for c in range(3)] for r in range(3)]
    inverse_bradford = [_solve(BRADFORD, [1.0 if k == c else 0.0 for k in range(3)]) for c in range(3)]
    inverse_bradford = [[inverse_bradford[c][r] for c in range(3)] for r in range(3)]
    adapt = _mul(inverse_bradford, _mul(diag, BRADFORD))
    return _mul(adapt, rgb_to_xyz)


def matrix_profile(
    name: str, primaries: Sequence[tuple[float, float]], white: tuple[float, float], trc: bytes
) -> bytes:
    m = colorants_d50(primaries, white)
    return icc_profile(
        b"RGB ",
        b"mntr",
        {
            b"desc": _desc(name),
            b"cprt": b"text\0\0\0\0No copyright, test profile\0",
            b"wtpt": _xyz(D50),
            b"rXYZ": _xyz([m[r][0] for r in range(3)]),
            b"gXYZ": _xyz([m[r][1] for r in range(3)]),
            b"bXYZ": _xyz([m[r][2] for r in range(3)]),
            b"rTRC": trc,
            b"gTRC": trc,
            b"bTRC": trc,
        },
    )


def grey_profile(name: str, gamma: float) -> bytes:
    return icc_profile(
        b"GRAY",
        b"mntr",
        {
            b"desc": _desc(name),
            b"cprt": b"text\0\0\0\0No copyright, test profile\0",
            b"wtpt": _xyz(D50),
            b"kTRC": _gamma(gamma),
        },
    )


# --- XYB, modelled on jpegli's --xyb: opsin absorbance, cube root, opponent channels, scaled to 0..1 ------

OPSIN = (
    (0.30, 0.622, 0.078),
    (0.23, 0.692, 0.078),
    (0.24342268924547819, 0.20476744424496821, 0.55180986650955360),
)
BIAS = 0.0037930732552754493
OFFSET = (0.015386134, 0.0, 0.27770459)
SCALE = (22.995788804, 1.183000077, 1.502141333)


def _linear(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def xyb_encode(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    linear = [_linear(c / 255) for c in rgb]
    lms = [
        math.cbrt(sum(OPSIN[r][k] * linear[k] for k in range(3)) + BIAS) - math.cbrt(BIAS) for r in range(3)
    ]
    x, y, b = (lms[0] - lms[1]) / 2, (lms[0] + lms[1]) / 2, lms[2]
    scaled = ((x + OFFSET[0]) * SCALE[0], (y + OFFSET[1]) * SCALE[1], (b - y + OFFSET[2]) * SCALE[2])
    return tuple(max(0, min(255, round(v * 255))) for v in scaled)  # type: ignore[return-value]


def _xyb_to_xyz(device: Sequence[float]) -> list[float]:
    x = device[0] / SCALE[0] - OFFSET[0]
    y = device[1] / SCALE[1] - OFFSET[1]
    b = device[2] / SCALE[2] - OFFSET[2] + y
    lms = [y + x, y - x, b]
    mixed = [(v + math.cbrt(BIAS)) ** 3 - BIAS for v in lms]
    linear = _solve(OPSIN, mixed)
    xyz = [sum(SRGB_TO_XYZ_D50[r][k] * linear[k] for k in range(3)) for r in range(3)]
    return [max(0.0, min(65535 / 32768, v)) for v in xyz]


def xyb_profile(grid: int = 17) -> bytes:
    """An input profile whose A2B0 (lut16, PCS XYZ) CLUT maps scaled XYB device values to XYZ."""
    identity = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    clut = []
    for i in range(grid):
        for j in range(grid):
            for k in range(grid):
                xyz = _xyb_to_xyz((i / (grid - 1), j / (grid - 1), k / (grid - 1)))
                clut += [round(v * 32768) for v in xyz]
    linear_table = [0, 65535]
    lut = (
        b"mft2\0\0\0\0"
        + struct.pack(">BBBB", 3, 3, grid, 0)
        + b"".join(_s15(v) for v in identity)
        + struct.pack(">HH", 2, 2)
        + struct.pack(">6H", *(linear_table * 3))
        + struct.pack(f">{len(clut)}H", *clut)
        + struct.pack(">6H", *(linear_table * 3))
    )
    return icc_profile(
        b"RGB ",
        b"scnr",
        {
            b"desc": _desc("XYB (test, modelled on jpegli)"),
            b"cprt": b"text\0\0\0\0No copyright, test profile\0",
            b"wtpt": _xyz(D50),
            b"A2B0": lut,
        },
    )


# --- the pictures -------------------------------------------------------------------------------------


@functools.cache
def picture(size: tuple[int, int] = SIZE) -> Image.Image:
    """A colourful sRGB picture: hue sweep over a lightness ramp, saturated patches, neutrals, skin."""
    width, height = size
    image = Image.new("RGB", size)
    pixels = image.load()
    assert pixels is not None
    for y in range(height):
        for x in range(width):
            hue, light = x / width, 1 - y / height
            r, g, b = (_hue_channel(hue + shift) for shift in (0.0, 2 / 3, 1 / 3))
            pixels[x, y] = tuple(round(255 * (light * (0.25 + 0.75 * c))) for c in (r, g, b))
    draw = ImageDraw.Draw(image)
    patches = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    patches += [(0, 0, 0), (128, 128, 128), (255, 255, 255), (224, 172, 140), (60, 120, 40), (200, 180, 60)]
    cell = width // len(patches)
    for index, colour in enumerate(patches):
        draw.rectangle([index * cell, height - 40, (index + 1) * cell - 1, height - 1], fill=colour)
    return image


def _hue_channel(phase: float) -> float:
    return max(0.0, min(1.0, abs((phase % 1.0) * 6 - 3) - 1))


def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _profile(data: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(data))


def to_device(image: Image.Image, profile: bytes, mode: str) -> Image.Image:
    converted = ImageCms.profileToProfile(
        image, srgb_profile(), _profile(profile), renderingIntent=INTENT, outputMode=mode, flags=FLAGS
    )
    assert converted is not None
    return converted


def save(image: Image.Image, fmt: str, profile: bytes | None, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, icc_profile=profile, **options)  # None: no profile, not the one in image.info
    return buffer.getvalue()


@functools.cache
def libvips_profile(name: str) -> bytes | None:
    """One of the profiles libvips ships (``srgb``, ``p3``, ``cmyk``), as bytes; None if this one has none.

    Read through pyvips directly, so the table can also be printed for a checkout older than issue 16.
    """
    import pyvips

    probe = (pyvips.Image.black(1, 1, bands=3) + 128).cast("uchar").copy(interpretation="srgb")
    try:
        return bytes(probe.icc_transform(name, input_profile="srgb").get("icc-profile-data"))
    except pyvips.Error:
        return None


def shipped(name: str) -> bytes:
    profile = libvips_profile(name)
    assert profile is not None, f"this libvips ships no {name} profile"
    return profile


ADOBE_RGB = matrix_profile(
    "Adobe RGB (1998) (test)", ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), D65_XY, _gamma(563 / 256)
)
PROPHOTO = matrix_profile(
    "ProPhoto RGB (test)", ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50_XY, _gamma(1.8)
)
DISPLAY_P3 = matrix_profile(
    "Display P3 (test)", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65_XY, _srgb_curve()
)
GREY_22 = grey_profile("Gray Gamma 2.2 (test)", 2.2)


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    reference: Callable[[], Image.Image]  # the source in sRGB, upright, full size, converted by lcms


def _lcms_reference(data: bytes, fallback: bytes | None = None) -> Callable[[], Image.Image]:
    def reference() -> Image.Image:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        embedded = image.info.get("icc_profile") or fallback
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        mode = {"RGBA": "RGB", "LA": "L", "I;16": "L"}.get(image.mode, image.mode)
        if image.mode != mode:
            image = image.convert(mode)
        if embedded is None:
            return image.convert("RGB")
        out = ImageCms.profileToProfile(
            image, _profile(embedded), srgb_profile(), renderingIntent=INTENT, outputMode="RGB", flags=FLAGS
        )
        assert out is not None
        if alpha is not None:
            out.putalpha(alpha)
        return out

    return reference


def _device_reference(device: Image.Image, profile: bytes) -> Callable[[], Image.Image]:
    def reference() -> Image.Image:
        out = ImageCms.profileToProfile(
            device, _profile(profile), srgb_profile(), renderingIntent=INTENT, outputMode="RGB", flags=FLAGS
        )
        assert out is not None
        return out

    return reference


def generated_cases() -> list[Case]:
    """Sources made here: one per profile kind the core must handle."""
    src = picture()
    cases = []
    profiles = [("Adobe RGB JPEG", ADOBE_RGB), ("ProPhoto JPEG", PROPHOTO), ("Display P3 JPEG", DISPLAY_P3)]
    p3 = libvips_profile("p3")
    if p3 is not None:
        profiles.append(("Display P3 (libvips) WebP", p3))
    for name, profile in profiles:
        device = to_device(src, profile, "RGB")
        fmt = "WEBP" if "WebP" in name else "JPEG"
        data = save(device, fmt, profile, quality=95, **({"subsampling": 0} if fmt == "JPEG" else {}))
        cases.append(Case(name, data, _lcms_reference(data)))
    prophoto = to_device(src, PROPHOTO, "RGB")
    png16 = _sixteen_bit_png(prophoto, PROPHOTO)
    cases.append(Case("ProPhoto PNG 16-bit", png16, _device_reference(prophoto, PROPHOTO)))
    rgba = to_device(src, ADOBE_RGB, "RGB").convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(SIZE).point(lambda v: 128 + v // 2))
    data = save(rgba, "PNG", ADOBE_RGB)
    cases.append(Case("Adobe RGB PNG with alpha", data, _lcms_reference(data)))
    cmyk_profile = shipped("cmyk")
    cmyk = to_device(src, cmyk_profile, "CMYK")
    tagged = save(cmyk, "JPEG", cmyk_profile, quality=95)
    cases.append(Case("CMYK JPEG with profile", tagged, _lcms_reference(tagged)))
    untagged = save(cmyk, "JPEG", None, quality=95)
    cases.append(Case("CMYK JPEG, no profile", untagged, _lcms_reference(untagged, cmyk_profile)))
    grey = ImageCms.profileToProfile(
        src, srgb_profile(), _profile(GREY_22), renderingIntent=INTENT, outputMode="L", flags=FLAGS
    )
    assert grey is not None
    data = save(grey, "JPEG", GREY_22, quality=95)
    cases.append(Case("Grey Gamma 2.2 JPEG", data, _lcms_reference(data)))
    xyb = Image.new("RGB", src.size)
    xyb.putdata([xyb_encode(p) for p in src.get_flattened_data()])  # type: ignore[arg-type]
    profile = xyb_profile()
    data = save(xyb, "JPEG", profile, quality=95, subsampling=0)
    cases.append(Case("XYB JPEG (CLUT profile)", data, _lcms_reference(data)))
    return cases


def _sixteen_bit_png(device: Image.Image, profile: bytes) -> bytes:
    """The 8-bit device image as a 16-bit RGB PNG (value * 257) with the profile embedded (via libvips)."""
    import pyvips

    image = pyvips.Image.new_from_memory(device.tobytes(), device.width, device.height, 3, "uchar")
    image = (image.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
    return bytes(image.pngsave_buffer())  # metadata (the profile) is kept by default


# Real tagged photos in ../shared/corpus (present in CI beside the checkout; skipped when absent).
CORPUS_FILES = (
    ("Adobe RGB (1998), Canon", "edge/jpeg/pillow__xmp_test.jpg"),
    ("Artifex A98", "edge/jpeg/vips__sample.jpg"),
    ("Generic RGB, orientation 6", "edge/orientation/ianare__landscape_6.jpg"),
    ("TIFF RGB, 0.5 MB profile", "edge/jpeg/pillow__icc_profile_big.jpg"),
    ("Color LCD TIFF", "edge/tiff/ianare__BSG1.tiff"),
    ("CMYK JPEG, no profile", "edge/jpeg/pillow__pil_sample_cmyk.jpg"),
    ("Display P3 AVIF (rICC)", "edge/orientation/vips__avif-orientation-6.avif"),
    (
        "Display P3 AVIF (nclx 12/13/6, no ICC)",
        "edge/heif-avif/av1avif__animals_00_multilayer_grid_a1lx.avif",
    ),
)


def corpus_cases(root: Path = SHARED) -> list[Case]:
    cases = []
    for name, rel in CORPUS_FILES:
        path = root / rel
        if path.is_file():
            data = path.read_bytes()
            fallback = libvips_profile("cmyk") if "CMYK" in name else None
            if "nclx" in name:  # Pillow reads the device values; the nclx box says which profile they are in
                fallback = libvips_profile("p3")
                if fallback is None:
                    continue
            cases.append(Case(f"{name} [{Path(rel).name}]", data, _lcms_reference(data, fallback)))
    return cases


# --- the yardstick ------------------------------------------------------------------------------------


def mad(thumbnail: bytes, reference: Image.Image) -> float:
    """Mean absolute difference per channel (0-255), the reference resized to the thumbnail's size."""
    out: Image.Image = Image.open(io.BytesIO(thumbnail))
    out.load()
    if "A" in out.mode:  # compare colour over a fixed backdrop, the way a viewer composites
        out = _over_grey(out.convert("RGBA"))
    if "A" in reference.mode:
        reference = _over_grey(reference.convert("RGBA"))
    expected = reference.convert("RGB").resize(out.size, Image.Resampling.LANCZOS)
    # Over 4x4 blocks: the colour is compared, not the detail that JPEG's DCT shrink-on-load and the
    # resampling kernels render a little differently (up to ~2.8 on a sharp photo without any profile).
    difference = ImageChops.difference(
        out.convert("RGB").reduce(BLOCK) if min(out.size) >= BLOCK else out.convert("RGB"),
        expected.reduce(BLOCK) if min(out.size) >= BLOCK else expected,
    )
    return sum(ImageStat.Stat(difference).mean) / 3


def _over_grey(image: Image.Image) -> Image.Image:
    return Image.alpha_composite(Image.new("RGBA", image.size, (128, 128, 128, 255)), image).convert("RGB")


def thumbnail(data: bytes, spec: str = PRESET) -> bytes:
    from worker.core.presets import parse_presets
    from worker.imaging import render

    (rendition,) = render(data, parse_presets(spec))
    return rendition.data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-root", type=Path, help="import worker/ from this checkout instead")
    parser.add_argument("--corpus", type=Path, default=SHARED)
    args = parser.parse_args(argv)
    if args.worker_root:
        sys.path.insert(0, str(args.worker_root.resolve()))
    import worker

    print(f"worker from {Path(worker.__file__).parent.parent}; preset {PRESET}; intent relative + BPC")
    print(f"{'source':<58} {'MAD':>6}")
    for case in generated_cases() + corpus_cases(args.corpus):
        try:
            value = f"{mad(thumbnail(case.data), case.reference()):6.2f}"
        except Exception as exc:  # a row per source even when one fails
            value = f"error: {type(exc).__name__}: {exc}"[:60]
        print(f"{case.name:<58} {value:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
