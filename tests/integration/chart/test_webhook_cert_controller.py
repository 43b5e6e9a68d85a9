"""webhook/certs.py against the real apiserver: it creates the Secret, keeps the caBundle equal to it, renews
and rotates, and two replicas racing each other converge on one certificate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from support import unique_name

from webhook import certs

DAY = dt.timedelta(days=1)
# kube_async lives on the session loop (asyncio_default_fixture_loop_scope), so the tests must too.
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def webhook_configuration(kube_api: Any, namespace: str) -> Iterator[str]:
    """A MutatingWebhookConfiguration that can never match anything (a namespace label no namespace has,
    failurePolicy Ignore) and has no caBundle yet; deleted afterwards."""
    from kubernetes import client

    name = unique_name("nbp-test-certs")
    never = {"notebook-platform.io/test-never": name}
    hook = {
        "name": "poddefaults.test.notebook-platform.io",
        "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Ignore", "timeoutSeconds": 1,
        "clientConfig": {"service": {"name": "wh", "namespace": namespace, "path": "/mutate", "port": 443}},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "namespaceSelector": {"matchLabels": never}, "objectSelector": {"matchLabels": never},
    }
    second = {**hook, "name": "second.test.notebook-platform.io"}
    body = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name, "labels": {"notebook-platform.io/test": "true"}}, "webhooks": [hook, second]}
    api = client.AdmissionregistrationV1Api(kube_api)
    api.create_mutating_webhook_configuration(body)
    try:
        yield name
    finally:
        with contextlib.suppress(client.ApiException):
            api.delete_mutating_webhook_configuration(name)


@pytest.fixture
def settings(namespace: str, webhook_configuration: str) -> certs.CertControllerSettings:
    return certs.CertControllerSettings(
        cert_controller_enabled=True, cert_secret_name="webhook-tls", cert_namespace=namespace,
        cert_service_name="wh", cert_webhook_configuration=webhook_configuration, cert_controller_interval=0.2)


def read_secret(kube_api: Any, s: certs.CertControllerSettings) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube_api).read_namespaced_secret(s.cert_secret_name, s.cert_namespace)


def bundles(kube_api: Any, name: str) -> list[bytes]:
    from kubernetes import client

    mwc = client.AdmissionregistrationV1Api(kube_api).read_mutating_webhook_configuration(name)
    return [base64.b64decode(w.client_config.ca_bundle or "") for w in mwc.webhooks]


def data_of(secret: Any) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in secret.data.items()}


async def test_controller_creates_the_secret_and_sets_every_ca_bundle(
        kube_api: Any, kube_async: Any, settings: certs.CertControllerSettings) -> None:
    result = await certs.reconcile(settings, kube_async)
    assert result.secret_written and result.ca_bundle_patched

    secret = read_secret(kube_api, settings)
    data = data_of(secret)
    assert secret.type == "kubernetes.io/tls"
    assert set(data) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "notebook-platform"
    cert = certs.load_certs(data["tls.crt"])[0]
    assert certs.covers(cert, [f"wh.{settings.cert_namespace}.svc"])
    assert certs.signed_by(cert, certs.load_certs(data["ca.crt"])[0])
    assert bundles(kube_api, settings.cert_webhook_configuration) == [data["ca.crt"], data["ca.crt"]]

    # A second pass changes nothing: no write, no new resourceVersion.
    again = await certs.reconcile(settings, kube_async)
    assert not again.secret_written and not again.ca_bundle_patched
    assert read_secret(kube_api, settings).metadata.resource_version == secret.metadata.resource_version


async def test_two_replicas_starting_together_create_one_secret(
        kube_api: Any, kube_async: Any, settings: certs.CertControllerSettings) -> None:
    results = await asyncio.gather(certs.reconcile(settings, kube_async), certs.reconcile(settings, kube_async))
    assert sum(r.secret_written for r in results) == 1
    data = data_of(read_secret(kube_api, settings))
    assert bundles(kube_api, settings.cert_webhook_configuration) == [data["ca.crt"]] * 2


async def test_two_replicas_renewing_together_write_one_new_certificate_under_the_same_ca(
        kube_api: Any, kube_async: Any, settings: certs.CertControllerSettings) -> None:
    await certs.reconcile(settings, kube_async)
    before = data_of(read_secret(kube_api, settings))
    later = dt.datetime.now(dt.UTC) + 340 * DAY  # inside the 30-day margin of the 365-day certificate

    results = await asyncio.gather(certs.reconcile(settings, kube_async, later),
                                   certs.reconcile(settings, kube_async, later))
    assert sum(r.secret_written for r in results) == 1  # the other got 409, re-read, found it fresh
    after = data_of(read_secret(kube_api, settings))
    assert after["tls.crt"] != before["tls.crt"]
    assert after["ca.crt"] == before["ca.crt"] and after["ca.key"] == before["ca.key"]
    assert not certs.renewal_due(certs.load_certs(after["tls.crt"])[0], later, 30 * DAY)
    assert not any(r.ca_bundle_patched for r in results)  # same CA: the apiserver already trusts it


async def test_ca_rotation_keeps_the_old_ca_in_the_bundle(
        kube_api: Any, kube_async: Any, settings: certs.CertControllerSettings) -> None:
    await certs.reconcile(settings, kube_async)
    old = data_of(read_secret(kube_api, settings))
    old_ca = certs.load_certs(old["ca.crt"])[0]
    near_end = old_ca.not_valid_after_utc - 10 * DAY

    result = await certs.reconcile(settings, kube_async, near_end)
    assert result.secret_written and result.ca_bundle_patched and "ca-renewal-due" in result.reasons
    new = data_of(read_secret(kube_api, settings))
    chain = certs.load_certs(new["ca.crt"])
    assert chain[1] == old_ca and chain[0] != old_ca
    assert bundles(kube_api, settings.cert_webhook_configuration) == [new["ca.crt"]] * 2


async def test_the_running_controller_recreates_a_deleted_secret_until_cancelled(
        kube_api: Any, kube_async: Any, settings: certs.CertControllerSettings) -> None:
    from kubernetes import client

    task = asyncio.create_task(certs.run_cert_controller(settings, kube_async))
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            with contextlib.suppress(client.ApiException):
                first = read_secret(kube_api, settings)
                break
        else:
            raise AssertionError("Secret not created")
        client.CoreV1Api(kube_api).delete_namespaced_secret(settings.cert_secret_name, settings.cert_namespace)
        for _ in range(100):
            await asyncio.sleep(0.1)
            with contextlib.suppress(client.ApiException):
                second = read_secret(kube_api, settings)
                if second.metadata.uid != first.metadata.uid:
                    break
        else:
            raise AssertionError("Secret not recreated")
        for _ in range(50):  # the new CA reaches the configuration too
            if bundles(kube_api, settings.cert_webhook_configuration)[0] == data_of(second)["ca.crt"]:
                break
            await asyncio.sleep(0.1)
        assert bundles(kube_api, settings.cert_webhook_configuration)[0] == data_of(second)["ca.crt"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def test_a_missing_webhook_configuration_is_not_an_error(
        kube_async: Any, namespace: str) -> None:
    s = certs.CertControllerSettings(cert_secret_name="tls", cert_namespace=namespace, cert_service_name="wh",
                                     cert_webhook_configuration=unique_name("absent"))
    result = await certs.reconcile(s, kube_async)
    assert result.secret_written and not result.ca_bundle_patched
