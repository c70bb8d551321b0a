"""An aiohttp SCIM client for one push target (RFC 7644 as the client side).

One :class:`ScimClient` per target holds one connection pool. Every request goes through
:meth:`ScimClient.request`, the one seam where transport failures and HTTP statuses become
syncsvc errors:

- connection errors, timeouts, 429 and 5xx are retried with exponential backoff and full jitter,
  honouring ``Retry-After`` (seconds or an HTTP date); when the retries run out, or the target
  asks for a longer pause than a drain should sit through, :class:`TargetUnavailable` (carrying
  ``retry_after``) stops the drain and the cursor stays where it was;
- 401/403 mean the credentials are wrong for the whole target, not for one resource: also
  :class:`TargetUnavailable` (not retried), so the target is quarantined rather than every
  resource marked failed. OAuth2 gets one fresh token on a 401 first;
- other 4xx are :class:`TargetRejected` for that one resource, with the target's SCIM error
  (``status``, ``scimType``, ``detail``).

Authorization headers, tokens and passwords never reach a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from syncsvc.errors import TargetRejected, TargetUnavailable
from syncsvc.settings import TargetSettings

__all__ = ["PATCH_OP", "ScimClient", "TargetFeatures", "parse_retry_after"]

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_BACKOFF_BASE = 0.5  # seconds before the first retry (before jitter)
_BACKOFF_CAP = 30.0
# A Retry-After longer than this is not slept through inside a drain: the drain stops and the
# runner tries again later (the cursor is kept, nothing is lost).
_MAX_INLINE_WAIT = 60.0
_TOKEN_MARGIN = 30.0  # refresh an OAuth2 token this many seconds before it expires

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TargetFeatures:
    """What the target announces in /ServiceProviderConfig (RFC 7643 §5)."""

    patch: bool = False
    bulk: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload: int = 0
    filter: bool = False
    max_results: int = 0

    @classmethod
    def from_config(cls, body: Mapping[str, Any]) -> TargetFeatures:
        def part(name: str) -> Mapping[str, Any]:
            value = body.get(name)
            return value if isinstance(value, Mapping) else {}

        return cls(
            patch=bool(part("patch").get("supported")),
            bulk=bool(part("bulk").get("supported")),
            bulk_max_operations=int(part("bulk").get("maxOperations") or 0),
            bulk_max_payload=int(part("bulk").get("maxPayloadSize") or 0),
            filter=bool(part("filter").get("supported")),
            max_results=int(part("filter").get("maxResults") or 0),
        )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _RateLimiter:
    """At most ``rate`` request starts per second (0: unlimited), spaced evenly."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self._interval


def _scim_error(status: int, body: Any) -> tuple[str | None, str]:
    """(scimType, detail) of a SCIM error document, or a short text when it is not one."""
    if isinstance(body, Mapping):
        detail = body.get("detail") or body.get("message") or ""
        return body.get("scimType"), str(detail)[:500] or f"HTTP {status}"
    if isinstance(body, str) and body.strip():
        return None, body.strip()[:200]
    return None, f"HTTP {status}"


def _basic(user: str, password: str) -> str:
    """An HTTP Basic Authorization value (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class ScimClient:
    """A SCIM client for one target: auth, TLS, timeouts, rate limit, concurrency, retries."""

    def __init__(
        self,
        target: TargetSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._target = target
        self._base = target.url.rstrip("/")
        self._sleep = sleep
        self._rng = rng
        self._limiter = _RateLimiter(target.rate_limit)
        self._slots = asyncio.Semaphore(max(1, target.concurrency))
        self._session: aiohttp.ClientSession | None = None
        self._features: TargetFeatures | None = None
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._log = log.bind(target=target.name)

    # -- lifecycle ------------------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self._target.verify_tls:
            return False
        return ssl.create_default_context(cafile=self._target.ca_file or None)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl(), limit=max(1, self._target.concurrency) * 2)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._target.timeout),
                headers={"Accept": SCIM_JSON},
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- authentication -----------------------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        auth = self._target.auth
        if auth.kind == "bearer":
            return {"Authorization": f"Bearer {auth.token}"}
        if auth.kind == "basic":
            return {"Authorization": _basic(auth.username, auth.password)}
        if auth.kind == "oauth2":
            return {"Authorization": f"Bearer {await self._oauth2_token()}"}
        return {}

    async def _oauth2_token(self, *, fresh: bool = False) -> str:
        """A client-credentials token (RFC 6749 §4.4), cached until shortly before it expires."""
        async with self._token_lock:
            if not fresh and self._token and time.monotonic() < self._token_expires:
                return self._token
            auth = self._target.auth
            form = {"grant_type": "client_credentials"}
            if auth.scope:
                form["scope"] = auth.scope
            try:
                async with self._http().post(
                    auth.token_url, data=form,
                    headers={"Accept": "application/json",
                             # RFC 6749 §2.3.1: the client's id and secret, form-encoded first.
                             "Authorization": _basic(quote(auth.client_id, safe=""),
                                                     quote(auth.client_secret, safe=""))},
                ) as resp:
                    body = await resp.json(content_type=None) if resp.status < 300 else None
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TargetUnavailable(
                    f"{self._target.name}: token endpoint unreachable ({type(exc).__name__})"
                ) from exc
            if not isinstance(body, Mapping) or not body.get("access_token"):
                # The token endpoint's answer is not shown: it may echo the credentials.
                raise TargetUnavailable(f"{self._target.name}: token endpoint answered {status}")
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 3600)
            self._token_expires = time.monotonic() + max(0.0, lifetime - _TOKEN_MARGIN)
            return self._token

    # -- the one request seam -----------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter on an exponential step; a Retry-After is a floor, never shortened."""
        step = min(_BACKOFF_CAP, _BACKOFF_BASE * (2**attempt))
        jittered = step * (0.5 + self._rng() / 2)
        return max(jittered, retry_after or 0.0)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        ok: Sequence[int] = (),
    ) -> tuple[int, Any]:
        """Send one request (retried as the module says); ``(status, decoded body or None)``.

        A status in ``ok`` is returned as is even when it is an error (e.g. 404 for a GET that
        may find nothing, 409 on a create that resolves to a match).
        """
        url = f"{self._base}{path}"
        attempts = max(0, self._target.max_retries) + 1
        refreshed = False
        last: TargetUnavailable | None = None
        attempt = 0
        while attempt < attempts:
            try:
                status, headers, payload = await self._send(method, url, body, params)
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = TargetUnavailable(
                    f"{self._target.name}: {method} {path}: {type(exc).__name__}"
                    + (f" {exc}" if isinstance(exc, aiohttp.ClientConnectorError) else ""))
                retry_after = None
            else:
                if status in ok or status < 400:
                    return status, payload
                if status == 401 and self._target.auth.kind == "oauth2" and not refreshed:
                    refreshed = True
                    await self._oauth2_token(fresh=True)
                    continue  # not counted: a token that expired early is not a failure
                scim_type, detail = _scim_error(status, payload)
                if status in (401, 403):
                    raise TargetUnavailable(
                        f"{self._target.name}: {method} {path}: {status} (credentials refused)")
                if status not in _RETRYABLE:
                    raise TargetRejected(detail, status=status, scim_type=scim_type)
                retry_after = parse_retry_after(headers.get("Retry-After"))
                last = TargetUnavailable(
                    f"{self._target.name}: {method} {path}: {status} {detail}",
                    retry_after=retry_after)
                if retry_after is not None and retry_after > _MAX_INLINE_WAIT:
                    raise last
            attempt += 1
            if attempt >= attempts:
                break
            delay = self._backoff(attempt - 1, retry_after)
            self._log.info("push.retry", method=method, path=path, attempt=attempt,
                           delay=round(delay, 3), reason=str(last))
            await self._sleep(delay)
        assert last is not None
        raise last

    async def _send(
        self, method: str, url: str, body: Any, params: Mapping[str, str] | None
    ) -> tuple[int, Mapping[str, str], Any]:
        headers = await self._auth_headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = SCIM_JSON
        async with self._slots:
            await self._limiter.wait()
            async with self._http().request(
                method, url, data=data, params=params, headers=headers
            ) as resp:
                raw = await resp.read()
                payload: Any = None
                if raw:
                    try:
                        payload = await resp.json(content_type=None)
                    except ValueError:
                        payload = raw.decode(errors="replace")
                return resp.status, resp.headers, payload

    # -- SCIM operations ----------------------------------------------------------------------

    async def features(self) -> TargetFeatures:
        """The target's /ServiceProviderConfig, read once per client."""
        if self._features is None:
            status, body = await self.request("GET", "/ServiceProviderConfig", ok=(404,))
            self._features = (TargetFeatures.from_config(body)
                              if status == 200 and isinstance(body, Mapping) else TargetFeatures())
            self._log.info("push.target_features", patch=self._features.patch,
                           bulk=self._features.bulk, filter=self._features.filter)
        return self._features

    async def get(self, endpoint: str, remote_id: str) -> dict[str, Any] | None:
        status, body = await self.request("GET", f"/{endpoint}/{remote_id}", ok=(404,))
        return body if status == 200 and isinstance(body, dict) else None

    async def create(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST; a 409 (already there) raises TargetRejected with status 409 for the caller."""
        _, created = await self.request("POST", f"/{endpoint}", dict(body))
        if not isinstance(created, dict) or not created.get("id"):
            raise TargetRejected("the target's create answer carries no id", status=502)
        return created

    async def replace(self, endpoint: str, remote_id: str, body: Mapping[str, Any]) -> None:
        await self.request("PUT", f"/{endpoint}/{remote_id}", dict(body))

    async def patch(self, endpoint: str, remote_id: str, operations: Sequence[Any]) -> None:
        await self.request("PATCH", f"/{endpoint}/{remote_id}",
                           {"schemas": [PATCH_OP], "Operations": list(operations)})

    async def delete(self, endpoint: str, remote_id: str) -> None:
        """DELETE; a resource already gone is fine (idempotent)."""
        await self.request("DELETE", f"/{endpoint}/{remote_id}", ok=(404,))

    async def bulk(self, operations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """POST /Bulk (RFC 7644 §3.7) without failOnErrors; the response's Operations."""
        _, body = await self.request("POST", "/Bulk", {"schemas": [BULK_REQUEST],
                                                       "Operations": list(operations)})
        ops = body.get("Operations") if isinstance(body, Mapping) else None
        return [op for op in ops or () if isinstance(op, dict)]

    async def find(self, endpoint: str, attribute: str, value: str) -> list[dict[str, Any]]:
        """Resources whose ``attribute`` equals ``value`` (a filter query, RFC 7644 §3.4.2.2)."""
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        _, body = await self.request(
            "GET", f"/{endpoint}", params={"filter": f'{attribute} eq "{quoted}"'})
        resources = body.get("Resources") if isinstance(body, Mapping) else None
        return [r for r in resources or () if isinstance(r, dict)]

    async def list_all(self, endpoint: str, page_size: int = 200) -> AsyncIterator[dict[str, Any]]:
        """Every resource of ``endpoint``, paged with startIndex/count (RFC 7644 §3.4.2.4)."""
        start = 1
        seen = 0
        while True:
            _, body = await self.request(
                "GET", f"/{endpoint}", params={"startIndex": str(start), "count": str(page_size)})
            resources = [r for r in (body or {}).get("Resources") or () if isinstance(r, dict)]
            for resource in resources:
                yield resource
            seen += len(resources)
            total = int((body or {}).get("totalResults") or 0)
            if not resources or seen >= total:
                return
            start += len(resources)
