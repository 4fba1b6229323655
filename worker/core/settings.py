"""The one table of ``THUMBX_*`` settings: name, type, default, bounds, one-line doc, example (pure).

:mod:`worker.core.config` builds the worker's :class:`~worker.core.config.Settings` by reading each
value through :class:`worker.core.environ.Reader`, which validates it where it is read. The configuration
table of ``docs/configuration.md`` and ``thumbx worker --help`` are rendered from :data:`SETTINGS`
(``python -m worker.core.settings`` rewrites the block, ``--check`` reports drift).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from worker.core.limits import Limits
from worker.core.presets import DEFAULT_PRESETS

Kind = Literal["text", "integer", "choice", "url", "queue_url", "bucket", "role_arn", "prefix", "presets",
               "formats", "port"]  # fmt: skip
Scope = Literal["all", "worker", "lambda"]

MAX_SESSION_SECONDS = 3600  # role chaining (ECS task role / Lambda role -> ThumbXRole) caps sessions at 1 h
MIN_SESSION_SECONDS = 900  # STS minimum
_LIMITS = Limits()
_EXAMPLE_QUEUE = "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs"


@dataclass(frozen=True)
class Setting:
    """One ``THUMBX_*`` variable. ``default`` is the raw value used when unset (None: unset means "off"
    or "not given"); ``shown_default`` is how the docs and ``--help`` describe a computed default."""

    name: str
    kind: Kind
    doc: str
    example: str
    default: str | None = None
    required: bool = False
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    shown_default: str | None = None
    needs: str | None = None  # another variable without which this one has no effect
    scope: Scope = "all"
    renamed: tuple[tuple[str, str], ...] = ()  # (old value, current value): accepted with a warning

    @property
    def type_text(self) -> str:
        if self.kind == "integer" and self.high is not None and self.high >= 2**40:
            return f"integer ≥ {self.low}"
        if self.kind == "integer":
            return f"integer {self.low}..{self.high}"
        if self.kind == "port":
            return f"port {self.low}..{self.high} or `off`"
        if self.kind == "choice":
            return " \\| ".join(f"`{c}`" for c in self.choices)
        return {
            "text": "text",
            "url": "http(s) URL",
            "queue_url": "SQS queue URL",
            "bucket": "S3 bucket name",
            "role_arn": "IAM role ARN",
            "prefix": "key prefix ending in `/`",
            "presets": "preset spec",
            "formats": "comma-separated formats",
        }[self.kind]

    @property
    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.required:
            return "required"
        return "unset" if self.default is None else self.default


SETTINGS: tuple[Setting, ...] = (
    # --- where the work comes from and goes to
    Setting("THUMBX_QUEUE_URL", "queue_url", "SQS queue receiving the bucket's `ObjectCreated` notifications",
            _EXAMPLE_QUEUE, required=True),
    Setting("THUMBX_BUCKET", "bucket", "the bucket in B; events for other buckets are ignored",
            "thumbx-images-b", required=True),
    Setting("THUMBX_DLQ_URL", "queue_url",
            "where permanent failures go at once, with the reason as message attributes",
            "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs-dlq"),
    Setting("THUMBX_REGION", "text", "region for every client", "eu-west-1", default="us-east-1",
            shown_default="`AWS_REGION`, then `AWS_DEFAULT_REGION`, else `us-east-1`"),
    Setting("THUMBX_ENDPOINT_URL", "url", "an emulator's endpoint (moto, LocalStack); queue URLs should use "
            "its host", "http://127.0.0.1:4566"),
    # --- credentials
    Setting("THUMBX_ROLE_ARN", "role_arn", "ThumbXRole in B; unset means \"use the base credentials\"",
            "arn:aws:iam::222222222222:role/ThumbXRole"),
    Setting("THUMBX_EXTERNAL_ID", "text", "passed as `ExternalId` when assuming the role", "thumbx-7f3a",
            needs="THUMBX_ROLE_ARN"),
    Setting("THUMBX_SESSION_NAME", "text", "`RoleSessionName` (in B's CloudTrail; must match `thumbx-*`)",
            "thumbx-worker-blue", default="thumbx-worker", needs="THUMBX_ROLE_ARN",
            shown_default="`thumbx-worker-<ECS task id>` on ECS, `thumbx-lambda-<environment id>` on Lambda, "
            "else `thumbx-worker`"),
    Setting("THUMBX_SOURCE_IDENTITY", "text", "`SourceIdentity` set on the session (CloudTrail attribution)",
            "thumbx-worker", shown_default="session name", needs="THUMBX_ROLE_ARN"),
    Setting("THUMBX_SESSION_SECONDS", "integer", "`DurationSeconds` (role chaining caps sessions at 1 h)",
            "3600", default=str(MAX_SESSION_SECONDS), low=MIN_SESSION_SECONDS, high=MAX_SESSION_SECONDS,
            needs="THUMBX_ROLE_ARN"),
    Setting("THUMBX_QUEUE_CREDENTIALS", "choice", "where the queue lives, as the templates' "
            "`QueuePlacement`: `storage` (B, read with the assumed role) or `compute` (A, the base "
            "credentials); `role` / `base` are deprecated spellings", "compute", default="storage",
            choices=("storage", "compute"), renamed=(("role", "storage"), ("base", "compute")),
            shown_default="`storage` (`compute` without `THUMBX_ROLE_ARN`)"),
    # --- what to render
    Setting("THUMBX_INPUT_PREFIX", "prefix", "keys that are work; must not overlap the output prefix",
            "uploads/", default="input/"),
    Setting("THUMBX_OUTPUT_PREFIX", "prefix", "where thumbnails go (the loop guard refuses it as input)",
            "thumbs/", default="thumbnails/"),
    Setting("THUMBX_PRESETS", "presets", "`name:size:format[:key=value...]`, comma-separated "
            "(docs/imaging.md, Presets)",
            "sm:128:webp,lg:1024:jpeg:q=85", default=DEFAULT_PRESETS),
    Setting("THUMBX_MANIFEST", "choice", "`on`: write `<output>/manifest.json` after the renditions "
            "(docs/manifest.md)", "off", default="on", choices=("on", "off")),
    Setting("THUMBX_ALLOWED_FORMATS", "formats", "input allow-list; AVIF and HEIC are told apart by codec",
            "jpeg,png,webp", default=",".join(sorted(_LIMITS.formats))),
    Setting("THUMBX_MAX_BYTES", "integer",
            "source size in bytes, checked before download (at most half the memory budget)", "10485760",
            default=str(_LIMITS.max_bytes), low=1, high=2**40),
    Setting("THUMBX_MAX_PIXELS", "integer", "width × height × frames decoded", "20000000",
            default=str(_LIMITS.max_pixels), low=1, high=2**40),
    Setting("THUMBX_MAX_FRAMES", "integer", "frames of an animation (`anim=1` presets only)", "24",
            default=str(_LIMITS.max_frames), low=1, high=10_000),
    Setting("THUMBX_MAX_PROGRESSIVE_PIXELS", "integer", "progressive JPEGs cannot stream (~3.4 B/pixel)",
            "8000000", default=str(_LIMITS.max_progressive_pixels), low=0, high=2**40),
    Setting("THUMBX_RENDER_MEMORY_MB", "integer", "memory budget shared by concurrent downloads and renders",
            "512",
            default=str(_LIMITS.memory_budget_bytes // 2**20), low=64, high=2**20),
    Setting("THUMBX_RENDER_TIMEOUT", "integer", "seconds per image, all presets (stops libvips itself)", "10",
            default=str(int(_LIMITS.timeout_seconds)), low=1, high=3600),
    # --- how fast
    Setting("THUMBX_CONCURRENCY", "integer", "messages in flight (renders are bounded by render threads)",
            "10", default="10", low=1, high=256),
    Setting("THUMBX_RENDER_THREADS", "integer", "render thread pool (pyvips never runs on the event loop)",
            "2", default="2", low=1, high=64, shown_default="CPU count"),
    Setting("THUMBX_WAIT_SECONDS", "integer", "SQS long-poll wait", "20", default="20", low=0, high=20,
            scope="worker"),
    Setting("THUMBX_VISIBILITY_TIMEOUT", "integer", "the queue's visibility timeout, seconds", "120",
            default="60", low=5, high=43200),
    # --- reliability
    Setting("THUMBX_SHUTDOWN_SECONDS", "integer", "on SIGTERM, in-flight work may finish for this long", "25",
            default="25", low=1, high=3600, scope="worker"),
    Setting("THUMBX_RETRY_BASE_SECONDS", "integer", "transient failures back off from this, doubling", "10",
            default="10", low=0, high=900),
    Setting("THUMBX_MAX_EXTEND_SECONDS", "integer", "the heartbeat stops extending a message after this",
            "3600", default="3600", low=0, high=43200, scope="worker"),
    Setting("THUMBX_HEALTH_HOST", "text", "address of `/healthz`, `/readyz`, `/metrics`", "10.0.1.23",
            default="127.0.0.1", scope="worker"),
    Setting("THUMBX_HEALTH_PORT", "port", "port of the health server (`0`: any free port; `off`: none)",
            "8080", default="8080", low=0, high=65535, scope="worker"),
    Setting("THUMBX_EMF_SECONDS", "integer", "CloudWatch EMF metrics log line every N seconds (`0`: off)",
            "60", default="60", low=0, high=86400, scope="worker"),
    Setting("THUMBX_LAMBDA_SAFETY_MS", "integer", "a record is not started when less than this remains",
            "10000", default="10000", low=0, high=900_000, scope="lambda"),
    # --- logs
    Setting("THUMBX_LOG_FORMAT", "choice", "`auto`: JSON lines when stderr is not a terminal", "json",
            default="auto", choices=("auto", "json", "console")),
    Setting("THUMBX_LOG_LEVEL", "choice", "least severe level logged", "debug", default="info",
            choices=("debug", "info", "warning", "error")),
)  # fmt: skip
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# THUMBX_* names the tests, benchmarks and containers read; not settings, but not typos either.
TOOLING_NAMES = frozenset({
    "THUMBX_SHARED", "THUMBX_IMAGE", "THUMBX_CACHE", "THUMBX_LOCALSTACK_PORT", "THUMBX_LOCALSTACK_PYTHON",
    "THUMBX_LOCALSTACK_VENV", "THUMBX_DOCKER_FRESH", "THUMBX_CONTAINER_TESTS", "THUMBX_CONTAINER_CACHE",
    "THUMBX_TEST_RENDER_DELAYS", "THUMBX_BENCH_VIPS_CACHE",
})  # fmt: skip

# --- rendering the table: docs/configuration.md block and --help epilog

BEGIN = "<!-- BEGIN GENERATED settings: python -m worker.core.settings -->"
END = "<!-- END GENERATED settings -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_SCOPE_NOTE = {"all": "", "worker": " (service only)", "lambda": " (Lambda only)"}


def markdown_table(settings: Sequence[Setting] = SETTINGS) -> str:
    rows = ["| variable | type | default | meaning | example |", "|---|---|---|---|---|"]
    for s in settings:
        default = s.default_text if s.shown_default or s.default is None else f"`{s.default}`"
        rows.append(
            f"| `{s.name}` | {s.type_text} | {default} | {s.doc}{_SCOPE_NOTE[s.scope]} | `{s.example}` |"
        )
    return "\n".join(rows)


def help_text(scope: Scope = "worker", names: Sequence[str] | None = None) -> str:
    """Plain-text list for ``--help``: every variable of ``scope`` (or only ``names``) with its default and
    meaning."""
    lines = ["environment variables (a missing or invalid one exits 2 with one line naming it):"]
    for s in SETTINGS:
        if s.scope not in ("all", scope) or (names is not None and s.name not in names):
            continue
        default = _plain(s.default_text)
        lines.append(f"  {s.name:<30} default: {default}")
        lines.append(f"  {'':<30} {_plain(s.doc)}")
    return "\n".join(lines)


def _plain(text: str) -> str:
    return text.replace("`", "").replace("\\|", "|")


def render_doc(text: str) -> str:
    """``text`` with the block between BEGIN and END replaced by the current table."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{markdown_table()}\n{text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.core.settings",
        description="regenerate the configuration table of docs/configuration.md from the settings table",
    )
    parser.add_argument("--check", action="store_true", help="report drift; write nothing")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to update")
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    rendered = render_doc(text)
    if rendered == text:
        return 0
    if args.check:
        diff = difflib.unified_diff(
            text.splitlines(), rendered.splitlines(), str(args.doc.name), "rendered", lineterm=""
        )
        print("\n".join(diff))
        print(
            f"{args.doc}: configuration table is stale; run: python -m worker.core.settings", file=sys.stderr
        )
        return 1
    args.doc.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
