"""``thumbx render FILE... [--out DIR] [--preset NAME]``: render local files with the production core.

Prints one line per file: the thumbnails written, or the typed reason it was refused. Exit status 1 when
any file failed, 0 otherwise; never a traceback for a bad image. Presets come from ``THUMBX_PRESETS`` (or
``--presets``) and limits from the ``THUMBX_MAX_*`` / ``THUMBX_ALLOWED_FORMATS`` / ``THUMBX_RENDER_*``
variables, exactly as the worker reads them. Outputs go to ``DIR/<file name>/<preset>.<ext>``, the same
shape as the bucket's ``thumbnails/<key>/<preset>.<ext>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from worker.config import load_limits
from worker.errors import ConfigError, ImageError
from worker.presets import DEFAULT_PRESETS, Preset, parse_presets


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render local image files with the thumbnail presets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", type=Path)
    parser.add_argument("--out", type=Path, default=Path("thumbx-out"), help="output folder (thumbx-out)")
    parser.add_argument(
        "--preset", action="append", default=[], metavar="NAME", help="only this preset (repeatable)"
    )
    parser.add_argument("--presets", metavar="SPEC", help="preset spec (default: $THUMBX_PRESETS)")
    parser.add_argument("--build", action="store_true", help="print which libvips is in use and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.imaging import build_info, render  # imported here: loading libvips is not free

    if args.build:
        info = build_info()
        print(f"libvips {info['libvips']} ({info['binding']}); reads {' '.join(info['suffixes'])}")  # type: ignore[arg-type]
        heic = info["heic"]
        print(f"HEIC: pi-heif {heic['pi_heif']} (libheif {heic['libheif']}, {heic['hevc_decoder']})")  # type: ignore[index]
        return 0
    if not args.files:
        print("thumbx render: no FILE given", file=sys.stderr)
        return 2
    presets = _presets(args)
    limits = load_limits()
    failed = 0
    for path in args.files:
        started = time.perf_counter()
        try:
            renditions = render(path.read_bytes(), presets, limits)
        except ImageError as exc:
            failed += 1
            print(f"{path}: refused {exc.reason}: {exc}")
            continue
        except OSError as exc:
            failed += 1
            print(f"{path}: unreadable: {exc.strerror or exc}")
            continue
        folder = args.out / path.name
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for rendition in renditions:
            target = folder / f"{rendition.preset.name}.{rendition.preset.extension}"
            target.write_bytes(rendition.data)
            written.append(f"{target} {rendition.width}x{rendition.height}")
        elapsed = (time.perf_counter() - started) * 1000
        print(f"{path}: ok in {elapsed:.0f} ms: {', '.join(written)}")
    return 1 if failed else 0


def _presets(args: argparse.Namespace) -> tuple[Preset, ...]:
    variable = "--presets" if args.presets else "THUMBX_PRESETS"
    spec = args.presets or os.environ.get("THUMBX_PRESETS", "").strip() or DEFAULT_PRESETS
    presets = parse_presets(spec, variable=variable)
    if not args.preset:
        return presets
    chosen = tuple(p for p in presets if p.name in set(args.preset))
    unknown = sorted(set(args.preset) - {p.name for p in chosen})
    if unknown:
        names = ", ".join(p.name for p in presets)
        raise ConfigError(f"--preset: no preset named {', '.join(unknown)} in {variable} (have: {names})")
    return chosen
