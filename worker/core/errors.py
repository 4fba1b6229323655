"""The error vocabulary of thumbx.

Every failure is classified where it arises: *permanent* failures (the input can never succeed: a corrupt
image, an unsupported format, a malformed event) send a message to the dead-letter queue at once;
*transient* failures (throttling, 5xx, timeouts, credentials that cannot be refreshed, an object not yet
visible) are retried through the queue's visibility timeout. `reason` is a short stable slug used in logs,
metrics labels and DLQ message attributes.
"""

from __future__ import annotations


class ThumbxError(Exception):
    """Base of every error thumbx raises on purpose."""

    reason = "error"
    permanent = False

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ConfigError(ThumbxError):
    """A setting is missing or invalid; the message names the variable."""

    reason = "config"
    permanent = True


class PermanentError(ThumbxError):
    """Retrying cannot help: dead-letter the message with this reason."""

    reason = "permanent"
    permanent = True


class TransientError(ThumbxError):
    """Retrying later may help: leave the message for redelivery."""

    reason = "transient"
    permanent = False


# --- events -----------------------------------------------------------------------------------------------


class BadEvent(PermanentError):
    reason = "bad_event"


# --- keys and what S3 will refuse (planned before any call) -------------------------------------------------


class BadKey(PermanentError):
    """A source key with ``.``/``..`` or empty segments, control characters or text that is not UTF-8."""

    reason = "bad_key"


class KeyTooLong(PermanentError):
    """An output key would exceed S3's 1024 bytes (UTF-8)."""

    reason = "key_too_long"


class MetadataTooLarge(PermanentError):
    """The outputs' user metadata would exceed S3's 2 KB."""

    reason = "metadata_too_large"


class S3Refused(PermanentError):
    """S3 answered a non-retryable 4xx (InvalidArgument, EntityTooLarge, ...): a retry fails the same way."""

    reason = "s3_refused"


# --- images -----------------------------------------------------------------------------------------------


class ImageError(PermanentError):
    reason = "image"


class UnsupportedFormat(ImageError):
    reason = "unsupported_format"


class CorruptImage(ImageError):
    reason = "corrupt_image"


class ImageTooLarge(ImageError):
    reason = "image_too_large"


class RenderTimeout(ImageError):
    reason = "render_timeout"


# --- AWS --------------------------------------------------------------------------------------------------


class CredentialsUnavailable(TransientError):
    """The assumed-role credentials could not be obtained or refreshed."""

    reason = "credentials_unavailable"


class ObjectMissing(PermanentError):
    """The source is missing or denied: GetObject/HeadObject said 404, or 403 (what S3 says for a missing
    key without s3:ListBucket). S3 is read-after-write consistent, so a retry finds nothing either."""

    reason = "object_missing"


class AccessDenied(TransientError):
    """A write or read was refused: a deployment problem, retried so nothing is lost while it is fixed."""

    reason = "access_denied"


class Throttled(TransientError):
    reason = "throttled"


class ServiceUnavailable(TransientError):
    """5xx, connection errors and timeouts talking to AWS."""

    reason = "service_unavailable"
