"""Optional dependencies: what each extra of ``pip install 'thumbx[...]'`` brings, and the one-line error
when a command needs one that is not installed.

The plain install (the service image, the Lambda package) carries only what ``thumbx worker`` and the
shim run. Operator commands import their extra's modules when they run, through :func:`require`, so the
service never loads them and a missing one is a :class:`~worker.core.errors.ConfigError` (exit 2, one line)
rather than a traceback at start-up.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from worker.core.errors import ConfigError

# module -> (extra, the distribution that provides it)
PROVIDED_BY: dict[str, tuple[str, str]] = {
    "tqdm": ("ops", "tqdm"),
    "aiolimiter": ("ops", "aiolimiter"),
    "moto.server": ("demo", "moto[server]"),
}


def require(module: str, needed_by: str) -> ModuleType:
    """``module``, imported; or a ConfigError saying which extra to install for ``needed_by``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, distribution = PROVIDED_BY[module]
        raise ConfigError(
            f"{needed_by} needs {distribution}, which is not installed: pip install 'thumbx[{extra}]'"
        ) from exc
