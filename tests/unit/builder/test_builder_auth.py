"""Auth logic that needs no apiserver: header parsing, caching, expiry, the own-namespace rule.

The reviewer here is a minimal stand-in recording calls; real TokenReview/SubjectAccessReview behaviour is
tested against the apiserver in tests/integration/builder.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from builder.auth import Access, AuthError, Authorizer, Caller, TTLCache, bearer_token, token_expiry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reviewer:
    """Answers as the apiserver would for a fixed table; counts calls."""

    def __init__(self, users: dict[str, str], grants: set[tuple[str, str, str]]) -> None:
        self.users, self.grants = users, grants
        self.token_reviews = 0
        self.sars = 0

    async def token_review(self, token: str) -> dict[str, Any]:
        self.token_reviews += 1
        if token in self.users:
            return {"status": {"authenticated": True, "user": {"username": self.users[token], "groups": ["g"]}}}
        return {"status": {"authenticated": False, "error": "invalid bearer token"}}

    async def subject_access_review(self, spec: dict[str, Any]) -> dict[str, Any]:
        self.sars += 1
        attrs = spec["resourceAttributes"]
        ok = (spec["user"], attrs["namespace"], attrs["verb"]) in self.grants
        return {"status": {"allowed": ok, "reason": "" if ok else "no RBAC policy matched"}}


SA = "system:serviceaccount:alice:default"


def authorizer(clock: Clock, **kw: Any) -> tuple[Authorizer, Reviewer]:
    rev = Reviewer({"good": SA, "human": "bob"}, {(SA, "alice", "create"), ("bob", "alice", "get")})
    return Authorizer(rev, ttl=10, max_entries=100, clock=clock, wall_clock=clock, **kw), rev


@pytest.mark.parametrize(
    ("header", "fragment"),
    [(None, "missing"), ("", "missing"), ("Basic dXNlcjpwYXNz", "Bearer"), ("Bearer", "Bearer"),
     ("Bearer   ", "Bearer"), ("Bearer " + "x" * 20000, "too long")],
)
def test_bad_authorization_headers_are_401(header: str | None, fragment: str) -> None:
    with pytest.raises(AuthError) as e:
        bearer_token(header)
    assert e.value.status == 401 and fragment in e.value.message


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc") == "abc"


async def test_allowed_caller_passes_and_answers_are_cached() -> None:
    clock = Clock()
    auth, rev = authorizer(clock)
    for _ in range(3):
        caller = await auth.authorize("good", "alice", Access("create"))
    assert caller.username == SA and caller.service_account_namespace == "alice"
    assert (rev.token_reviews, rev.sars) == (1, 1)
    clock.now += 11
    await auth.authorize("good", "alice", Access("create"))
    assert (rev.token_reviews, rev.sars) == (2, 2)


async def test_forged_token_is_401_and_the_refusal_is_cached() -> None:
    auth, rev = authorizer(Clock())
    for _ in range(2):
        with pytest.raises(AuthError) as e:
            await auth.authorize("forged", "alice", Access("create"))
        assert e.value.status == 401 and "invalid bearer token" in e.value.message
    assert rev.token_reviews == 1


async def test_service_account_cannot_act_in_another_namespace_whatever_rbac_says() -> None:
    auth, rev = authorizer(Clock())
    with pytest.raises(AuthError) as e:
        await auth.authorize("good", "bob", Access("create"))
    assert e.value.status == 403 and "own namespace 'alice'" in e.value.message
    assert rev.sars == 0


async def test_rule_can_be_relaxed_then_rbac_decides() -> None:
    auth, _ = authorizer(Clock(), restrict_service_accounts=False)
    with pytest.raises(AuthError) as e:
        await auth.authorize("good", "bob", Access("create"))
    assert e.value.status == 403 and "may not create builds.builder.notebook-platform.io" in e.value.message


async def test_missing_grant_is_403_naming_verb_resource_and_reason() -> None:
    auth, _ = authorizer(Clock())
    with pytest.raises(AuthError) as e:
        await auth.authorize("human", "alice", Access("delete"))
    assert e.value.status == 403
    assert "bob may not delete builds.builder.notebook-platform.io in namespace 'alice'" in e.value.message
    assert "no RBAC policy matched" in e.value.message


def jwt(claims: dict[str, Any]) -> str:
    def enc(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.sig"


def test_token_expiry_is_read_without_verifying() -> None:
    assert token_expiry(jwt({"exp": 1234})) == 1234
    assert token_expiry(jwt({})) is None
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.!!!.c") is None


async def test_a_token_is_not_cached_past_its_expiry() -> None:
    clock = Clock()
    token = jwt({"exp": clock.now + 2})
    rev = Reviewer({token: SA}, {(SA, "alice", "get")})
    auth = Authorizer(rev, ttl=60, clock=clock, wall_clock=clock)
    await auth.authenticate(token)
    clock.now += 3
    rev.users.clear()  # the apiserver now says expired
    with pytest.raises(AuthError):
        await auth.authenticate(token)
    assert rev.token_reviews == 2


def test_ttl_cache_is_bounded_lru() -> None:
    clock = Clock()
    cache: TTLCache[int] = TTLCache(2, clock)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3, 10)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
    clock.now += 10
    assert cache.get("a") is None
    cache.put("z", 1, 0)
    assert cache.get("z") is None


async def settle() -> None:
    """Lets background refreshes run to completion (the stand-in reviewer answers at once)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_answer_past_half_its_ttl_is_served_and_refreshed_in_the_background() -> None:
    clock = Clock()
    auth, rev = authorizer(clock)  # ttl 10
    await auth.authorize("good", "alice", Access("create"))
    clock.now += 6  # due for refresh, not expired
    rev.grants.clear()  # RBAC now refuses
    caller = await auth.authorize("good", "alice", Access("create"))  # the cached answer, no wait
    assert caller.username == SA
    await settle()
    assert (rev.token_reviews, rev.sars) == (2, 2)  # both refreshed, once each
    # The refreshed answer holds from now on: the revocation shows within one ttl of the last answer.
    with pytest.raises(AuthError) as e:
        await auth.authorize("good", "alice", Access("create"))
    assert e.value.status == 403


async def test_refresh_ahead_never_serves_an_answer_past_its_ttl() -> None:
    clock = Clock()
    auth, rev = authorizer(clock)
    await auth.authorize("good", "alice", Access("create"))
    clock.now += 10  # expired, no refresh happened in between
    rev.users.clear()
    with pytest.raises(AuthError) as e:
        await auth.authorize("good", "alice", Access("create"))
    assert e.value.status == 401 and rev.token_reviews == 2


class SlowReviewer(Reviewer):
    """Answers only when released, to hold several requests in flight; may fail."""

    def __init__(self) -> None:
        super().__init__({"good": SA}, {(SA, "alice", "create")})
        self.release = asyncio.Event()
        self.fail = False

    async def token_review(self, token: str) -> dict[str, Any]:
        await self.release.wait()
        if self.fail:
            raise ConnectionError("apiserver unreachable")
        return await super().token_review(token)


async def test_concurrent_misses_share_one_review() -> None:
    rev = SlowReviewer()
    auth = Authorizer(rev, ttl=10)
    calls = [asyncio.ensure_future(auth.authorize("good", "alice", Access("create"))) for _ in range(20)]
    await settle()
    rev.release.set()
    callers = await asyncio.gather(*calls)
    assert {c.username for c in callers} == {SA}
    assert (rev.token_reviews, rev.sars) == (1, 1)


async def test_a_cancelled_caller_does_not_cancel_the_shared_review() -> None:
    rev = SlowReviewer()
    auth = Authorizer(rev, ttl=10)
    first = asyncio.ensure_future(auth.authenticate("good"))
    second = asyncio.ensure_future(auth.authenticate("good"))
    await settle()
    first.cancel()
    rev.release.set()
    assert (await second).username == SA and rev.token_reviews == 1


async def test_a_failed_background_refresh_keeps_the_answer_until_it_expires() -> None:
    clock = Clock()
    rev = SlowReviewer()
    rev.release.set()
    auth = Authorizer(rev, ttl=10, clock=clock, wall_clock=clock)
    await auth.authenticate("good")
    rev.fail = True
    clock.now += 6
    assert (await auth.authenticate("good")).username == SA  # served; its refresh fails in the background
    await settle()
    assert (await auth.authenticate("good")).username == SA  # still cached, a new refresh tried
    clock.now += 5  # now past the first answer's ttl
    with pytest.raises(ConnectionError):  # a caller that must wait gets the review's error
        await auth.authenticate("good")
    await auth.close()


async def test_close_cancels_refreshes_in_flight() -> None:
    rev = SlowReviewer()
    auth = Authorizer(rev, ttl=10)
    pending = asyncio.ensure_future(auth.authenticate("good"))
    await settle()
    await auth.close()
    with pytest.raises(asyncio.CancelledError):
        await pending


def test_caller_namespace_only_for_service_accounts() -> None:
    assert Caller("system:serviceaccount:ns:sa").service_account_namespace == "ns"
    assert Caller("system:serviceaccount:ns").service_account_namespace is None
    assert Caller("alice@example.com").service_account_namespace is None
