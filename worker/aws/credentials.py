"""Assumed-role sessions whose temporary credentials refresh themselves.

One :class:`aioboto3.Session` per role. Its credentials are aiobotocore's ``AioRefreshableCredentials``,
backed by an explicit ``sts:AssumeRole`` call (RoleSessionName, optional ExternalId, SourceIdentity,
DurationSeconds <= 3600 because role chaining caps sessions at an hour). The refresh windows are sized to
the session length: the botocore defaults (advisory 15 min, mandatory 10 min) would make a 15-minute
session refresh on every call. aiobotocore holds one lock, so many concurrent requests cause one STS call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aioboto3
import structlog
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from worker.core.config import RoleSettings
from worker.core.errors import CredentialsUnavailable
from worker.observability.telemetry import Metrics

log = structlog.get_logger(__name__)
METHOD = "thumbx-assume-role"


@dataclass(frozen=True)
class RefreshWindows:
    advisory: int
    mandatory: int

    @classmethod
    def for_duration(cls, duration_seconds: int) -> RefreshWindows:
        """Refresh from a quarter of the session's life before expiry; insist from an eighth."""
        advisory = min(900, duration_seconds // 4)
        return cls(advisory=advisory, mandatory=min(600, max(1, advisory // 2)))


@dataclass
class CredentialStats:
    """What the health endpoint and tests read: how many STS calls, and when the current set expires."""

    refreshes: int = 0
    failures: int = 0
    expiry: datetime | None = None


class AssumeRoleFetcher:
    """Calls sts:AssumeRole with the base session and returns botocore's credential metadata."""

    def __init__(
        self,
        base: aioboto3.Session,
        role: RoleSettings,
        *,
        region: str,
        endpoint_url: str | None = None,
        sts_config: Any = None,
        metrics: Metrics | None = None,
        stats: CredentialStats | None = None,
    ) -> None:
        self._base = base
        self._metrics = metrics or Metrics()
        self._role = role
        self._region = region
        self._endpoint_url = endpoint_url
        self._sts_config = sts_config
        self.stats = stats or CredentialStats()
        self.log_failures = True  # start-up logs its own line per attempt (worker.aws.startup)

    async def __call__(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "RoleArn": self._role.role_arn,
            "RoleSessionName": self._role.session_name,
            "DurationSeconds": self._role.duration_seconds,
        }
        if self._role.external_id:
            params["ExternalId"] = self._role.external_id
        if self._role.source_identity:
            params["SourceIdentity"] = self._role.source_identity
        try:
            async with self._base.client(
                "sts", region_name=self._region, endpoint_url=self._endpoint_url, config=self._sts_config
            ) as sts:
                response = await sts.assume_role(**params)
        except (ClientError, BotoCoreError, OSError) as exc:
            self.stats.failures += 1
            self._metrics.inc("thumbx_credential_refresh_failures_total")
            if self.log_failures:
                log.warning("assume_role_failed", role_arn=self._role.role_arn, error=str(exc))
            raise CredentialsUnavailable(f"cannot assume {self._role.role_arn}: {exc}") from exc
        creds = response["Credentials"]
        self.stats.refreshes += 1
        self.stats.expiry = creds["Expiration"]
        self._metrics.inc("thumbx_credential_refreshes_total")
        self._metrics.set("thumbx_credential_expiry_timestamp_seconds", creds["Expiration"].timestamp())
        log.info(
            "assumed_role",
            role_arn=self._role.role_arn,
            session_name=self._role.session_name,
            expires=creds["Expiration"].isoformat(),
        )
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }


@dataclass
class RoleSession:
    """An aioboto3 session acting as the assumed role, plus what it knows about its own credentials."""

    session: aioboto3.Session
    credentials: AioRefreshableCredentials
    fetcher: AssumeRoleFetcher

    @property
    def stats(self) -> CredentialStats:
        return self.fetcher.stats


async def assumed_role_session(
    base: aioboto3.Session,
    role: RoleSettings,
    *,
    region: str,
    endpoint_url: str | None = None,
    windows: RefreshWindows | None = None,
    sts_config: Any = None,
    metrics: Metrics | None = None,
    stats: CredentialStats | None = None,
    first: Callable[[Callable[[], Awaitable[dict[str, Any]]]], Awaitable[dict[str, Any]]] | None = None,
) -> RoleSession:
    """Assume ``role`` now and return a self-refreshing session.

    ``first`` runs the first AssumeRole (the service passes :func:`worker.aws.startup.until_ready`, which
    retries it until it works); by default it is tried once and a CredentialsUnavailable propagates.
    """
    fetcher = AssumeRoleFetcher(
        base,
        role,
        region=region,
        endpoint_url=endpoint_url,
        sts_config=sts_config,
        metrics=metrics,
        stats=stats,
    )
    windows = windows or RefreshWindows.for_duration(role.duration_seconds)
    if first is None:
        metadata = await fetcher()
    else:
        fetcher.log_failures = False
        try:
            metadata = await first(fetcher)
        finally:
            fetcher.log_failures = True
    refresh: Callable[[], Awaitable[dict[str, Any]]] = fetcher
    credentials = AioRefreshableCredentials.create_from_metadata(
        metadata=metadata,
        refresh_using=refresh,
        method=METHOD,
        advisory_timeout=windows.advisory,
        mandatory_timeout=windows.mandatory,
    )
    core = get_session()
    core._credentials = credentials  # the documented way to give a botocore session custom credentials
    return RoleSession(aioboto3.Session(botocore_session=core, region_name=region), credentials, fetcher)
