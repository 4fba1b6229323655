"""Lambda cold import: ``import lambda_shim.handler`` in fresh interpreters, wall and CPU ms, median.

    python -m bench.cold_import [--samples 15] [--tree DIR ...] [--top 12]

Each sample is a new interpreter (what a new execution environment pays) that imports the handler and
prints the import's wall time and its CPU time (``time.process_time``: steadier than wall on a shared
machine). ``--tree DIR`` adds another source tree (e.g. ``git archive`` of an older commit unpacked into
DIR) measured with the same interpreter, interleaved sample by sample with this checkout, so a busy
moment hits both alike. ``--top`` lists the slowest imports (``-X importtime``, cumulative) of one sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import REPO, median, table

MODULE = "lambda_shim.handler"
CODE = (
    "import time, json; w, c = time.perf_counter(), time.process_time(); import {m}; "
    "print(json.dumps([time.perf_counter() - w, time.process_time() - c]))"
)


def sample(tree: Path, module: str) -> tuple[float, float]:
    env = os.environ | {"PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(m=module)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return float(wall), float(cpu)


def slowest(tree: Path, module: str, top: int) -> list[tuple[str, float]]:
    env = os.environ | {"PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].rstrip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    parser.add_argument("--module", default=MODULE)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    trees = [REPO, *args.tree]
    got: dict[Path, list[tuple[float, float]]] = {t: [] for t in trees}
    for _ in range(args.samples):
        for tree in trees:
            got[tree].append(sample(tree, args.module))
    rows = [
        [
            "this checkout" if tree == REPO else str(tree),
            round(1000 * median([w for w, _ in values]), 1),
            round(1000 * min(w for w, _ in values), 1),
            round(1000 * median([c for _, c in values]), 1),
        ]
        for tree, values in got.items()
    ]
    title = f"import {args.module}: {args.samples} fresh interpreters each, interleaved"
    print(table(title, ["tree", "wall ms (median)", "wall ms (min)", "CPU ms (median)"], rows))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average: {load}")
    if args.top:
        print("\nslowest imports in this checkout (-X importtime, cumulative ms, one sample):")
        for name, ms in slowest(REPO, args.module, args.top):
            print(f"  {ms:8.1f}  {name}")


if __name__ == "__main__":
    main()
