"""Reading ``THUMBX_*`` from an environment: each value validated where it is read, warnings worth a word.

:class:`Reader` reads a setting of :data:`worker.core.settings.SETTINGS`: a missing or invalid value raises
:class:`~worker.core.errors.ConfigError` with one line naming the variable and showing a valid example
(:func:`with_example`). :func:`check_queue_host` refuses a queue URL that cannot be meant;
:func:`warnings` lists what does not stop a start (unknown names, deprecated values, a queue host off the
endpoint), printed by ``thumbx`` and logged by the Lambda shim.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from worker.core.errors import ConfigError
from worker.core.presets import parse_presets
from worker.core.settings import BY_NAME, SETTINGS, TOOLING_NAMES, Setting

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,128}$")
_QUEUE_PATH = re.compile(r"^(?:/queue/[a-z0-9-]+)?/\d{12}/[\w-]{1,80}(?:\.fifo)?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_AWS_HOST = re.compile(r"(^|\.)(amazonaws\.com|amazonaws\.com\.cn|api\.aws)$")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _problem(setting: Setting, value: str) -> str | None:
    """Why ``value`` is not valid for ``setting`` (shape only), or None."""
    kind = setting.kind
    if kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{value!r} is not an http:// or https:// URL"
    elif kind == "queue_url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or not _QUEUE_PATH.match(parts.path):
            return f"{value!r} is not an SQS queue URL (https://<host>/<12-digit account>/<queue name>)"
    elif kind == "bucket":
        return _bucket_problem(value)
    elif kind == "role_arn" and not _ROLE_ARN.match(value):
        return f"{value!r} is not an IAM role ARN"
    elif kind == "prefix" and not value.endswith("/"):
        return f"{value!r} must end with '/'"
    return None


def _bucket_problem(name: str) -> str | None:
    if not _BUCKET.match(name):
        return f"{name!r} is not a bucket name (3-63 lowercase letters, digits, '.' and '-')"
    if ".." in name or ".-" in name or "-." in name:
        return f"{name!r} is not a bucket name (no '..', '.-' or '-.')"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return f"{name!r} is not a bucket name (it is formatted as an IP address)"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return f"{name!r} is not a bucket name (reserved prefix or suffix)"
    return None


def with_example(setting: Setting, message: str) -> ConfigError:
    """``message`` (which starts with the name) plus one example of a valid value."""
    return ConfigError(f"{message}; e.g. {setting.name}={setting.example}")


class Reader:
    """Reads settings of :data:`SETTINGS` from an environment, validating each where it is read.

    Unset (or, for a setting without a default, empty) means the default; a setting with a default that is
    set but empty is refused rather than silently defaulted.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str, *, required: bool | None = None) -> str | None:
        setting = BY_NAME[name]
        required = setting.required if required is None else required
        raw = self.env.get(name)
        value = None if raw is None else raw.strip()
        if value == "":
            if required:
                raise with_example(setting, f"{name}: required but empty")
            if setting.default is not None:
                raise with_example(setting, f"{name}: set but empty (unset it for the default)")
            return None  # optional with no default: empty is the same as unset (templates pass "")
        if value is None:
            if required:
                raise with_example(setting, f"{name}: required but not set")
            return None
        if setting.needs and not self.env.get(setting.needs, "").strip():
            raise with_example(BY_NAME[setting.needs], f"{name}: has no effect without {setting.needs}")
        return value

    def optional(self, name: str, *, required: bool | None = None) -> str | None:
        """The validated value, or None when unset; ``required`` overrides the table (a command that
        needs only some of the worker's settings)."""
        value = self._raw(name, required=required)
        if value is not None:
            self._check(BY_NAME[name], value)
        return value

    def given(self, name: str) -> bool:
        """Whether ``name`` is set to something (its value unchecked): a computed default applies only
        when the operator left it unset."""
        return bool(self.env.get(BY_NAME[name].name, "").strip())

    def text(self, name: str, default: str | None = None) -> str:
        """The value, or ``default`` (else the table's default) when unset."""
        value = self.optional(name)
        if value is not None:
            return value
        fallback = default if default is not None else BY_NAME[name].default
        if fallback is None:
            raise KeyError(name)  # a programming error: such a setting must be read with optional()
        return fallback

    def required(self, name: str) -> str:
        return self.text(name)

    def integer(self, name: str, default: int | None = None) -> int:
        setting = BY_NAME[name]
        raw = self._raw(name)
        if raw is None:
            return int(setting.default or 0) if default is None else default
        try:
            value = int(raw)
        except ValueError:
            raise with_example(setting, f"{name}: {raw!r} is not a whole number") from None
        if setting.low is not None and setting.high is not None and not setting.low <= value <= setting.high:
            raise with_example(setting, f"{name}: {value} is outside {setting.low}..{setting.high}")
        return value

    def choice(self, name: str) -> str:
        setting = BY_NAME[name]
        given = self.text(name).lower()
        value = dict(setting.renamed).get(given, given)
        if value not in setting.choices:
            raise with_example(setting, f"{name}: {value!r} is not one of {', '.join(setting.choices)}")
        return value

    def port(self, name: str) -> int | None:
        raw = self._raw(name)
        if raw is not None and raw.lower() == "off":
            return None
        return self.integer(name)

    def _check(self, setting: Setting, value: str) -> None:
        problem = _problem(setting, value)
        if problem:
            raise with_example(setting, f"{setting.name}: {problem}")
        if setting.kind == "presets":
            try:
                parse_presets(value, variable=setting.name)
            except ConfigError as exc:
                raise with_example(setting, str(exc)) from None


def check_queue_host(name: str, queue_url: str, endpoint_url: str | None) -> None:
    """Without THUMBX_ENDPOINT_URL the SQS client talks to AWS: a queue URL elsewhere cannot be meant."""
    host = (urlsplit(queue_url).hostname or "").lower()
    if endpoint_url is None and not _AWS_HOST.search(host):
        raise ConfigError(
            f"{name}: host {host!r} is not AWS and THUMBX_ENDPOINT_URL is unset (requests would go to "
            f"AWS); e.g. THUMBX_ENDPOINT_URL={_origin(queue_url)}"
        )


def queue_host_warning(name: str, queue_url: str, endpoint_url: str | None) -> str | None:
    """A queue URL on another host than THUMBX_ENDPOINT_URL: the requests go to the endpoint. Legitimate
    behind a proxy or a VPC endpoint, a mistake otherwise: flagged, not refused."""
    if endpoint_url is None or _netloc(queue_url) == _netloc(endpoint_url):
        return None
    queue, endpoint = urlsplit(queue_url), urlsplit(endpoint_url)
    return (
        f"{name}: host {queue.netloc!r} differs from THUMBX_ENDPOINT_URL's {endpoint.netloc!r}; requests go "
        f"to the endpoint (if not meant: {name}={_origin(endpoint_url)}{queue.path})"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _netloc(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ("loopback" if host in _LOOPBACK else host, port)


def with_flag(message: str, flags: Mapping[str, str]) -> str:
    """``THUMBX_X: problem`` -> ``--x / THUMBX_X: problem`` for a variable a command's flag can also set."""
    for variable, flag in flags.items():
        if message.startswith(f"{variable}:"):
            return f"{flag} / {message}"
    return message


def unknown_names(env: Mapping[str, str]) -> list[str]:
    """One warning per ``THUMBX_*`` name that is no setting, with the closest known name."""
    known = [s.name.removeprefix("THUMBX_") for s in SETTINGS]  # the shared prefix would match anything
    warnings = []
    for name in sorted(env):
        if not name.startswith("THUMBX_") or name in BY_NAME or name in TOOLING_NAMES:
            continue
        close = difflib.get_close_matches(name.removeprefix("THUMBX_"), known, n=1, cutoff=0.6)
        hint = f" (did you mean THUMBX_{close[0]}?)" if close else " (see `thumbx worker --help`)"
        warnings.append(f"{name} is not a thumbx setting and is ignored{hint}")
    return warnings


def renamed_values(env: Mapping[str, str]) -> list[str]:
    """One warning per setting given a deprecated spelling of its value (still accepted)."""
    found = []
    for setting in SETTINGS:
        old = env.get(setting.name, "").strip().lower()
        current = dict(setting.renamed).get(old)
        if current is not None:
            found.append(f"{setting.name}={old} is deprecated; use {setting.name}={current} (same meaning)")
    return found


def warnings(env: Mapping[str, str]) -> list[str]:
    """What is worth a word without refusing to start: unknown names, deprecated values, a queue host off
    the endpoint."""
    found = unknown_names(env) + renamed_values(env)
    endpoint = env.get("THUMBX_ENDPOINT_URL", "").strip() or None
    for name in ("THUMBX_QUEUE_URL", "THUMBX_DLQ_URL"):
        url = env.get(name, "").strip()
        if (
            url
            and endpoint
            and not _problem(BY_NAME[name], url)
            and not _problem(BY_NAME["THUMBX_ENDPOINT_URL"], endpoint)
        ):
            warning = queue_host_warning(name, url, endpoint)
            if warning:
                found.append(warning)
    return found
