"""The FastAPI app's refusals that happen before any Kubernetes call (so no apiserver is needed).

Only the reviewer is replaced, by a table of who may do what; the Kube edge is a placeholder that fails if
touched. Everything that reaches Kubernetes is tested in tests/integration/builder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from builder.app import create_app
from builder.kube import Kube
from builder.settings import Settings

REG = "registry.local:5000"
SA = "system:serviceaccount:alice:default"
URL = "/api/v1/namespaces/alice/builds"
AUTH = {"Authorization": "Bearer good"}


class Reviewer:
    def __init__(self, grants: set[tuple[str, str]]) -> None:
        self.grants = grants

    async def token_review(self, token: str) -> dict[str, Any]:
        if token == "good":
            return {"status": {"authenticated": True, "user": {"username": SA}}}
        return {"status": {"authenticated": False}}

    async def subject_access_review(self, spec: dict[str, Any]) -> dict[str, Any]:
        a = spec["resourceAttributes"]
        return {"status": {"allowed": (a["verb"], a["resource"]) in self.grants}}


class Untouchable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"this test must not reach Kubernetes (called {name})")


ALL = {("create", "builds"), ("get", "builds"), ("list", "builds"), ("delete", "builds"),
       ("get", "persistentvolumeclaims"), ("get", "secrets")}


@pytest.fixture
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    grants = getattr(request, "param", ALL)
    app = create_app(Settings(registry=REG, max_body_bytes=2048), kube=cast(Kube, Untouchable()),
                     reviewer=Reviewer(grants))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://builder") as c:
            yield c


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"context": {"pvc": "workspace", "path": "proj"}, "destination": f"{REG}/alice/app:v1"}
    b.update(over)
    return b


async def test_no_token_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=body())
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization" in r.json()["detail"]


async def test_forged_token_is_401_before_the_body_is_looked_at(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json={"podSpec": {}}, headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401 and "forged" in r.json()["detail"]


async def test_other_namespace_is_403(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/namespaces/bob/builds", json=body(), headers=AUTH)
    assert r.status_code == 403 and "own namespace 'alice'" in r.json()["detail"]


@pytest.mark.parametrize("client", [{("create", "builds")}], indirect=True)
async def test_building_from_a_volume_the_caller_cannot_read_is_403(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=body(), headers=AUTH)
    assert r.status_code == 403 and "get persistentvolumeclaims 'workspace'" in r.json()["detail"]


@pytest.mark.parametrize("client", [ALL - {("get", "secrets")}], indirect=True)
async def test_using_a_push_secret_the_caller_cannot_read_is_403(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=body(pushSecret="regcred"), headers=AUTH)
    assert r.status_code == 403 and "get secrets 'regcred'" in r.json()["detail"]


async def test_using_a_service_account_needs_the_right_to_mint_its_tokens(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=body(serviceAccountName="pusher"), headers=AUTH)
    assert r.status_code == 403 and "create serviceaccounts/token 'pusher'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("over", "status", "fragment"),
    [
        ({"context": {"pvc": "workspace", "path": "../bob"}}, 400, "context.path"),
        ({"context": {"pvc": "workspace", "path": "/etc"}}, 400, "context.path"),
        ({"dockerfile": "../../Dockerfile"}, 400, "dockerfile"),
        ({"destination": f"{REG}/alice/../bob/app"}, 400, "destination"),
        ({"destination": f"{REG}/bob/app"}, 403, f"{REG}/alice/..."),
        ({"destination": "docker.io/alice/app"}, 403, "outside the repositories allowed"),
        ({"destination": f"{REG}/alice-evil/app"}, 403, "destination"),
        ({"podSpec": {"hostPID": True}}, 422, "body.podSpec: unknown field"),
        ({"context": {"pvc": "workspace"}}, 422, "body.context.path: Field required"),
        ({"buildArgs": {"A": "x\ny"}}, 422, "body.buildArgs.A"),
    ],
)
async def test_hostile_bodies_are_refused_naming_the_field(client: httpx.AsyncClient, over, status, fragment) -> None:
    r = await client.post(URL, json=body(**over), headers=AUTH)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, content=b'{"context": ', headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and "json" in r.json()["detail"].lower()


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=body(labels={f"k{i}": "v" * 100 for i in range(30)}), headers=AUTH)
    assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    r = await client.post(URL, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


async def test_invalid_namespace_in_the_url_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/namespaces/Not_A_Namespace/builds", headers=AUTH)
    assert r.status_code == 422 and "namespace" in r.json()["detail"]


async def test_openapi_describes_the_request_exactly(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    req = spec["components"]["schemas"]["BuildRequest"]
    assert req["additionalProperties"] is False
    assert set(req["properties"]) == {"context", "dockerfile", "destination", "buildArgs", "target", "labels", "cache",
                                      "pushSecret", "serviceAccountName", "contentHash"}
    post = spec["paths"]["/api/v1/namespaces/{namespace}/builds"]["post"]
    assert {"200", "201", "400", "401", "403", "413", "422", "429"} <= set(post["responses"])


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.post(URL, json=body())
    text = (await client.get("/metrics")).text
    assert "builder_http_request_duration_seconds_bucket" in text
    assert 'builder_auth_refusals_total{status="401"}' in text
