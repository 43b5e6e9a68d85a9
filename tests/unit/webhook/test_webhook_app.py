"""The HTTP service over ASGI (no sockets), with a PodDefault cache filled by hand."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import jsonpatch
import pytest
from poddefault_builders import NS, container, decode_patch, pod, poddefault, review

from webhook.app import create_app
from webhook.cache import PodDefaultCache
from webhook.metrics import Metrics
from webhook.model import CompiledPodDefault
from webhook.mutate import apply_poddefaults
from webhook.settings import Settings

ENV = {"name": "POD_DEFAULT", "value": "Testing is enabled"}


class FakeRecorder:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []

    def record(self, pd: CompiledPodDefault, message: str) -> None:
        self.recorded.append((pd.name, message))


class Service:
    def __init__(self, poddefaults: list[dict[str, Any]] | None = None, ready: bool = True, **settings: Any):
        self.cache = PodDefaultCache()
        if ready:
            self.cache.replace(poddefaults or [], "100")
        self.events = FakeRecorder()
        self.metrics = Metrics()
        self.app = create_app(Settings(**settings), self.cache, self.metrics, self.events)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://webhook")

    async def admit(self, body: Any, **kw: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post("/mutate", content=content,
                                      headers={"content-type": "application/json", **kw.pop("headers", {})}, **kw)


def labelled(**kw: Any) -> dict[str, Any]:
    return pod(labels={"testing": "true"}, **kw)


TESTING = poddefault("testing", selector={"matchLabels": {"testing": "true"}}, env=[ENV],
                     volumes=[{"name": "secret-volume", "secret": {"secretName": "gcp-secret"}}],
                     volumeMounts=[{"name": "secret-volume", "mountPath": "/secret/gcp"}],
                     annotations={"example.com/owner~team": "ml/platform"})


async def test_matching_pod_gets_a_json_patch_that_yields_the_cores_result():
    svc = Service([TESTING])
    body = review(labelled())
    resp = await svc.admit(body)
    assert resp.status_code == 200
    out = resp.json()
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == body["request"]["uid"]
    assert out["response"]["allowed"] is True
    ops = decode_patch(out["response"])
    assert jsonpatch.apply_patch(body["request"]["object"], ops) == apply_poddefaults(labelled(), [TESTING])


async def test_patch_escapes_slash_and_tilde_in_annotation_keys():
    svc = Service([TESTING])
    ops = decode_patch((await svc.admit(review(labelled(annotations={"keep": "me"})))).json()["response"])
    paths = {op["path"] for op in ops}
    assert "/metadata/annotations/example.com~1owner~0team" in paths
    assert "/metadata/annotations/poddefault.admission.kubeflow.org~1poddefault-testing" in paths


async def test_patch_uses_small_per_field_operations():
    svc = Service([TESTING])
    p = labelled(containers=[container("main", env=[{"name": "OWN", "value": "1"}])])
    ops = decode_patch((await svc.admit(review(p))).json()["response"])
    assert {"op": "add", "path": "/spec/containers/0/env/1", "value": ENV} in ops
    assert all(op["path"] not in ("", "/spec", "/spec/containers") for op in ops)


async def test_namespace_missing_from_the_object_is_taken_from_the_request():
    svc = Service([TESTING])
    body = review(labelled(namespace=None), namespace=NS)
    ops = decode_patch((await svc.admit(body)).json()["response"])
    assert not any(op["path"].startswith("/metadata/namespace") for op in ops)
    patched = jsonpatch.apply_patch(body["request"]["object"], ops)
    assert patched["spec"]["containers"][0]["env"] == [ENV]
    assert "namespace" not in patched["metadata"]


async def test_pod_without_metadata_still_gets_a_valid_patch():
    svc = Service([poddefault("all", selector={}, env=[ENV])])
    obj = {"spec": {"containers": [container("main")]}}
    ops = decode_patch((await svc.admit(review(obj))).json()["response"])
    patched = jsonpatch.apply_patch(obj, ops)
    assert patched["spec"]["containers"][0]["env"] == [ENV]
    assert "namespace" not in patched["metadata"]


async def test_pod_without_matching_poddefaults_is_allowed_without_patch():
    svc = Service([TESTING])
    out = (await svc.admit(review(pod(labels={"other": "x"})))).json()["response"]
    assert out["allowed"] is True
    assert "patch" not in out and "patchType" not in out


async def test_conflict_is_denied_with_both_names_and_recorded_on_each_poddefault():
    other = poddefault("other", selector={"matchLabels": {"testing": "true"}},
                       env=[{"name": "POD_DEFAULT", "value": "something else"}])
    svc = Service([TESTING, other])
    out = (await svc.admit(review(labelled()))).json()["response"]
    assert out["allowed"] is False
    assert out["status"]["code"] == 400
    assert 'PodDefaults "other" and "testing"' in out["status"]["message"]
    assert 'env "POD_DEFAULT"' in out["status"]["message"]
    assert sorted(name for name, _ in svc.events.recorded) == ["other", "testing"]
    assert all(f"{NS}/nb" in message for _, message in svc.events.recorded)


async def test_dry_run_conflict_records_no_event():
    other = poddefault("other", selector={}, env=[{"name": "POD_DEFAULT", "value": "else"}])
    svc = Service([TESTING, other])
    out = (await svc.admit(review(labelled(), dry_run=True))).json()["response"]
    assert out["allowed"] is False
    assert svc.events.recorded == []


async def test_poddefault_with_invalid_selector_is_named_in_a_warning():
    bad = poddefault("broken", selector={"matchExpressions": [{"key": "a", "operator": "Is"}]})
    svc = Service([TESTING, bad])
    out = (await svc.admit(review(labelled()))).json()["response"]
    assert out["allowed"] is True
    assert any("broken" in w for w in out["warnings"])


@pytest.mark.parametrize(("resource", "operation"), [
    (("", "v1", "pods"), "UPDATE"),
    (("", "v1", "pods"), "DELETE"),
    (("", "v1", "configmaps"), "CREATE"),
    (("apps", "v1", "deployments"), "CREATE"),
])
async def test_anything_but_pod_create_is_allowed_untouched(resource, operation):
    svc = Service([TESTING])
    body = review(labelled(), resource=resource, operation=operation)
    out = (await svc.admit(body)).json()["response"]
    assert out == {"uid": body["request"]["uid"], "allowed": True}


async def test_pod_subresource_is_allowed_untouched():
    svc = Service([TESTING])
    body = review(labelled())
    body["request"]["subResource"] = "ephemeralcontainers"
    assert "patch" not in (await svc.admit(body)).json()["response"]


# --- hostile input --------------------------------------------------------------------------------------


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return body


_DELETE = object()
GOOD = review(labelled(), uid="u-1")


@pytest.mark.parametrize(("body", "detail"), [
    (b"not json", "not JSON"),
    (b"", "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"apiVersion": NaN}', "not JSON"),
    (_with(GOOD, "kind", "Pod"), "expected apiVersion"),
    (_with(GOOD, "apiVersion", "admission.k8s.io/v1beta1"), "expected apiVersion"),
    (_with(GOOD, "request", _DELETE), "without request"),
    (_with(GOOD, "request", "x"), "without request"),
    (_with(GOOD, "request.uid", _DELETE), "request.uid"),
    (_with(GOOD, "request.uid", ""), "request.uid"),
    (_with(GOOD, "request.uid", 7), "request.uid"),
    (_with(GOOD, "request.resource", _DELETE), "request.resource"),
    (_with(GOOD, "request.object", _DELETE), "without request.object"),
    (_with(GOOD, "request.object", [1, 2]), "request.object"),
    (_with(GOOD, "request.object.spec", _DELETE), "not a pod: spec"),
    (_with(GOOD, "request.object.spec.containers", []), "not a pod: spec.containers"),
    (_with(GOOD, "request.object.spec.containers", [{"image": "x"}]), "not a pod"),
    (_with(GOOD, "request.object.metadata.labels", {"testing": 1}), "not a pod: metadata.labels"),
    (_with(GOOD, "request.object.spec.containers", [{"name": "m", "env": "X=1"}]), "not a pod"),
])
async def test_malformed_admission_review_is_a_clear_400(body, detail):
    resp = await Service([TESTING]).admit(body)
    assert resp.status_code == 400
    assert detail in resp.json()["detail"]


async def test_deeply_nested_json_is_a_400_not_a_crash():
    svc = Service([TESTING])
    deep = b"[" * 100_000 + b"]" * 100_000
    assert (await svc.admit(deep)).status_code == 400
    nested: Any = "x"
    for _ in range(80):
        nested = {"n": nested}
    body = _with(GOOD, "request.object.metadata.annotations", None)
    body["request"]["object"]["spec"]["containers"][0]["extra"] = nested
    resp = await svc.admit(body)
    assert resp.status_code == 400 and "nested" in resp.json()["detail"]


async def test_body_over_three_mebibytes_is_a_413():
    svc = Service([TESTING])
    big = json.dumps(_with(GOOD, "request.object.metadata.annotations", {"pad": "x" * (3 * 1024 * 1024)})).encode()
    assert (await svc.admit(big)).status_code == 413


async def test_body_over_the_limit_without_content_length_is_a_413():
    svc = Service([TESTING])

    async def chunks():
        for _ in range(4):
            yield b" " * (1024 * 1024)

    resp = await svc.client.post("/mutate", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


async def test_body_that_never_finishes_is_a_408_not_a_hang():
    svc = Service([TESTING], body_timeout=0.2)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": b'{"apiVersion": ', "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/mutate", "raw_path": b"/mutate", "query_string": b"",
             "headers": [(b"content-type", b"application/json")], "http_version": "1.1", "scheme": "http",
             "server": ("webhook", 443), "client": ("apiserver", 1234), "root_path": "", "asgi": {"version": "3.0"}}
    await asyncio.wait_for(svc.app(scope, receive, send), timeout=5)
    assert next(m for m in sent if m.get("type") == "http.response.start")["status"] == 408


async def test_internal_error_fails_closed_by_default_and_never_500(monkeypatch):
    import webhook.app as app_module

    def boom(*args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(app_module, "mutate", boom)
    resp = await Service([TESTING]).admit(review(labelled()))
    assert resp.status_code == 200
    assert resp.json()["response"]["allowed"] is False
    resp = await Service([TESTING], failure_policy="Ignore").admit(review(labelled()))
    assert resp.json()["response"]["allowed"] is True


# --- readiness, health, metrics, OpenAPI --------------------------------------------------------------


async def test_not_ready_until_the_cache_has_listed():
    svc = Service(ready=False)
    assert (await svc.client.get("/readyz")).status_code == 503
    out = (await svc.admit(review(labelled()))).json()["response"]
    assert out["allowed"] is False and out["status"]["code"] == 503
    svc.cache.replace([TESTING], "5")
    assert (await svc.client.get("/readyz")).status_code == 200
    assert (await svc.admit(review(labelled()))).json()["response"]["patchType"] == "JSONPatch"


async def test_not_ready_with_ignore_policy_admits_unchanged_with_a_warning():
    svc = Service(ready=False, failure_policy="Ignore")
    out = (await svc.admit(review(labelled()))).json()["response"]
    assert out["allowed"] is True and "patch" not in out and out["warnings"]


async def test_healthz_answers():
    assert (await Service(ready=False).client.get("/healthz")).status_code == 200


async def test_metrics_count_outcomes_and_expose_latency_and_cache_state():
    other = poddefault("other", selector={"matchLabels": {"clash": "true"}},
                       env=[{"name": "POD_DEFAULT", "value": "x"}])
    svc = Service([TESTING, other])
    await svc.admit(review(labelled()))
    await svc.admit(review(pod(labels={})))
    await svc.admit(review(pod(labels={"testing": "true", "clash": "true"})))
    await svc.admit(b"garbage")
    text = (await svc.client.get("/metrics")).text
    assert 'poddefault_webhook_admissions_total{outcome="mutated"} 1.0' in text
    assert 'poddefault_webhook_admissions_total{outcome="unchanged"} 1.0' in text
    assert 'poddefault_webhook_admissions_total{outcome="conflict"} 1.0' in text
    assert 'poddefault_webhook_rejected_requests_total{code="400"} 1.0' in text
    assert "poddefault_webhook_admission_duration_seconds_bucket" in text
    assert "poddefault_webhook_cache_poddefaults 2.0" in text
    assert "poddefault_webhook_cache_ready 1.0" in text
    assert "poddefault_webhook_cache_age_seconds" in text
    assert "poddefault_webhook_cache_last_sync_timestamp_seconds" in text


async def test_openapi_document_describes_the_admission_review():
    doc = (await Service().client.get("/openapi.json")).json()
    body = doc["paths"]["/mutate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/AdmissionReview"}
    assert "AdmissionRequest" in doc["components"]["schemas"]


async def test_broken_event_recorder_does_not_change_the_answer():
    class Broken:
        def record(self, pd: CompiledPodDefault, message: str) -> None:
            raise RuntimeError("no loop")

    other = poddefault("other", selector={}, env=[{"name": "POD_DEFAULT", "value": "else"}])
    svc = Service([TESTING, other])
    svc.app.state.admitter.events = Broken()
    resp = await svc.admit(review(labelled()))
    assert resp.status_code == 200 and resp.json()["response"]["allowed"] is False
