"""Shared bench plumbing: a moto server in its own process, provisioning, the photo corpus, statistics.

The emulator runs in a separate process so the worker's CPU time (``time.process_time`` of this process)
is the worker's alone, and the emulator's own CPU can be read from ``/proc`` to say what bounds a run.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results.json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def shared_dir() -> Path | None:
    for candidate in (os.environ.get("THUMBX_SHARED"), REPO.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "corpus").is_dir():
            return Path(candidate)
    return None


def corpus_photos(limit: int | None = None) -> list[tuple[str, bytes]]:
    """(name, bytes) of the real camera JPEGs in ../shared/corpus/photos/jpeg, sorted by name."""
    shared = shared_dir()
    if shared is None:
        raise SystemExit("bench: ../shared/corpus/photos/jpeg not found (set THUMBX_SHARED)")
    folder = shared / "corpus" / "photos" / "jpeg"
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".jpg", ".jpeg"))  # one is .JPG
    return [(f.name, f.read_bytes()) for f in files[:limit]]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples it is an observed value)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return float(ordered[min(rank, len(ordered)) - 1])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu_s(pid: int) -> float:
    """utime + stime of another process (the emulator), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoProcess:
    endpoint: str
    pid: int


@contextlib.contextmanager
def moto_process(timeout: float = 30.0) -> Iterator[MotoProcess]:
    """``moto_server`` on 127.0.0.1 in a child process; stopped (by its pid) on exit."""
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("bench: moto_server did not start") from None
                time.sleep(0.2)
        yield MotoProcess(endpoint, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def quiet_json_logging() -> None:
    """The worker's real JSON log pipeline (its CPU cost counts), written to /dev/null."""
    import structlog

    from worker.observability.telemetry import configure_logging

    configure_logging("json", "info")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=open(os.devnull, "w")))  # noqa: SIM115


def fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if not isinstance(value, float):
        return str(value)
    if value != value:  # nan
        return "-"
    return str(value) if round(value, 3) == value else f"{value:.{digits}f}"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[fmt(c) if not isinstance(c, str) else c for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells[1:]]
    return "\n".join(lines)
