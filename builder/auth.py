"""Who is calling (TokenReview) and may they (SubjectAccessReview): Kubernetes decides, we ask and cache.

The caller sends a bearer token; in a notebook that is the pod's service-account token. RBAC on the virtual
resource `builds.builder.notebook-platform.io` decides what a caller may do in a namespace, so a platform
engineer grants building with an ordinary Role. Answers are cached for a few seconds in a bounded LRU, so a
log stream or a polling client does not cost two API calls per request; a token is never cached past its
own `exp`.

Two things keep the reviews out of the request path's tail. An answer older than half its time to live is
still served, and a background review refreshes it (at most one per key at a time); a caller that keeps
calling never waits for a review again, and every answer is still at most `ttl` seconds old, as before. And
concurrent requests that all miss (a burst from a new notebook) share one review instead of sending one each.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from . import constants as c

T = TypeVar("T")
log = logging.getLogger("builder.auth")
# An answer is refreshed in the background once this fraction of its time to live has passed.
REFRESH_AFTER = 0.5


class AuthError(Exception):
    """A refusal: 401 (who are you?) or 403 (not allowed), with a message naming the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Caller:
    """An authenticated identity as the TokenReview reported it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def service_account_namespace(self) -> str | None:
        """The namespace of a service-account caller (`system:serviceaccount:<ns>:<name>`), else None."""
        if not self.username.startswith(c.SERVICE_ACCOUNT_PREFIX):
            return None
        ns, _, name = self.username[len(c.SERVICE_ACCOUNT_PREFIX):].partition(":")
        return ns if ns and name else None


@dataclass(frozen=True)
class Access:
    """One thing to ask RBAC about (the SubjectAccessReview resourceAttributes)."""

    verb: str
    resource: str = c.RESOURCE
    group: str = c.API_GROUP
    name: str = ""
    subresource: str = ""

    def describe(self) -> str:
        res = f"{self.resource}.{self.group}" if self.group else self.resource
        if self.subresource:
            res += f"/{self.subresource}"
        return f"{self.verb} {res}" + (f" {self.name!r}" if self.name else "")


class TTLCache(Generic[T]):
    """A bounded LRU whose entries expire, and become due for a refresh before that; single-threaded (one
    event loop)."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries, self.clock = max_entries, clock
        self._data: OrderedDict[Any, tuple[float, float, T]] = OrderedDict()

    def lookup(self, key: Any) -> tuple[T, bool] | None:
        """(value, due for a refresh), or None when absent or expired."""
        item = self._data.get(key)
        if item is None:
            return None
        expires, refresh_at, value = item
        now = self.clock()
        if expires <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value, refresh_at <= now

    def get(self, key: Any) -> T | None:
        found = self.lookup(key)
        return None if found is None else found[0]

    def put(self, key: Any, value: T, ttl: float) -> None:
        if ttl <= 0:
            return
        now = self.clock()
        self._data[key] = (now + ttl, now + ttl * REFRESH_AFTER, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying (only to bound caching; the TokenReview verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp")
        return float(exp) if isinstance(exp, int | float) else None
    except (ValueError, TypeError):
        return None


def bearer_token(authorization: str | None) -> str:
    """The token from an `Authorization: Bearer ...` header, or a 401 naming what is wrong."""
    if not authorization:
        raise AuthError(401, "missing Authorization header: send 'Authorization: Bearer <service-account token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "Authorization header must be 'Bearer <token>'")
    if len(token) > 16 * 1024:
        raise AuthError(401, "bearer token is too long")
    return token


class Reviewer(Protocol):
    """The two API calls auth needs (`kube.Kube` provides them)."""

    async def token_review(self, token: str) -> dict[str, Any]: ...
    async def subject_access_review(self, spec: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class Authorizer:
    """Authenticates tokens and authorizes callers, caching both answers for `ttl` seconds."""

    reviewer: Reviewer
    ttl: float = 10.0
    max_entries: int = 4096
    restrict_service_accounts: bool = True
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    _tokens: TTLCache[Caller | str] = field(init=False)
    _decisions: TTLCache[tuple[bool, str]] = field(init=False)
    _inflight: dict[Any, asyncio.Task[Any]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._tokens = TTLCache(self.max_entries, self.clock)
        self._decisions = TTLCache(self.max_entries, self.clock)

    async def _cached(self, cache: TTLCache[Any], key: Any, review: Callable[[], Awaitable[Any]]) -> Any:
        """The cached answer (refreshed in the background when due), else the one review in flight for this key.

        `review` asks the apiserver and stores its answer. A failed background refresh leaves the old answer,
        which still expires on time; a failed review a caller waits for raises to that caller."""
        found = cache.lookup(key)
        if found is not None:
            value, due = found
            if due and key not in self._inflight:
                self._start(key, review).add_done_callback(_log_refresh_failure)
            return value
        task = self._inflight.get(key) or self._start(key, review)
        return await asyncio.shield(task)

    def _start(self, key: Any, review: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(review())
        self._inflight[key] = task
        task.add_done_callback(lambda done: self._inflight.pop(key) if self._inflight.get(key) is done else None)
        return task

    async def close(self) -> None:
        """Cancels reviews still in flight (at shutdown)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def authenticate(self, token: str) -> Caller:
        """The caller behind a token, or AuthError(401). Invalid tokens are cached too (as their error)."""
        key = hashlib.sha256(token.encode()).hexdigest()
        answer = await self._cached(self._tokens, key, lambda: self._review_token(key, token))
        if isinstance(answer, str):
            raise AuthError(401, answer)
        return answer  # type: ignore[no-any-return]

    async def _review_token(self, key: str, token: str) -> Caller | str:
        """TokenReview: the caller, or the refusal message; cached under `key`."""
        review = await self.reviewer.token_review(token)
        status = review.get("status") or {}
        if not status.get("authenticated"):
            reason = status.get("error") or "token not accepted"
            message = f"invalid, expired or forged token ({reason})"
            self._tokens.put(key, message, self.ttl)
            return message
        user = status.get("user") or {}
        caller = Caller(
            username=user.get("username", ""),
            uid=user.get("uid", ""),
            groups=tuple(user.get("groups") or ()),
            extra=tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items())),
        )
        ttl = self.ttl
        exp = token_expiry(token)
        if exp is not None:
            ttl = min(ttl, exp - self.wall_clock())
        self._tokens.put(key, caller, ttl)
        return caller

    async def allowed(self, caller: Caller, namespace: str, access: Access) -> tuple[bool, str]:
        """RBAC's answer (allowed, reason) for one access in one namespace."""
        key = (caller, namespace, access)
        return await self._cached(self._decisions, key,  # type: ignore[no-any-return]
                                  lambda: self._review_access(key, caller, namespace, access))

    async def _review_access(self, key: Any, caller: Caller, namespace: str, access: Access) -> tuple[bool, str]:
        """SubjectAccessReview for one access; cached under `key`."""
        attrs = {"namespace": namespace, "verb": access.verb, "group": access.group, "resource": access.resource}
        if access.name:
            attrs["name"] = access.name
        if access.subresource:
            attrs["subresource"] = access.subresource
        spec: dict[str, Any] = {"user": caller.username, "groups": list(caller.groups), "resourceAttributes": attrs}
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.extra:
            spec["extra"] = {k: list(v) for k, v in caller.extra}
        review = await self.reviewer.subject_access_review(spec)
        status = review.get("status") or {}
        decision = (bool(status.get("allowed")) and not status.get("denied"), status.get("reason", ""))
        self._decisions.put(key, decision, self.ttl)
        return decision

    async def authorize(self, token: str, namespace: str, *accesses: Access) -> Caller:
        """Authenticates, then requires every access in `namespace`; AuthError(403) names the first refused."""
        caller = await self.authenticate(token)
        own = caller.service_account_namespace
        if self.restrict_service_accounts and own is not None and own != namespace:
            raise AuthError(
                403, f"{caller.username} may only use builds in its own namespace {own!r}, not {namespace!r}"
            )
        for access in accesses:
            ok, reason = await self.allowed(caller, namespace, access)
            if not ok:
                why = f" ({reason})" if reason else ""
                raise AuthError(403, f"{caller.username} may not {access.describe()} in namespace {namespace!r}{why}")
        return caller


def _log_refresh_failure(task: asyncio.Task[Any]) -> None:
    """A background refresh that failed is logged; the cached answer stays until it expires."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("background auth refresh failed: %r", task.exception())
