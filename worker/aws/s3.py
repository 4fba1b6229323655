"""S3 reads and writes behind a small interface, with botocore errors mapped to thumbx's typed errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.aws.errors import mapped
from worker.core.errors import ImageTooLarge, ServiceUnavailable

Admit = Callable[[int], None]  # called with the object's ContentLength before its body is read; may raise
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str
    content_type: str | None = None
    version_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectHead:
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    size: int | None = None
    version_id: str | None = None


class ObjectStore(Protocol):
    async def get(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        max_bytes: int | None = None,
        admit: Admit | None = None,
    ) -> StoredObject: ...

    async def head(
        self, bucket: str, key: str, *, missing_is_error: bool = False, version_id: str | None = None
    ) -> ObjectHead | None: ...

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None: ...


class S3Store:
    """An :class:`ObjectStore` over an aiobotocore S3 client. No ACLs are ever sent (BucketOwnerEnforced)."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    async def get(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        max_bytes: int | None = None,
        admit: Admit | None = None,
    ) -> StoredObject:
        """Read the object; with ``max_bytes``, refuse it (ImageTooLarge) on its ContentLength before the
        body is read, and never read more than ``max_bytes + 1`` bytes of a body that says otherwise."""
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        with mapped(f"GetObject s3://{bucket}/{key}", missing_is_404_or_403=True):
            response = await self._s3.get_object(**params)
            body = response["Body"]  # the StreamingBody (its context manager yields the raw response)
            async with body:
                length = int(response.get("ContentLength") or 0)
                if max_bytes is not None and length > max_bytes:
                    raise ImageTooLarge(f"{length} bytes is over the {max_bytes}-byte limit")
                if admit is not None:
                    admit(length)
                data = await _read_bounded(body, length, max_bytes)
        return StoredObject(
            data=data,
            etag=str(response.get("ETag", "")).strip('"'),
            content_type=response.get("ContentType"),
            version_id=response.get("VersionId"),
            metadata=dict(response.get("Metadata", {})),
        )

    async def head(
        self, bucket: str, key: str, *, missing_is_error: bool = False, version_id: str | None = None
    ) -> ObjectHead | None:
        """None for a missing key (404); with ``missing_is_error`` (a source), 403/404 raise ObjectMissing.
        With ``version_id``, that version (s3:GetObjectVersion)."""
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        with mapped(f"HeadObject s3://{bucket}/{key}", missing_is_404_or_403=missing_is_error):
            try:
                response = await self._s3.head_object(**params)
            except ClientError as exc:
                missing = exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}
                if missing and not missing_is_error:
                    return None
                raise
        length = response.get("ContentLength")
        return ObjectHead(
            etag=str(response.get("ETag", "")).strip('"'),
            metadata=dict(response.get("Metadata", {})),
            content_type=response.get("ContentType"),
            size=int(length) if length is not None else None,
            version_id=response.get("VersionId"),
        )

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        with mapped(f"PutObject s3://{bucket}/{key}"):
            await self._s3.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=dict(metadata)
            )


async def _read_bounded(body: Any, length: int, max_bytes: int | None) -> bytes:
    """The body, read into one buffer of the announced size (+1 byte, to see a body longer than it said),
    1 MiB at a time; never more than ``max_bytes + 1`` bytes. A short body raises botocore's
    IncompleteReadError (transient)."""
    if max_bytes is None:
        return bytes(await body.read())
    buffer = bytearray(min(length, max_bytes) + 1)
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        read = await body.readinto(view[filled : filled + CHUNK])
        if not read:
            break
        filled += read
    if filled > max_bytes:
        raise ImageTooLarge(f"the body is over the {max_bytes}-byte limit (it said {length} bytes)")
    if filled > length:
        raise ServiceUnavailable(f"the body is longer than its ContentLength ({length} bytes)")
    data = bytes(view[:filled])
    view.release()
    return data
