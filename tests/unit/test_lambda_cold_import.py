"""A cold Lambda environment imports only what an invocation can use (issue 14: cold import time)."""

from __future__ import annotations

import json
import subprocess
import sys

# What only the ECS service runs: the consumer loop, the health server (aiohttp's web server and
# prometheus_client). The EMF reporter, which the Lambda uses too, is imported by its first invocation.
ECS_ONLY = (
    "worker.runtime.consumer",
    "worker.observability.health",
    "worker.observability.emf",
    "aiohttp.web",
    "prometheus_client",
)


def imported_by(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_the_lambda_handler_leaves_the_ecs_only_modules_unimported() -> None:
    loaded = imported_by("lambda_shim.handler")
    assert "worker.runtime.service" in loaded  # the shared wiring is there (the check below is not vacuous)
    assert sorted(m for m in ECS_ONLY if m in loaded) == []
