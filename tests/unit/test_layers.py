"""The layering of worker/, read from the source (every import: top level, in functions, under TYPE_CHECKING).

core is pure vocabulary: it imports no AWS SDK and nothing of thumbx but core. imaging imports no AWS SDK
and nothing above it. aws (the SDK boundary) imports only core and observability. runtime never reaches
into the operator tooling, the demo or the CLI. No module of
the shipped packages is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "worker"
AWS_SDK = ("aioboto3", "aiobotocore", "botocore", "boto3")
LAYERS = ("core", "imaging", "aws", "runtime", "observability", "ops", "demo", "cli")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": (*AWS_SDK, *(f"worker.{layer}" for layer in LAYERS if layer != "core")),
    "imaging": (
        *AWS_SDK,
        *(f"worker.{layer}" for layer in ("aws", "runtime", "observability", "ops", "demo", "cli")),
    ),
    "aws": tuple(f"worker.{layer}" for layer in ("imaging", "runtime", "ops", "demo", "cli")),
    "runtime": ("worker.ops", "worker.demo", "worker.cli"),
}
MAX_LINES = 400


def imported(source: str, package: str) -> set[str]:
    """Every module ``source`` imports (relative imports resolved against ``package``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            if module == "worker":  # `from worker import ops`: the subpackage is in the names
                names.update(f"worker.{alias.name}" for alias in node.names)
    return names


def violations(layer: str, source: str, package: str) -> list[str]:
    def within(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(f"{prefix}.")

    return sorted(
        name
        for name in imported(source, package)
        if any(within(name, bad) for bad in FORBIDDEN.get(layer, ()))
    )


def _modules() -> list[Path]:
    return sorted(WORKER.rglob("*.py"))


def test_every_module_lives_in_a_layer() -> None:
    # worker.testing: the test doubles shipped with the package, faking several layers at once
    top_level = {"__init__.py", "__main__.py", "testing.py"}
    flat = sorted(p.name for p in WORKER.glob("*.py") if p.name not in top_level)
    assert flat == []
    assert sorted(p.name for p in WORKER.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(
        LAYERS
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(WORKER)))
def test_imports_respect_the_layers(path: Path) -> None:
    relative = path.relative_to(REPO).with_suffix("")
    package = ".".join(relative.parts[:-1])  # a module's package; an __init__'s own package
    layer = relative.parts[1] if len(relative.parts) > 2 else ""
    assert violations(layer, path.read_text(encoding="utf-8"), package) == []


@pytest.mark.parametrize(
    ("layer", "source", "forbidden"),
    [
        ("core", "import boto3\n", ["boto3"]),
        ("core", "from botocore.exceptions import ClientError\n", ["botocore.exceptions"]),
        ("core", "from worker.runtime.pipeline import Outcome\n", ["worker.runtime.pipeline"]),
        ("core", "if TYPE_CHECKING:\n    from worker.aws.s3 import S3Store\n", ["worker.aws.s3"]),
        ("core", "def later():\n    import worker.cli.main\n", ["worker.cli.main"]),
        ("core", "from ..ops import backfill\n", ["worker.ops"]),
        ("core", "from .. import demo\n", ["worker.demo"]),
        ("core", "from worker import demo, core\n", ["worker.demo"]),
        ("imaging", "import aioboto3\n", ["aioboto3"]),
        ("imaging", "from worker.runtime import batch\n", ["worker.runtime"]),
        ("aws", "from worker.runtime.dead_letter import final_fate\n", ["worker.runtime.dead_letter"]),
        ("runtime", "from worker.ops.backfill import backfill\n", ["worker.ops.backfill"]),
        ("runtime", "import worker.demo.tour as demo\n", ["worker.demo.tour"]),
        ("runtime", "from worker.cli import main\n", ["worker.cli"]),
    ],
)  # fmt: skip
def test_a_forbidden_import_is_caught(layer: str, source: str, forbidden: list[str]) -> None:
    assert violations(layer, source, f"worker.{layer}") == forbidden


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("core", "from worker.core.errors import ConfigError\nfrom . import keys\n"),
        ("imaging", "import pyvips\nfrom worker.core.presets import Preset\n"),
        (
            "runtime",
            "import aioboto3\nfrom worker.aws.sqs import Message\nfrom worker.observability import emf\n",
        ),
        ("core", "import worker_extra\nfrom workers import x\n"),  # only worker's own packages count
    ],
)
def test_an_allowed_import_passes(layer: str, source: str) -> None:
    assert violations(layer, source, f"worker.{layer}") == []


@pytest.mark.parametrize("root", ["worker", "lambda_shim"])
def test_no_module_is_over_400_lines(root: str) -> None:
    lengths = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in (REPO / root).rglob("*.py")
    }
    assert lengths  # the glob found the package
    assert {path: n for path, n in lengths.items() if n > MAX_LINES} == {}
