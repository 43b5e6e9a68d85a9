"""The Builder API against the real kube-apiserver from hack/ (no node: build pods stay Pending).

Real service accounts with tokens from the TokenRequest API, real RBAC (Roles on
builds.builder.notebook-platform.io), real Jobs created, cancelled and counted. The app runs in-process over
httpx's ASGI transport with settings pointing at the cluster's kubeconfig.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from builder_helpers import HASH, REG, grant, make_sa
from kubernetes import client as kc
from support import wait_for

from builder import constants as c
from builder.agents import render_agent_pod
from builder.app import create_app
from builder.job import render_job
from builder.model import BuildRequest
from builder.settings import Settings
from builder.validate import check_request

pytestmark = pytest.mark.asyncio(loop_scope="session")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body(namespace: str, **over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"context": {"pvc": "workspace", "path": "proj"}, "destination": f"{REG}/{namespace}/app:v1"}
    b.update(over)
    return b


def jobs_in(kube_api: Any, namespace: str) -> list[Any]:
    return kc.BatchV1Api(kube_api).list_namespaced_job(namespace, label_selector=c.BUILD_SELECTOR).items


# ---- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture
def settings(cluster: Any) -> Settings:
    return Settings(
        kubeconfig=cluster.kubeconfig, registry=REG, insecure_registries=[REG],
        max_concurrent_builds_per_namespace=2, auth_cache_ttl_seconds=0, sse_heartbeat_seconds=1,
        # These namespaces have no workspace claims (nothing runs without a node); the volume agent that checks
        # contexts on a real volume is tested in tests/e2e/builder, its pod below by dry run.
        volume_agent=False,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url="http://builder", timeout=60
    ) as client:
        yield client


@pytest.fixture
def user(kube_api: Any, namespace: str) -> str:
    """A notebook service account in `namespace` allowed to build there; returns its token."""
    token = make_sa(kube_api, namespace)
    grant(kube_api, namespace, namespace)
    return token


def url(namespace: str, suffix: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/builds{suffix}"


# ---- the Job itself ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("over", [
    {},
    {"context": {"pvc": "workspace", "path": "."}},
    {"pushSecret": "regcred", "serviceAccountName": "pusher", "cache": False},
    {"buildArgs": {"A": "--destination=x", "PIP_INDEX": "https://p/simple"}, "target": "runtime",
     "labels": {"org.opencontainers.image.source": "notebook"}, "contentHash": HASH, "dockerfile": "docker/Dockerfile"},
])
async def test_rendered_job_passes_server_side_dry_run_and_pod_security_baseline(
    kube_api: Any, namespace_factory: Callable[..., str], settings: Settings, over: dict[str, Any]
) -> None:
    ns = namespace_factory("b-dry", labels={"pod-security.kubernetes.io/enforce": "baseline"})
    if "serviceAccountName" in over:  # pod admission checks that the service account exists
        kc.CoreV1Api(kube_api).create_namespaced_service_account(ns, {"metadata": {"name": over["serviceAccountName"]}})
    checked = check_request(BuildRequest.model_validate(body(ns, **over)), ns, settings)
    job = render_job(checked, settings, ns, "someone")
    created = kc.BatchV1Api(kube_api).create_namespaced_job(ns, job, dry_run="All")
    assert created.spec.backoff_limit == 0
    # Pod Security admission judges pods, not Jobs: submit the template as a pod too.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "dry-", "namespace": ns},
           "spec": job["spec"]["template"]["spec"]}
    kc.CoreV1Api(kube_api).create_namespaced_pod(ns, pod, dry_run="All")


async def test_the_volume_agent_pod_passes_dry_run_under_pod_security_baseline_and_a_quota(
    kube_api: Any, namespace_factory: Callable[..., str], settings: Settings
) -> None:
    ns = namespace_factory("b-agent", labels={"pod-security.kubernetes.io/enforce": "baseline"})
    kc.CoreV1Api(kube_api).create_namespaced_resource_quota(ns, {
        "metadata": {"name": "q"}, "spec": {"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"}}})
    pod = render_agent_pod(ns, "workspace", "t" * 43, settings)
    created = kc.CoreV1Api(kube_api).create_namespaced_pod(ns, pod, dry_run="All")
    assert created.spec.containers[0].security_context.capabilities.add == ["DAC_OVERRIDE"]


# ---- create / get / list / delete -------------------------------------------------------------------------

async def test_post_creates_a_pending_build_job_that_get_and_list_show(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    r = await api.post(url(namespace), json=body(namespace), headers=bearer(user))
    assert r.status_code == 201, r.text
    build = r.json()
    name = build["metadata"]["name"]
    assert build["kind"] == "Build" and build["status"]["phase"] == "Pending"
    assert build["spec"]["destination"] == f"{REG}/{namespace}/app:v1"

    [job] = jobs_in(kube_api, namespace)
    assert job.metadata.name == name
    assert job.metadata.annotations[c.ANNOTATION_REQUESTED_BY] == f"system:serviceaccount:{namespace}:notebook"
    assert job.spec.template.spec.containers[0].volume_mounts[0].sub_path == "proj"

    got = (await api.get(url(namespace, f"/{name}"), headers=bearer(user))).json()
    assert got["metadata"]["uid"] == job.metadata.uid and got["status"]["phase"] == "Pending"
    assert got["status"]["message"]  # says what it waits for

    items = (await api.get(url(namespace), headers=bearer(user))).json()["items"]
    assert [b["metadata"]["name"] for b in items] == [name]
    assert (await api.get(url(namespace), params={"phase": "Pending"}, headers=bearer(user))).json()["items"]
    assert not (await api.get(url(namespace), params={"phase": "Succeeded"}, headers=bearer(user))).json()["items"]


async def test_delete_cancels_the_build_its_job_stops_and_it_reads_cancelled(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    name = (await api.post(url(namespace), json=body(namespace), headers=bearer(user))).json()["metadata"]["name"]
    selector = f"{c.LABEL_JOB_NAME}={name}"
    wait_for(lambda: kc.CoreV1Api(kube_api).list_namespaced_pod(namespace, label_selector=selector).items,
             timeout=90, what="the Job controller to create the build pod")

    r = await api.delete(url(namespace, f"/{name}"), headers=bearer(user))
    assert r.status_code == 200, r.text
    assert r.json()["status"]["phase"] == "Cancelled"
    assert "cancelled by system:serviceaccount" in r.json()["status"]["message"]

    batch, core = kc.BatchV1Api(kube_api), kc.CoreV1Api(kube_api)

    def stopped() -> bool:
        job = batch.read_namespaced_job(name, namespace)
        failed = any(cd.type == "Failed" and cd.status == "True" for cd in job.status.conditions or [])
        pods = core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_JOB_NAME}={name}").items
        return failed and not [p for p in pods if not p.metadata.deletion_timestamp]

    wait_for(stopped, timeout=90, what="the cancelled Job to stop its pod")  # slow under a loaded CPU
    got = (await api.get(url(namespace, f"/{name}"), headers=bearer(user))).json()
    assert got["status"]["phase"] == "Cancelled"
    assert batch.read_namespaced_job(name, namespace).spec.ttl_seconds_after_finished == 86400  # still cleaned up

    again = await api.delete(url(namespace, f"/{name}"), headers=bearer(user))
    assert again.status_code == 409 and "already finished (Cancelled)" in again.json()["detail"]


async def test_unknown_build_and_foreign_jobs_are_404(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    assert (await api.get(url(namespace, "/build-nope"), headers=bearer(user))).status_code == 404
    # A Job the user made themselves is not a Build: not shown, not cancellable through the builder.
    kc.BatchV1Api(kube_api).create_namespaced_job(namespace, {
        "metadata": {"name": "mine"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "busybox"}]}}},
    })
    assert (await api.get(url(namespace, "/mine"), headers=bearer(user))).status_code == 404
    assert (await api.delete(url(namespace, "/mine"), headers=bearer(user))).status_code == 404
    assert (await api.get(url(namespace), headers=bearer(user))).json()["items"] == []


# ---- who may ----------------------------------------------------------------------------------------------

async def test_forged_and_revoked_tokens_are_401(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    header, payload, _sig = user.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    # A genuine token minted for another audience (another service) is not a token for us.
    other_audience = kc.CoreV1Api(kube_api).create_namespaced_service_account_token(
        "notebook", namespace, {"spec": {"audiences": ["vault"], "expirationSeconds": 600}}).status.token
    for token in (f"{header}.{forged_payload}.{_sig}", "not-a-token", user[:-4] + "AAAA", other_audience):
        r = await api.post(url(namespace), json=body(namespace), headers=bearer(token))
        assert r.status_code == 401, (token[:20], r.text)
        assert "token" in r.json()["detail"]
    # Deleting the service account revokes its tokens (they are bound to its uid).
    kc.CoreV1Api(kube_api).delete_namespaced_service_account("notebook", namespace)
    r = await api.get(url(namespace), headers=bearer(user))
    assert r.status_code == 401
    assert not jobs_in(kube_api, namespace)


async def test_without_an_rbac_grant_every_verb_is_403(api: httpx.AsyncClient, kube_api: Any, namespace: str) -> None:
    token = make_sa(kube_api, namespace, "stranger")
    r = await api.post(url(namespace), json=body(namespace), headers=bearer(token))
    assert r.status_code == 403
    assert "may not create builds.builder.notebook-platform.io" in r.json()["detail"]
    assert (await api.get(url(namespace), headers=bearer(token))).status_code == 403
    assert (await api.get(url(namespace, "/x"), headers=bearer(token))).status_code == 403
    assert (await api.delete(url(namespace, "/x"), headers=bearer(token))).status_code == 403
    assert not jobs_in(kube_api, namespace)


async def test_grants_are_per_verb(api: httpx.AsyncClient, kube_api: Any, namespace: str) -> None:
    token = make_sa(kube_api, namespace, "viewer")
    grant(kube_api, namespace, namespace, "viewer", verbs=("get", "list"))
    assert (await api.get(url(namespace), headers=bearer(token))).status_code == 200
    r = await api.post(url(namespace), json=body(namespace), headers=bearer(token))
    assert r.status_code == 403 and "may not create" in r.json()["detail"]


async def test_building_from_a_volume_the_caller_may_not_read_is_403(
    api: httpx.AsyncClient, kube_api: Any, namespace: str
) -> None:
    token = make_sa(kube_api, namespace, "novol")
    grant(kube_api, namespace, namespace, "novol", volume=False)
    r = await api.post(url(namespace), json=body(namespace), headers=bearer(token))
    assert r.status_code == 403 and "persistentvolumeclaims 'workspace'" in r.json()["detail"]
    r = await api.post(url(namespace), json=body(namespace, pushSecret="regcred"), headers=bearer(token))
    assert r.status_code == 403


async def test_another_namespace_is_403_even_with_a_grant_there(
    api: httpx.AsyncClient, kube_api: Any, namespace_factory: Callable[..., str]
) -> None:
    alice, bob = namespace_factory("b-alice"), namespace_factory("b-bob")
    token = make_sa(kube_api, alice)
    grant(kube_api, alice, alice)
    grant(kube_api, bob, alice)  # bob's namespace even grants alice's notebook: still refused
    for req in (api.post(url(bob), json=body(bob), headers=bearer(token)), api.get(url(bob), headers=bearer(token))):
        r = await req
        assert r.status_code == 403 and f"own namespace '{alice}'" in r.json()["detail"]
    # And alice cannot push into bob's repositories from her own namespace.
    r = await api.post(url(alice), json=body(alice, destination=f"{REG}/{bob}/app:v1"), headers=bearer(token))
    assert r.status_code == 403 and "destination" in r.json()["detail"]
    assert not jobs_in(kube_api, bob) and not jobs_in(kube_api, alice)


# ---- limits and reuse -------------------------------------------------------------------------------------

async def test_more_builds_than_the_namespace_limit_is_429_until_one_finishes(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    names = []
    for _ in range(2):
        r = await api.post(url(namespace), json=body(namespace), headers=bearer(user))
        assert r.status_code == 201
        names.append(r.json()["metadata"]["name"])
    r = await api.post(url(namespace), json=body(namespace), headers=bearer(user))
    assert r.status_code == 429 and r.headers["retry-after"]
    assert "already has 2 builds pending or running" in r.json()["detail"]
    assert len(jobs_in(kube_api, namespace)) == 2

    assert (await api.delete(url(namespace, f"/{names[0]}"), headers=bearer(user))).status_code == 200
    r = await api.post(url(namespace), json=body(namespace), headers=bearer(user))
    assert r.status_code == 201


async def test_concurrent_requests_never_exceed_the_limit(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    results = await asyncio.gather(*[
        api.post(url(namespace), json=body(namespace), headers=bearer(user)) for _ in range(6)
    ])
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {201, 429} and codes.count(201) <= 2
    wait_for(lambda: len(jobs_in(kube_api, namespace)) == codes.count(201), timeout=90,
             what="refused Jobs to be deleted")


async def test_identical_content_reuses_a_succeeded_build(
    api: httpx.AsyncClient, kube_api: Any, namespace: str, user: str
) -> None:
    req = body(namespace, contentHash=HASH)
    first = await api.post(url(namespace), json=req, headers=bearer(user))
    assert first.status_code == 201
    name = first.json()["metadata"]["name"]
    # Pending, not finished: an identical request is a new build, not a reuse.
    second = await api.post(url(namespace), json=req, headers=bearer(user))
    assert second.status_code == 201
    previous = second.json()["metadata"]["name"]

    # NOT a real build: without a node nothing runs, so we write the result annotations the API itself records
    # when it sees Kaniko's digest in a pod's termination message. This tests the reuse lookup only; a real
    # Kaniko build is covered by the e2e tests once the node exists.
    digest = "sha256:" + "d1" * 32
    kc.BatchV1Api(kube_api).patch_namespaced_job(name, namespace, {"metadata": {
        "annotations": {c.ANNOTATION_PHASE: "Succeeded", c.ANNOTATION_DIGEST: digest},
        "labels": {c.LABEL_ACTIVE: None}}})
    # The builder reads Jobs from its watch: a write by someone else shows within moments, not at once.
    for _ in range(100):
        got = await api.get(url(namespace, f"/{name}"), headers=bearer(user))
        if got.json()["status"]["phase"] == "Succeeded":
            break
        await asyncio.sleep(0.05)

    again = await api.post(url(namespace), json=req, headers=bearer(user))
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["name"] == name
    assert again.json()["status"]["digest"] == digest
    assert again.json()["status"]["image"] == f"{REG}/{namespace}/app@{digest}"
    assert len(jobs_in(kube_api, namespace)) == 2

    # Anything that changes the image is a new build.
    for changed in (body(namespace, contentHash="sha256:" + "00" * 32),
                    body(namespace, contentHash=HASH, destination=f"{REG}/{namespace}/app:v2"),
                    body(namespace, contentHash=HASH, buildArgs={"X": "1"})):
        await api.delete(url(namespace, f"/{previous}"), headers=bearer(user))  # stay under the limit of 2
        r = await api.post(url(namespace), json=changed, headers=bearer(user))
        assert r.status_code == 201, r.text
        previous = r.json()["metadata"]["name"]


# ---- logs -------------------------------------------------------------------------------------------------

async def test_log_stream_says_waiting_sends_heartbeats_and_ends_failed_when_cancelled(
    api: httpx.AsyncClient, namespace: str, user: str
) -> None:
    created = await api.post(url(namespace), json=body(namespace), headers=bearer(user))
    assert created.status_code == 201, created.text
    name = created.json()["metadata"]["name"]
    # httpx's ASGI transport hands over the body when the response ends, so cancel while the stream is open.
    stream = asyncio.create_task(api.get(url(namespace, f"/{name}/logs"), headers=bearer(user)))
    await asyncio.sleep(3)
    assert (await api.delete(url(namespace, f"/{name}"), headers=bearer(user))).status_code == 200
    r = await asyncio.wait_for(stream, 60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    text = r.text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert events[0]["phase"] == "waiting"
    assert events[-1]["phase"] == "failed" and "cancelled" in events[-1]["message"]
    assert ": heartbeat" in text
    assert text.startswith("retry: ")


async def test_plain_logs_and_a_finished_stream(api: httpx.AsyncClient, namespace: str, user: str) -> None:
    name = (await api.post(url(namespace), json=body(namespace), headers=bearer(user))).json()["metadata"]["name"]
    r = await api.get(url(namespace, f"/{name}/logs"), params={"follow": "false"}, headers=bearer(user))
    assert r.status_code == 200 and r.text == "" and r.headers["x-build-phase"] == "Pending"
    await api.delete(url(namespace, f"/{name}"), headers=bearer(user))
    # A finished build's stream is short: its final phase, then the end (resuming after line 5 changes nothing).
    r = await api.get(url(namespace, f"/{name}/logs"), headers={**bearer(user), "Last-Event-ID": "5"})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [e["phase"] for e in events] == ["failed"]
    assert (await api.get(url(namespace, "/build-nope/logs"), headers=bearer(user))).status_code == 404


async def wait_ready(client: httpx.AsyncClient) -> list[httpx.Response]:
    """Polls /readyz until 200 (the watch cache lists within moments of start); returns every answer."""
    answers = [await client.get("/readyz")]
    for _ in range(200):
        if answers[-1].status_code == 200:
            break
        await asyncio.sleep(0.05)
        answers.append(await client.get("/readyz"))
    return answers


async def test_readyz_reports_the_apiserver_and_the_listed_cache(api: httpx.AsyncClient) -> None:
    answers = await wait_ready(api)
    assert answers[-1].status_code == 200 and answers[-1].json() == {"status": "ready"}
    assert all(r.json() == {"detail": "build cache not yet listed"} for r in answers[:-1])


# ---- several replicas, each with its own watch cache --------------------------------------------------------

async def test_two_replicas_see_each_others_builds_and_exactly_the_first_two_of_racing_requests_go_ahead(
    settings: Settings, kube_api: Any, namespace: str, user: str
) -> None:
    patient = settings.model_copy(update={"cache_wait_seconds": 10.0})
    apps = [create_app(patient), create_app(patient)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://builder", timeout=60)
                   for a in apps]
        try:
            for client in clients:  # each replica lists before it says ready
                assert (await wait_ready(client))[-1].status_code == 200

            results = await asyncio.gather(*[
                clients[i % 2].post(url(namespace), json=body(namespace), headers=bearer(user)) for i in range(8)
            ])
            codes = sorted(r.status_code for r in results)
            assert codes.count(201) == 2 and codes.count(429) == 6, [r.text for r in results]
            made = {r.json()["metadata"]["name"] for r in results if r.status_code == 201}

            # Each replica lists the builds made through the other (its watch delivers them).
            for client in clients:
                for _ in range(100):
                    listed = (await client.get(url(namespace), headers=bearer(user))).json()["items"]
                    if {b["metadata"]["name"] for b in listed} == made:
                        break
                    await asyncio.sleep(0.05)
                assert {b["metadata"]["name"] for b in listed} == made
        finally:
            for client in clients:
                await client.aclose()
    wait_for(lambda: len(jobs_in(kube_api, namespace)) == 2, timeout=90, what="refused Jobs to be deleted")
