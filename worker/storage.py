"""S3 reads and writes behind a small interface, with botocore errors mapped to thumbx's typed errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.aws_errors import mapped


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str
    content_type: str | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class ObjectHead:
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


class ObjectStore(Protocol):
    async def get(self, bucket: str, key: str, *, version_id: str | None = None) -> StoredObject: ...

    async def head(self, bucket: str, key: str) -> ObjectHead | None: ...

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None: ...


class S3Store:
    """An :class:`ObjectStore` over an aiobotocore S3 client. No ACLs are ever sent (BucketOwnerEnforced)."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    async def get(self, bucket: str, key: str, *, version_id: str | None = None) -> StoredObject:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        with mapped(f"GetObject s3://{bucket}/{key}", missing_is_404_or_403=True):
            response = await self._s3.get_object(**params)
            async with response["Body"] as body:
                data = await body.read()
        return StoredObject(
            data=data,
            etag=str(response.get("ETag", "")).strip('"'),
            content_type=response.get("ContentType"),
            version_id=response.get("VersionId"),
        )

    async def head(self, bucket: str, key: str) -> ObjectHead | None:
        from botocore.exceptions import ClientError

        with mapped(f"HeadObject s3://{bucket}/{key}"):
            try:
                response = await self._s3.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise
        return ObjectHead(
            etag=str(response.get("ETag", "")).strip('"'),
            metadata=dict(response.get("Metadata", {})),
            content_type=response.get("ContentType"),
        )

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        with mapped(f"PutObject s3://{bucket}/{key}"):
            await self._s3.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=dict(metadata)
            )
