"""``thumbx healthcheck``: ask the running worker's health endpoint; exit 0 when healthy (no curl needed).

For a container HEALTHCHECK: ``thumbx healthcheck`` (liveness, ``/healthz``) or ``thumbx healthcheck
--ready`` (``/readyz``). The port and host come from THUMBX_HEALTH_PORT / THUMBX_HEALTH_HOST, as the worker
reads them, so the same environment serves both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from worker.core.environ import Reader


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("healthcheck", help="exit 0 if the local worker is healthy (or ready)")
    parser.add_argument("--ready", action="store_true", help="check /readyz instead of /healthz")
    parser.add_argument("--url", help="full URL to check (default: from THUMBX_HEALTH_HOST/PORT)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    parser.set_defaults(func=run)


def target_url(env: Mapping[str, str], *, ready: bool) -> str:
    """The worker's health URL from THUMBX_HEALTH_HOST / THUMBX_HEALTH_PORT, read as the worker reads them
    (an invalid value: ConfigError naming it, exit 2)."""
    reader = Reader(env)
    host = reader.text("THUMBX_HEALTH_HOST")
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - a bind-all address is reached via loopback
        host = "127.0.0.1"
    port = reader.port("THUMBX_HEALTH_PORT")
    if port is None:
        raise SystemExit("thumbx healthcheck: THUMBX_HEALTH_PORT=off, the worker serves no health endpoint")
    if port == 0:
        raise SystemExit("thumbx healthcheck: THUMBX_HEALTH_PORT=0 picks a free port at random; use --url")
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/{'readyz' if ready else 'healthz'}"


def run(args: argparse.Namespace) -> int:
    url = args.url or target_url(os.environ, ready=args.ready)
    if not url.startswith(("http://", "https://")):
        print(f"thumbx healthcheck: not an http(s) URL: {url}", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:  # noqa: S310 - checked above
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        print(f"thumbx healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    try:
        summary = json.dumps(json.loads(body))
    except ValueError:
        summary = body[:200].decode(errors="replace")
    print(f"{status} {summary}")
    return 0 if status == 200 else 1
