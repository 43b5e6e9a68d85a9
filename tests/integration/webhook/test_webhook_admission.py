"""The webhook as the apiserver calls it: a subprocess over TLS on 127.0.0.1, registered by a
MutatingWebhookConfiguration for this module's labelled namespaces. Pods are created with server-side dry
run (no node is needed) unless a test needs a real, denied create."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

from support import wait_for
from webhook_it import Rest, Webhook, certgen, main_env, make_pod, poddefault, registered, webhook_configuration

from webhook import constants as c

GCP = {"selector": {"matchLabels": {"add-gcp-secret": "true"}}, "desc": "add gcp credential",
       "volumeMounts": [{"name": "secret-volume", "mountPath": "/secret/gcp"}],
       "volumes": [{"name": "secret-volume", "secret": {"secretName": "gcp-secret"}}]}
TESTING = {"selector": {"matchLabels": {"testing": "true"}}, "desc": "Testing PodDefault",
           "env": [{"name": "POD_DEFAULT", "value": "Testing is enabled"},
                   {"name": "DB_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}]}


def add(rest: Rest, ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return rest.ok("POST", rest.poddefaults(ns), poddefault(name, spec))


def dry_run(rest: Rest, ns: str, pod: dict[str, Any]) -> dict[str, Any]:
    status, out = rest.create_pod(ns, pod)
    assert status == 201, out
    return out


def test_pod_in_enabled_namespace_gets_the_poddefaults(rest: Rest, enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    gcp = add(rest, ns, "add-gcp-secret", GCP)
    testing = add(rest, ns, "testing", TESTING)
    out = dry_run(rest, ns, make_pod(labels={"add-gcp-secret": "true", "testing": "true"}))
    env = main_env(out)
    assert env["POD_DEFAULT"]["value"] == "Testing is enabled"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "db-credentials", "key": "password"}
    assert {"name": "secret-volume", "mountPath": "/secret/gcp"} in out["spec"]["containers"][0]["volumeMounts"]
    assert any(v["name"] == "secret-volume" and v["secret"]["secretName"] == "gcp-secret"
               for v in out["spec"]["volumes"])
    ann = out["metadata"]["annotations"]
    assert ann[f"{c.APPLIED_ANNOTATION_PREFIX}add-gcp-secret"] == gcp["metadata"]["resourceVersion"]
    assert ann[f"{c.APPLIED_ANNOTATION_PREFIX}testing"] == testing["metadata"]["resourceVersion"]


def test_pod_without_matching_labels_is_untouched(rest: Rest, enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    add(rest, ns, "testing", TESTING)
    out = dry_run(rest, ns, make_pod(labels={"other": "true"}))
    assert "POD_DEFAULT" not in main_env(out)
    assert not any(k.startswith(c.ANNOTATION_PREFIX) for k in out["metadata"].get("annotations", {}))


def test_pod_in_namespace_without_the_label_is_never_sent_to_the_webhook(rest: Rest, plain_namespace: str,
                                                                          webhook: Webhook):
    add(rest, plain_namespace, "everything", {"selector": {}, "env": [{"name": "X", "value": "1"}]})
    before = admissions(webhook)
    out = dry_run(rest, plain_namespace, make_pod())
    assert "X" not in main_env(out)
    assert admissions(webhook) == before


def test_excluded_pod_is_untouched(rest: Rest, enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    add(rest, ns, "everything", {"selector": {}, "env": [{"name": "X", "value": "1"}]})
    pod = make_pod()
    pod["metadata"]["annotations"] = {c.EXCLUDE_ANNOTATION: "true"}
    assert "X" not in main_env(dry_run(rest, ns, pod))


def test_pod_with_generate_name_and_no_namespace_in_the_body_is_injected(rest: Rest,
                                                                        enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    add(rest, ns, "testing", TESTING)
    pod = make_pod(labels={"testing": "true"})
    del pod["metadata"]["name"]
    pod["metadata"]["generateName"] = "nb-"
    assert main_env(dry_run(rest, ns, pod))["POD_DEFAULT"]["value"] == "Testing is enabled"


def test_conflict_denies_the_pod_naming_both_poddefaults_and_records_events(rest: Rest,
                                                                          enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    add(rest, ns, "team-env", {"selector": {}, "env": [{"name": "STAGE", "value": "dev"}]})
    add(rest, ns, "prod-env", {"selector": {"matchLabels": {"prod": "true"}},
                               "env": [{"name": "STAGE", "value": "prod"}]})
    status, out = rest.create_pod(ns, make_pod(labels={"prod": "true"}), dry_run=False)  # denied: nothing is stored
    assert status == 400, out
    assert 'PodDefaults "prod-env" and "team-env"' in out["message"]
    assert 'env "STAGE"' in out["message"]

    def events_for(name: str) -> list[dict[str, Any]]:
        items = rest.ok("GET", f"/api/v1/namespaces/{ns}/events",
                        fieldSelector=f"involvedObject.name={name},involvedObject.kind=PodDefault")["items"]
        return [e for e in items if e["reason"] == c.EVENT_REASON_CONFLICT]

    for name in ("team-env", "prod-env"):
        events = wait_for(lambda n=name: events_for(n), timeout=20, what=f"conflict Event on {name}")
        assert 'env "STAGE"' in events[0]["message"] and events[0]["type"] == "Warning"


def test_dry_run_conflict_is_denied_without_events(rest: Rest, enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    add(rest, ns, "a", {"selector": {}, "labels": {"team": "a"}})
    add(rest, ns, "b", {"selector": {}, "labels": {"team": "b"}})
    status, out = rest.create_pod(ns, make_pod())
    assert status == 400 and 'label "team"' in out["message"]
    time.sleep(1)
    assert rest.ok("GET", f"/api/v1/namespaces/{ns}/events")["items"] == []


FULL = {
    "selector": {},
    "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"}}},
            {"name": "EMPTY", "value": ""}],
    "envFrom": [{"configMapRef": {"name": "settings", "optional": False}}],
    "volumes": [{"name": "s", "secret": {"secretName": "s"}},
                {"name": "cm", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a"}]}},
                {"name": "dapi", "downwardAPI": {"items": [{"path": "labels",
                                                            "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "audience": "x"}}]}},
                {"name": "scratch", "emptyDir": {"sizeLimit": "1024Mi"}},
                {"name": "host", "hostPath": {"path": "/data"}}],
    "volumeMounts": [{"name": "s", "mountPath": "/s", "readOnly": False}, {"name": "scratch", "mountPath": "/tmp/x"}],
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "imagePullSecrets": [{"name": "registry"}],
    "labels": {"team": "ml"},
    "annotations": {"example.com/owner": "ml"},
    "command": ["start.sh"],
    "initContainers": [{"name": "init", "image": "busybox:1", "command": ["true"]}],
    "sidecars": [{"name": "proxy", "image": "proxy:1", "ports": [{"containerPort": 8080}]}],
}


def reusable(pod: dict[str, Any]) -> dict[str, Any]:
    """A stored pod as a new create request: what a user gets with `kubectl get -o yaml`, minus server fields."""
    pod = copy.deepcopy(pod)
    pod.pop("status", None)
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        pod["metadata"].pop(key, None)
    return pod


def test_reapplying_to_a_pod_as_the_apiserver_stored_it_changes_nothing(rest: Rest, webhook: Webhook,
                                                                       enabled_namespace: Callable[..., str]):
    """The apiserver defaults what the webhook injected (secret modes, fieldRef apiVersion, 1024Mi -> 1Gi,
    sidecar fields); seeing that pod again (reinvocation, copied manifests) must be neither a conflict nor
    a change."""
    ns = enabled_namespace()
    add(rest, ns, "full", FULL)
    first = dry_run(rest, ns, make_pod())
    assert [ctr["name"] for ctr in first["spec"]["containers"]] == ["main", "proxy"]
    unchanged_before = admissions(webhook).get("unchanged", 0)
    second = dry_run(rest, ns, reusable(first))
    assert second["spec"] == first["spec"]
    assert second["metadata"]["annotations"] == first["metadata"]["annotations"]
    assert admissions(webhook).get("unchanged", 0) == unchanged_before + 1


def measure(predicate: Callable[[], bool], timeout: float = 30) -> float:
    start = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=0.02)
    return time.monotonic() - start


def test_poddefault_create_edit_delete_is_seen_at_next_admission(rest: Rest, enabled_namespace: Callable[..., str],
                                                                 record_property: Callable[[str, Any], None]):
    ns = enabled_namespace()
    pod = make_pod(labels={"testing": "true"})

    def env() -> dict[str, Any]:
        return main_env(dry_run(rest, ns, pod))

    delays: dict[str, float] = {}
    add(rest, ns, "testing", TESTING)
    delays["create"] = measure(lambda: "POD_DEFAULT" in env())
    current = rest.ok("GET", f"{rest.poddefaults(ns)}/testing")
    current["spec"]["env"][0]["value"] = "edited"
    rest.ok("PUT", f"{rest.poddefaults(ns)}/testing", current)
    delays["edit"] = measure(lambda: env().get("POD_DEFAULT", {}).get("value") == "edited")
    rest.ok("DELETE", f"{rest.poddefaults(ns)}/testing")
    delays["delete"] = measure(lambda: "POD_DEFAULT" not in env())
    for what, seconds in delays.items():
        record_property(f"poddefault_{what}_visible_ms", round(seconds * 1000, 1))
    print("poddefault change visible after (ms):", json.dumps({k: round(v * 1000, 1) for k, v in delays.items()}))
    assert all(seconds < 5 for seconds in delays.values()), delays


def test_metrics_are_served_over_tls(webhook: Webhook):
    with webhook.client() as client:
        text = client.get("/metrics").text
    assert "poddefault_webhook_admission_duration_seconds_count" in text
    assert "poddefault_webhook_cache_ready 1.0" in text


def test_renewed_certificate_is_served_without_restart(rest: Rest, webhook: Webhook,
                                                       enabled_namespace: Callable[..., str]):
    renewed = certgen.make_server(webhook.ca, cn="webhook-renewed")
    certgen.write(renewed, webhook.workdir)

    def served_cn() -> str:
        ctx = ssl.create_default_context(cadata=webhook.ca.cert_pem.decode())
        import socket

        with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
        return str(subject["commonName"])

    wait_for(lambda: served_cn() == "webhook-renewed", timeout=15, what="renewed certificate served")
    assert webhook.proc.poll() is None
    ns = enabled_namespace()
    add(rest, ns, "everything", {"selector": {}, "env": [{"name": "X", "value": "1"}]})
    assert main_env(dry_run(rest, ns, make_pod()))["X"]["value"] == "1"  # the apiserver still trusts it


def admissions(webhook: Webhook) -> dict[str, float]:
    """The webhook's outcome counters, read from /metrics."""
    with webhook.client() as client:
        text = client.get("/metrics").text
    out = {}
    for line in text.splitlines():
        if line.startswith("poddefault_webhook_admissions_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


class LateLabeller:
    """A second mutating webhook, ordered after ours, that adds the label `late: "true"`: the apiserver then
    calls our webhook again (reinvocationPolicy IfNeeded) with the pod it already mutated."""

    def __init__(self, ca: certgen.Pair, workdir: Any) -> None:
        import http.server
        import threading

        cert, key = certgen.write(certgen.make_server(ca, cn="late"), workdir, stem="late")
        patch = base64.b64encode(json.dumps([{"op": "add", "path": "/metadata/labels/late", "value": "true"}])
                                 .encode()).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                labels = review["request"]["object"]["metadata"].get("labels") or {}
                response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": True}
                if "late" not in labels:
                    response |= {"patchType": "JSONPatch", "patch": patch}
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": response}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_reinvocation_after_a_later_webhook_applies_what_its_label_selects(
        rest: Rest, webhook: Webhook, enabled_namespace: Callable[..., str]):
    ns = enabled_namespace()
    add(rest, ns, "full", FULL)
    add(rest, ns, "late", {"selector": {"matchLabels": {"late": "true"}}, "env": [{"name": "LATE", "value": "1"}]})
    late = LateLabeller(webhook.ca, webhook.workdir)
    config = webhook_configuration(f"zz-{webhook.config_name}-late", late.port, webhook.ca.cert_pem, webhook.labels)
    config["webhooks"][0]["name"] = "late.notebook-platform.io"
    try:
        with registered(rest, config):
            def reinvoked() -> dict[str, Any] | None:
                out = dry_run(rest, ns, make_pod())
                return out if out["metadata"].get("labels", {}).get("late") == "true" else None

            out = wait_for(reinvoked, timeout=30, what="the late webhook registered")
            assert isinstance(out, dict)
            # Our second call saw its own, apiserver-defaulted output: no conflict, and the newly
            # selected PodDefault was applied.
            assert main_env(out)["LATE"]["value"] == "1"
            assert "POD_NAME" in main_env(out)
            assert f"{c.APPLIED_ANNOTATION_PREFIX}late" in out["metadata"]["annotations"]
    finally:
        late.close()
