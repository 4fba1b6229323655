"""``make bench``: every benchmark in one run, each in its own process, folded into bench/results.json.

Parts: imaging (issue 3's bench/bench_imaging.py, when present), peers (bench_peers: the core against
sharp, Pillow-SIMD and stock Pillow on the same job, CPU per image; also `make bench-peers`), Lambda cold
start (issue 5's bench/bench_lambda.py, when present), pipeline overhead / end to end / efficiency / latency
(bench_pipeline), memory soak, peak and max-size downloads against
moto (bench_memory). Each part prints its own table; a summary against
the targets closes.
Benchmarks are never tests: nothing here fails a build on a missed target.

Usage: python -m bench.run [--quick] [--only imaging,peers,lambda,pipeline,memory]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, table

PARTS = ("imaging", "peers", "lambda", "pipeline", "memory")


def run_part(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Run one benchmark process, streaming its output; (ok, last lines of stderr when it failed)."""
    started = time.monotonic()
    shown = " ".join(f"{k}={v} " for k, v in (env or {}).items())
    print(f"\n$ {shown}{' '.join(argv)}", flush=True)
    try:
        proc = subprocess.run(
            argv,
            cwd=REPO,
            timeout=timeout,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env=os.environ | (env or {}),
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    print(f"({time.monotonic() - started:.0f} s)", flush=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        print(tail, file=sys.stderr)
        return False, f"exit {proc.returncode}: {tail}"
    return True, ""


def foreign(script: str, result_file: str, extra: list[str], timeout: float) -> dict[str, Any]:
    """Another engineer's benchmark: run it if it exists and fold in the JSON it writes."""
    path = REPO / "bench" / script
    if not path.exists():
        return {"status": "not available", "detail": f"bench/{script} is not in this checkout"}
    out = REPO / "bench" / result_file
    before = out.stat().st_mtime if out.exists() else None
    ok, detail = run_part([sys.executable, str(path), *extra], timeout)
    if not ok:
        return {"status": "failed", "detail": detail}
    if not out.exists() or out.stat().st_mtime == before:
        return {"status": "not available", "detail": f"bench/{script} did not write bench/{result_file}"}
    return {"status": "ok", "results": json.loads(out.read_text())}


def own(module: str, args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="thumbx-bench-") as tmp:
        out = Path(tmp, "out.json")
        ok, detail = run_part([sys.executable, "-m", module, *args, "--json", str(out)], timeout, env)
        if not ok or not out.exists():
            return {"status": "failed", "detail": detail}
        return {"status": "ok", "results": json.loads(out.read_text())}


def stamp(quick: bool, part: dict[str, Any]) -> dict[str, Any]:
    return part | {"when": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick}


def summary(results: dict[str, Any]) -> str:
    rows: list[list[object]] = []

    def add(name: str, value: object, target: str, met: bool | None) -> None:
        rows.append([name, value, target, "-" if met is None else ("yes" if met else "NO")])

    imaging = results.get("imaging", {})
    if imaging.get("status") == "ok":
        r = imaging["results"]
        ratio = next((v for k, v in r.items() if "core_vs_pillow" in k), None)
        add("imaging core vs Pillow draft, bicubic (img/s)", ratio, "", None)
    else:
        add("imaging", imaging.get("status", "-"), "", None)
    peers = results.get("peers", {})
    if peers.get("status") == "ok":
        r = peers["results"]
        for key, row in sorted(r["contenders"].items(), key=lambda kv: kv[1]["cpu_s"]):
            if key != "core":
                add(f"  {key}: CPU / core's", row["ratio_vs_core"], "", None)
        for key, why in r["skipped"].items():
            add(f"  {key}", f"skipped: {why[:60]}", "", None)
        if "core_vs_fastest_peer_cpu_ratio" in r:
            add(f"core CPU vs fastest peer ({r['fastest_peer']})", r["core_vs_fastest_peer_cpu_ratio"],
                "<= 0.87x", r["target_met"])  # fmt: skip
        if "core_vs_sharp_one_decode_cpu_ratio" in r:
            ratio = r["core_vs_sharp_one_decode_cpu_ratio"]
            add("core CPU vs sharp one-decode cascade", ratio, "<= 0.87x", ratio <= 0.87)
    else:
        add("peers (make bench-peers)", peers.get("status", "-"), "", None)
    pipe = results.get("pipeline", {})
    if pipe.get("status") == "ok":
        ov, e2e, lat = (pipe["results"].get(k, {}) for k in ("pipeline_overhead", "end_to_end", "latency"))
        if ov:
            add("worker no-op vs plain loop (rate)", ov["rate_ratio_default_vs_plain"], ">= 0.9x",
                ov["rate_ratio_default_vs_plain"] >= 0.9)  # fmt: skip
            add("worker overhead CPU ms/msg", ov["worker_overhead_cpu_ms_per_msg"], "<= 2",
                ov["worker_overhead_cpu_ms_per_msg"] <= 2)  # fmt: skip
            old = ov["variants"].get("worker no-op c=4")
            plain = ov["variants"][ov["baseline"]]
            if old and ov["worker_default"] != "worker no-op c=4":
                ratio = round(old["msgs_per_s"] / plain["msgs_per_s"], 2)
                extra = round(old["cpu_ms_per_msg"] - plain["cpu_ms_per_msg"], 3)
                add("  before tuning (c=4): rate / overhead CPU ms", f"{ratio}x / {extra}", "", None)
        if e2e:
            add("end to end vs imaging core", e2e["ratio"], ">= 0.8x", e2e["ratio"] >= 0.8)
        eff = pipe["results"].get("efficiency", {})
        if eff:
            worst = max(v["worker_vs_core_cpu"] for v in eff["by_render_threads"].values())
            add("worker process CPU/image vs core's", worst, "<= 1.15x", worst <= 1.15)
            add("2 vs 1 render threads: worker images/s", eff["worker_scaling"], ">= 1.8x",
                eff["worker_scaling"] >= 1.8)  # fmt: skip
        if lat:
            add("latency p50 / p95 ms", f"{lat['p50_ms']} / {lat['p95_ms']}", "", None)
    else:
        add("pipeline", pipe.get("status", "-"), "", None)
    soak = results.get("memory_soak", {})
    if soak.get("status") == "ok":
        r = soak["results"]
        add(f"RSS growth first vs last {r['window']} of {r['renders']}", f"{r['rss_growth_pct']}%", "<= 10%",
            r["rss_growth_pct"] <= 10)  # fmt: skip
        add("soak peak RSS MB", r["peak_rss_mb"], "", None)
    before = results.get("memory_soak_glibc_arenas", {})
    if before.get("status") == "ok":
        r = before["results"]
        growth = r["rss_growth_pct"]
        label = f"  before tuning (glibc's own arenas, {r['renders']} renders): growth"
        add(label, f"{growth}%", "<= 10%", growth <= 10)
        add("  before tuning (glibc's own arenas): peak RSS MB", r["peak_rss_mb"], "", None)
    peak = results.get("memory_peak", {})
    if peak.get("status") == "ok":
        r = peak["results"]
        add(
            f"peak RSS MB, {len(r['photos'])} largest photos, c={r['concurrency']}",
            r["peak_rss_mb"],
            "",
            None,
        )
    dl = results.get("memory_downloads", {})
    if dl.get("status") == "ok":
        r = dl["results"]
        add(
            f"peak RSS MB, {r['concurrency']} max-size ({r['max_bytes_mb']} MiB) downloads + renders",
            r["max_size"]["peak_rss_mb"],
            f"<= {r['memory_budget_mb']} budget + baseline {r['max_size']['rss_before_mb']}",
            r["max_size"]["peak_rss_mb"] <= r["memory_budget_mb"] + r["max_size"]["rss_before_mb"],
        )
        add(f"peak RSS MB, {r['concurrency']} oversized refused", r["oversized"]["peak_rss_mb"], "", None)
    lam = results.get("lambda", {})
    if lam.get("status") == "ok":
        imp = lam["results"].get("import", {}).get("lambda_shim.handler", {}).get("median_ms")
        add("Lambda cold import ms (median)", imp, "", None)
    else:
        add("Lambda", lam.get("status", "-"), "", None)
    return table("Summary (this run, this machine)", ["measure", "value", "target", "met"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="scaled down: about a minute or two")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated subset of {PARTS}; the other parts' figures in bench/results.json are kept",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    quick = ["--quick"] if args.quick else []
    results: dict[str, Any] = {}
    if parts != set(PARTS) and RESULTS.exists():
        results = json.loads(RESULTS.read_text())  # a partial run updates its parts, keeps the others
    results |= {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    if "imaging" in parts:
        results["imaging"] = stamp(
            args.quick,
            foreign(
                "bench_imaging.py", "results-imaging.json", ["--rounds", "1" if args.quick else "3"], 900
            ),
        )
    if "peers" in parts:
        runs = ["--quick"] if args.quick else ["--runs", "5"]
        results["peers"] = stamp(args.quick, own("bench.bench_peers", runs, 2400))
    if "lambda" in parts:
        results["lambda"] = stamp(
            args.quick,
            foreign("bench_lambda.py", "results-lambda.json", ["--samples", "3" if args.quick else "5"], 600),
        )
    if "pipeline" in parts:
        results["pipeline"] = stamp(args.quick, own("bench.bench_pipeline", quick, 1200))
    if "memory" in parts:
        renders = "300" if args.quick else "2000"
        soak = ["soak", "--renders", renders]
        results["memory_soak"] = stamp(args.quick, own("bench.bench_memory", soak, 1800))
        # `thumbx worker` caps glibc's malloc arenas (worker/observability/malloc.py); the same soak
        # without the cap, in
        # the same run, is the "before" of that tuning (500 renders in a full run: the comparison is the level
        # RSS settles at, and a second 2,000-render soak would double the run's length).
        before = ["soak", "--renders", "300" if args.quick else "500", "--malloc-arenas", "0"]
        results["memory_soak_glibc_arenas"] = stamp(args.quick, own("bench.bench_memory", before, 1800))
        results["memory_peak"] = stamp(args.quick, own("bench.bench_memory", ["peak", "--largest", "4"], 600))
        results["memory_downloads"] = stamp(args.quick, own("bench.bench_memory", ["downloads"], 600))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(summary(results))
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
