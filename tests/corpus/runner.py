"""Render corpus files in a child process that a hostile file cannot take down with it.

Child mode (``python -m tests.corpus.runner --child OUTDIR``): caps its own address space, reads one path
per line on stdin, renders it with the production presets-like set below, writes the outputs under OUTDIR
and prints one JSON line per file. Parent mode (:func:`run_corpus`): feeds the paths, and when a file makes
the child hang (no answer within the per-file watchdog) or die (segfault, memory cap), records that file
as ``hang``/``crash`` and starts a fresh child for the rest. One child normally serves the whole list.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PRESETS = "lg:512:jpeg:q=80,sm:128:webp:q=80,sq:96x96:png:fit=cover:crop=centre"
MEMORY_CAP = 3 * 1024**3
WATCHDOG_SECONDS = 60.0


def _child(outdir: Path) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    from worker.core.errors import ImageError
    from worker.core.presets import parse_presets
    from worker.imaging import Limits, build_info, render

    presets = parse_presets(PRESETS)
    limits = Limits(timeout_seconds=30.0)
    print(json.dumps({"build": build_info()}), flush=True)
    for number, line in enumerate(sys.stdin):
        path = line.rstrip("\n")
        started = time.perf_counter()
        result: dict[str, Any] = {"path": path}
        try:
            renditions = render(Path(path).read_bytes(), presets, limits)
        except ImageError as exc:
            result.update(outcome=exc.reason, message=str(exc))
        except Exception as exc:  # an untyped escape is a defect the test reports
            result.update(outcome="untyped", message=f"{type(exc).__name__}: {exc}")
        else:
            outputs = []
            for rendition in renditions:
                target = outdir / f"{number}-{rendition.preset.name}.{rendition.preset.extension}"
                target.write_bytes(rendition.data)
                outputs.append(
                    {
                        "preset": rendition.preset.name,
                        "file": str(target),
                        "width": rendition.width,
                        "height": rendition.height,
                        "content_type": rendition.content_type,
                    }
                )
            result.update(outcome="ok", outputs=outputs)
        result["seconds"] = round(time.perf_counter() - started, 4)
        print(json.dumps(result), flush=True)
    return 0


def run_corpus(
    paths: list[str], outdir: Path, *, python: str = sys.executable, watchdog: float = WATCHDOG_SECONDS
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Render ``paths``; return (build info, {path: result}). Never raises for a bad file."""
    results: dict[str, dict[str, Any]] = {}
    build: dict[str, Any] = {}
    pending = list(paths)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    while pending:
        child = subprocess.Popen(
            [python, "-m", "tests.corpus.runner", "--child", str(outdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(child.stdout, selectors.EVENT_READ)
        try:
            first = _read_line(child, selector, watchdog)
            if first is None:
                raise RuntimeError("corpus child did not start")
            build = json.loads(first)["build"]
            while pending:
                path = pending[0]
                child.stdin.write(path + "\n")
                child.stdin.flush()
                answer = _read_line(child, selector, watchdog)
                pending.pop(0)
                if answer is None:
                    results[path] = {
                        "path": path,
                        "outcome": "hang" if child.poll() is None else "crash",
                        "message": f"exit {child.poll()}",
                    }
                    break
                results[path] = json.loads(answer)
        finally:
            selector.close()
            child.kill()
            child.wait(timeout=10)
    return build, results


def _read_line(child: subprocess.Popen[str], selector: selectors.BaseSelector, timeout: float) -> str | None:
    assert child.stdout is not None
    if not selector.select(timeout):
        return None
    line = child.stdout.readline()
    return line or None


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(Path(sys.argv[2])))
    # ad-hoc: python -m tests.corpus.runner CORPUS_DIR  -> summary per folder and outcome
    import collections
    import tempfile

    root = Path(sys.argv[1])
    files = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix not in (".md", ".tsv"))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        info, found = run_corpus(files, Path(tmp))
        elapsed = time.perf_counter() - started
    counts = collections.Counter(
        (str(Path(p).parent.relative_to(root)), r["outcome"]) for p, r in found.items()
    )
    print(json.dumps({k: v for k, v in info.items() if k != "suffixes"}))
    for (folder, outcome), count in sorted(counts.items()):
        print(f"{folder:32} {outcome:20} {count}")
    slow = sorted(found.values(), key=lambda r: -r.get("seconds", 0))[:8]
    for r in slow:
        print(f"slow {r.get('seconds')} {Path(r['path']).relative_to(root)} {r['outcome']}")
    print(f"total {elapsed:.1f} s for {len(found)} files")
