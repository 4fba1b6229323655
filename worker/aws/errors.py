"""One place that turns botocore's exceptions into thumbx's typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from worker.core.errors import (
    AccessDenied,
    CredentialsUnavailable,
    KeyTooLong,
    MetadataTooLarge,
    ObjectMissing,
    PermanentError,
    S3Refused,
    ServiceUnavailable,
    Throttled,
    ThumbxError,
    TransientError,
)

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottledException",
}
# S3's answers that the same request can never succeed: each becomes a permanent error with this reason.
# (Planning refuses the first two before any call; this catches what planning could not foresee.)
_REFUSED: dict[str, tuple[type[PermanentError], str]] = {
    "KeyTooLongError": (KeyTooLong, "key_too_long"),
    "MetadataTooLarge": (MetadataTooLarge, "metadata_too_large"),
    "EntityTooLarge": (S3Refused, "entity_too_large"),
    "EntityTooSmall": (S3Refused, "entity_too_small"),
    "InvalidArgument": (S3Refused, "invalid_argument"),
    "InvalidRequest": (S3Refused, "invalid_request"),
    "InvalidURI": (S3Refused, "invalid_uri"),
    "InvalidObjectName": (S3Refused, "invalid_object_name"),
    "InvalidObjectState": (S3Refused, "invalid_object_state"),  # archived (Glacier) source
    "InvalidStorageClass": (S3Refused, "invalid_storage_class"),
    "MalformedXML": (S3Refused, "malformed_request"),
    "UnexpectedContent": (S3Refused, "malformed_request"),
    "MissingContentLength": (S3Refused, "malformed_request"),
    "UserKeyMustBeSpecified": (S3Refused, "malformed_request"),
}
_MISSING = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "AccessDenied", "403", "Forbidden"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "RequestExpired"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def classify(exc: BaseException, *, what: str, missing_is_404_or_403: bool = False) -> ThumbxError:
    """Map a botocore exception raised while doing ``what`` to a typed thumbx error."""
    if isinstance(exc, ThumbxError):
        return exc
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        if code in _THROTTLING or status == 429:
            return Throttled(f"{what}: throttled ({code or status})")
        if code in _EXPIRED:
            return CredentialsUnavailable(f"{what}: credentials rejected ({code})")
        if missing_is_404_or_403 and code in _MISSING:  # not NoSuchBucket: a deployment error
            # Without s3:ListBucket, S3 answers 403 for a missing key: "missing or denied".
            return ObjectMissing(f"{what}: missing or denied ({code or status})")
        if code in _REFUSED:
            kind, reason = _REFUSED[code]
            message = str(exc.response.get("Error", {}).get("Message", "")) or code
            return kind(f"{what}: S3 refused it ({code}: {message[:200]})", reason=reason)
        if code in {"AccessDenied", "AccessDeniedException", "403", "Forbidden"} or status == 403:
            return AccessDenied(f"{what}: access denied ({code or status})")
        if status >= 500:
            return ServiceUnavailable(f"{what}: service error {status} ({code})")
        return TransientError(f"{what}: {code or status}: {exc}", reason=f"aws_{code or status}".lower())
    if isinstance(exc, NoCredentialsError):
        return CredentialsUnavailable(f"{what}: no credentials")
    if isinstance(exc, BotoConnectionError | ReadTimeoutError | OSError | aiohttp.ClientError):
        # aiohttp's own errors reach here unwrapped when a connection drops while a body is read
        # (a GetObject stream, or any response read after its headers): the network, not the input
        return ServiceUnavailable(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, BotoCoreError):
        return ServiceUnavailable(f"{what}: {type(exc).__name__}: {exc}")
    return TransientError(f"{what}: unexpected {type(exc).__name__}: {exc}", reason="unexpected")


@contextmanager
def mapped(what: str, *, missing_is_404_or_403: bool = False) -> Iterator[None]:
    """Re-raise botocore errors inside the block as typed thumbx errors, chained with ``from``."""
    try:
        yield
    except (ClientError, BotoCoreError, OSError, aiohttp.ClientError) as exc:
        raise classify(exc, what=what, missing_is_404_or_403=missing_is_404_or_403) from exc
