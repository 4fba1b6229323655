"""``thumbx render PATH... [--out DIR] [--preset NAME]``: render local files with the production core.

A PATH that is a folder is walked (recursively; hidden files skipped). Prints one line per file: the
thumbnails written, or the typed reason it was refused; then a summary ``N ok, M refused`` (and
``K unreadable``). Exit status 0 when every file rendered, 1 when any was refused or unreadable, 2 on a
configuration error or when there is nothing to render; never a traceback for a bad image. Presets come
from ``THUMBX_PRESETS`` (or ``--presets``) and limits from the ``THUMBX_MAX_*`` /
``THUMBX_ALLOWED_FORMATS`` / ``THUMBX_RENDER_*`` variables, exactly as the worker reads them. Outputs go
to ``DIR/<file name>/<preset>.<ext>`` (for a file found in a folder: ``DIR/<path below it>/<preset>.<ext>``),
the same shape as the bucket's ``thumbnails/<key>/<preset>.<ext>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from worker.core.config import RENDER_SETTINGS, load_limits, load_presets
from worker.core.errors import ConfigError, ImageError
from worker.core.presets import Preset, parse_presets
from worker.core.settings import help_text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render local image files (or folders of them) with the thumbnail presets",
        description=__doc__,
        epilog=help_text(names=RENDER_SETTINGS),
    )
    parser.add_argument(
        "files", nargs="*", metavar="PATH", type=Path, help="image files, or folders to walk (recursively)"
    )
    parser.add_argument("--out", type=Path, default=Path("thumbx-out"), help="output folder")
    parser.add_argument(
        "--preset", action="append", default=[], metavar="NAME", help="only this preset (repeatable)"
    )
    parser.add_argument("--presets", metavar="SPEC", help="preset spec (default: $THUMBX_PRESETS)")
    parser.add_argument("--build", action="store_true", help="print which libvips is in use and exit")
    parser.set_defaults(func=run)


def sources(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Each file to render with the folder its thumbnails go to (relative to --out): a file given by name
    goes to ``<name>/``, a file found under a folder to ``<path below the folder>/``. Hidden files and
    folders (``.DS_Store``, ``.git``) are skipped; symbolic links to folders are not followed."""
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if not path.is_dir():
            found.append((path, Path(path.name)))
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    file = Path(root, name)
                    found.append((file, file.relative_to(path)))
    return found


def run(args: argparse.Namespace) -> int:
    from worker.imaging import build_info, render  # imported here: loading libvips is not free

    if args.build:
        info = build_info()
        print(f"libvips {info['libvips']} ({info['binding']}); reads {' '.join(info['suffixes'])}")  # type: ignore[arg-type]
        heic = info["heic"]
        print(f"HEIC: pi-heif {heic['pi_heif']} (libheif {heic['libheif']}, {heic['hevc_decoder']})")  # type: ignore[index]
        return 0
    if not args.files:
        print("thumbx render: no PATH given", file=sys.stderr)
        return 2
    presets = _presets(args)
    limits = load_limits()
    todo = sources(args.files)
    if not todo:
        print(f"thumbx render: no files under {', '.join(map(str, args.files))}", file=sys.stderr)
        return 2
    counts = {"ok": 0, "refused": 0, "unreadable": 0}
    for path, relative in todo:
        started = time.perf_counter()
        try:
            renditions = render(path.read_bytes(), presets, limits)
        except ImageError as exc:
            counts["refused"] += 1
            print(f"{path}: refused {exc.reason}: {exc}")
            continue
        except OSError as exc:
            counts["unreadable"] += 1
            print(f"{path}: unreadable: {exc.strerror or exc}")
            continue
        folder = args.out / relative
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for rendition in renditions:
            target = folder / f"{rendition.preset.name}.{rendition.preset.extension}"
            target.write_bytes(rendition.data)
            written.append(f"{target} {rendition.width}x{rendition.height}")
        counts["ok"] += 1
        elapsed = (time.perf_counter() - started) * 1000
        print(f"{path}: ok in {elapsed:.0f} ms: {', '.join(written)}")
    summary = f"{counts['ok']} ok, {counts['refused']} refused"
    if counts["unreadable"]:
        summary += f", {counts['unreadable']} unreadable"
    print(summary)
    return 0 if counts["ok"] == len(todo) else 1


def _presets(args: argparse.Namespace) -> tuple[Preset, ...]:
    variable = "--presets" if args.presets else "THUMBX_PRESETS"
    presets = parse_presets(args.presets, variable=variable) if args.presets else load_presets()
    if not args.preset:
        return presets
    chosen = tuple(p for p in presets if p.name in set(args.preset))
    unknown = sorted(set(args.preset) - {p.name for p in chosen})
    if unknown:
        names = ", ".join(p.name for p in presets)
        raise ConfigError(f"--preset: no preset named {', '.join(unknown)} in {variable} (have: {names})")
    return chosen
