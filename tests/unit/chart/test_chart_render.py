"""What the chart renders: structure, admission settings, certificates, RBAC, resources, labels."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from chart_support import ALL_ON, NAMESPACE, RELEASE, container, env_of, find, kinds, render

from webhook import certs
from webhook import constants as wc

FULL = f"{RELEASE}-notebook-platform"


@pytest.fixture(scope="module")
def default() -> list[dict]:
    return render()


@pytest.fixture(scope="module")
def all_on() -> list[dict]:
    return render(ALL_ON)


# --- the webhook ------------------------------------------------------------------------------------------------

def test_webhook_runs_two_replicas_that_never_drop_below_desired_during_rollout(default: list[dict]) -> None:
    d = find(default, "Deployment", "-webhook")
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_webhook_pdb_keeps_one_pod_and_selects_exactly_the_webhook_pods(default: list[dict]) -> None:
    pdb = find(default, "PodDisruptionBudget", "-webhook")
    d = find(default, "Deployment", "-webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]


def test_webhook_pods_prefer_different_nodes_and_can_require_it(default: list[dict], all_on: list[dict]) -> None:
    soft = find(default, "Deployment", "-webhook")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = soft["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == wc.COMPONENT_VALUE
    hard = find(all_on, "Deployment", "-webhook")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard


def test_mutating_webhook_configuration_is_narrow_and_safe(default: list[dict]) -> None:
    mwc = find(default, "MutatingWebhookConfiguration")
    (hook,) = mwc["webhooks"]
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert hook["sideEffects"] == "None"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["failurePolicy"] == "Fail"
    assert 1 <= hook["timeoutSeconds"] <= 10
    assert hook["admissionReviewVersions"] == ["v1"]
    exprs = {e["key"]: e for e in hook["namespaceSelector"]["matchExpressions"]}
    assert exprs[wc.NAMESPACE_LABEL] == {"key": wc.NAMESPACE_LABEL, "operator": "In",
                                         "values": [wc.NAMESPACE_LABEL_VALUE]}
    excluded = exprs["kubernetes.io/metadata.name"]
    assert excluded["operator"] == "NotIn" and set(excluded["values"]) == {NAMESPACE, "kube-system"}


def test_webhook_namespace_selector_value_replaces_the_poddefaults_label_but_keeps_the_exclusions() -> None:
    objs = render(set_json={"webhook.namespaceSelector": {
        "matchLabels": {"tenant": "blue"},
        "matchExpressions": [{"key": "team", "operator": "Exists"}]}})
    sel = find(objs, "MutatingWebhookConfiguration")["webhooks"][0]["namespaceSelector"]
    assert sel["matchLabels"] == {"tenant": "blue"}
    exprs = {e["key"]: e for e in sel["matchExpressions"]}
    assert wc.NAMESPACE_LABEL not in exprs
    assert exprs["team"] == {"key": "team", "operator": "Exists"}
    assert set(exprs["kubernetes.io/metadata.name"]["values"]) == {NAMESPACE, "kube-system"}
    only_labels = render(set_json={"webhook.namespaceSelector": {"matchLabels": {"tenant": "blue"}}})
    sel = find(only_labels, "MutatingWebhookConfiguration")["webhooks"][0]["namespaceSelector"]
    assert [e["key"] for e in sel["matchExpressions"]] == ["kubernetes.io/metadata.name"]


def test_webhook_client_config_points_at_the_service_and_its_tls_port(default: list[dict]) -> None:
    svc = find(default, "Service", "-webhook")
    d = find(default, "Deployment", "-webhook")
    cc = find(default, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]
    assert cc["service"] == {"name": svc["metadata"]["name"], "namespace": NAMESPACE, "path": "/mutate",
                             "port": svc["spec"]["ports"][0]["port"]}
    assert svc["spec"]["ports"][0]["targetPort"] == "https"
    port = container(d)["ports"][0]
    assert port == {"name": "https", "containerPort": wc.DEFAULT_PORT, "protocol": "TCP"}
    assert svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()


def test_failure_policy_value_drives_both_the_configuration_and_the_webhook_setting(all_on: list[dict]) -> None:
    assert find(all_on, "MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Ignore"
    assert env_of(find(all_on, "Deployment", "-webhook"))["WEBHOOK_FAILURE_POLICY"] == "Ignore"


def test_webhook_probes_use_readyz_and_healthz_over_https(default: list[dict]) -> None:
    c = container(find(default, "Deployment", "-webhook"))
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}


def test_webhook_port_setting_moves_the_container_port(default: list[dict]) -> None:
    d = find(render(sets=("webhook.settings.port=9443",)), "Deployment", "-webhook")
    assert container(d)["ports"][0]["containerPort"] == 9443
    assert env_of(d)["WEBHOOK_PORT"] == "9443"


def test_a_stopping_webhook_pod_drains_before_sigterm_within_its_grace_period(default: list[dict]) -> None:
    d = find(default, "Deployment", "-webhook")
    assert container(d)["lifecycle"]["preStop"]["exec"]["command"] == [
        "notebook-platform-webhook-drain", "--seconds", "10"]
    assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 10
    longer = find(render(sets=("webhook.drainSeconds=20",)), "Deployment", "-webhook")
    assert container(longer)["lifecycle"]["preStop"]["exec"]["command"][-1] == "20"


# --- certificates -----------------------------------------------------------------------------------------------

def _secret_data(objs: list[dict]) -> dict[str, bytes]:
    return certs.decode_secret_data(find(objs, "Secret", "-webhook-tls"))


def test_self_signed_ca_bundle_trusts_the_rendered_serving_certificate(default: list[dict]) -> None:
    data = _secret_data(default)
    bundle = find(default, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
    assert base64.b64decode(bundle) == data[certs.CA_CERT_KEY]
    ca = certs.load_certs(data[certs.CA_CERT_KEY])[0]
    cert = certs.load_certs(data[certs.TLS_CERT_KEY])[0]
    assert certs.signed_by(cert, ca)


def test_helm_generated_certificates_satisfy_the_cert_controller_as_they_are(default: list[dict]) -> None:
    """The controller must not rewrite what Helm made at install (that would be a needless rotation)."""
    env = env_of(find(default, "Deployment", "-webhook"))
    names = certs.dns_names(env["WEBHOOK_CERT_SERVICE_NAME"], NAMESPACE)
    day = dt.timedelta(days=1)
    p = certs.plan(_secret_data(default), names, dt.datetime.now(dt.UTC), 3650 * day, 365 * day, 30 * day)
    assert p.data is None, p.reasons


def test_self_signed_mode_runs_the_cert_controller_with_the_chart_names(default: list[dict]) -> None:
    env = env_of(find(default, "Deployment", "-webhook"))
    assert env["WEBHOOK_CERT_CONTROLLER_ENABLED"] == "true"
    assert env["WEBHOOK_CERT_SECRET_NAME"] == find(default, "Secret", "-webhook-tls")["metadata"]["name"]
    mwc = find(default, "MutatingWebhookConfiguration")
    assert env["WEBHOOK_CERT_WEBHOOK_CONFIGURATION"] == mwc["metadata"]["name"]
    assert env["WEBHOOK_CERT_SERVICE_NAME"] == find(default, "Service", "-webhook")["metadata"]["name"]
    assert env["WEBHOOK_CERT_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["WEBHOOK_CERT_FILE"].endswith("/tls.crt") and env["WEBHOOK_KEY_FILE"].endswith("/tls.key")


def test_pods_mount_only_the_serving_pair_not_the_ca_key(default: list[dict]) -> None:
    spec = find(default, "Deployment", "-webhook")["spec"]["template"]["spec"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "certs"]
    assert {i["key"] for i in vol["secret"]["items"]} == {"tls.crt", "tls.key"}


def test_cert_manager_mode_issues_the_same_secret_and_injects_the_ca(all_on: list[dict]) -> None:
    assert not [o for o in all_on if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-webhook-tls")]
    mwc = find(all_on, "MutatingWebhookConfiguration")
    assert "caBundle" not in mwc["webhooks"][0]["clientConfig"]
    ns, name = mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    serving = find(all_on, "Certificate", "-webhook-serving")
    assert (ns, name) == (NAMESPACE, serving["metadata"]["name"])
    d = find(all_on, "Deployment", "-webhook")
    (vol,) = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "certs"]
    assert serving["spec"]["secretName"] == vol["secret"]["secretName"]
    svc = find(all_on, "Service", "-webhook")["metadata"]["name"]
    assert f"{svc}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    assert env_of(d)["WEBHOOK_CERT_CONTROLLER_ENABLED"] == "false"
    # No Secret writes and no webhook-configuration writes for the webhook in this mode.
    assert not [o for o in all_on if o["kind"] == "Role" and o["metadata"]["name"].endswith("-webhook-certs")]
    rules = find(all_on, "ClusterRole", "-webhook")["rules"]
    assert all("mutatingwebhookconfigurations" not in r["resources"] for r in rules)


def test_cert_manager_can_use_an_existing_issuer() -> None:
    objs = render(sets=("certManager.enabled=true", "certManager.issuerRef.name=corp-ca",
                        "certManager.issuerRef.kind=ClusterIssuer"))
    assert [o for o in objs if o["kind"] == "Issuer"] == []
    (cert,) = [o for o in objs if o["kind"] == "Certificate"]
    assert cert["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


# --- RBAC -------------------------------------------------------------------------------------------------------

def _rules(objs: list[dict], kind: str, suffix: str) -> set[tuple]:
    return {(g, r, tuple(sorted(rule["verbs"])), tuple(rule.get("resourceNames", [])))
            for rule in find(objs, kind, suffix)["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


def test_builder_may_review_tokens_and_access_and_handle_build_jobs_and_volume_agents_only(
    default: list[dict]
) -> None:
    assert _rules(default, "ClusterRole", "-builder") == {
        ("authentication.k8s.io", "tokenreviews", ("create",), ()),
        ("authorization.k8s.io", "subjectaccessreviews", ("create",), ()),
        ("batch", "jobs", ("create", "delete", "get", "list", "patch", "watch"), ()),
        ("", "pods", ("create", "delete", "get", "list", "watch"), ()),
        ("", "persistentvolumeclaims", ("get",), ()),
        ("", "pods/log", ("get",), ()),
    }


def test_the_volume_agents_run_the_builders_own_image(default: list[dict]) -> None:
    deployment = find(default, "Deployment", "-builder")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BUILDER_VOLUME_AGENT_IMAGE"] == container["image"]
    assert env["BUILDER_VOLUME_AGENT_IMAGE_PULL_POLICY"] == container["imagePullPolicy"]
    assert env["BUILDER_VOLUME_AGENT"] == "true" and env["BUILDER_WATCH_CACHE"] == "true"


def test_builds_permission_aggregates_into_edit_and_admin(default: list[dict]) -> None:
    role = find(default, "ClusterRole", "nbp-notebook-platform-builds-edit")
    assert role["metadata"]["name"] == "nbp-notebook-platform-builds-edit"
    labels = role["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert _rules(default, "ClusterRole", "nbp-notebook-platform-builds-edit") == {
        ("builder.notebook-platform.io", "builds", ("create", "delete", "get", "list"), ())}


def test_webhook_reads_poddefaults_and_writes_only_its_own_secret_and_configuration(default: list[dict]) -> None:
    mwc = find(default, "MutatingWebhookConfiguration")["metadata"]["name"]
    secret = find(default, "Secret", "-webhook-tls")["metadata"]["name"]
    assert _rules(default, "ClusterRole", "-webhook") == {
        (wc.GROUP, wc.PLURAL, ("get", "list", "watch"), ()),
        ("", "events", ("create",), ()),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ("get", "patch"), (mwc,)),
    }
    role = find(default, "Role", "-webhook-certs")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert _rules(default, "Role", "-webhook-certs") == {
        ("", "secrets", ("get", "update"), (secret,)), ("", "secrets", ("create",), ())}


def test_hub_may_provision_user_namespaces_without_escalate_bind_or_secrets(default: list[dict]) -> None:
    rules = _rules(default, "ClusterRole", "-hub")
    resources = {(g, r) for g, r, _, _ in rules}
    assert resources == {
        ("", "namespaces"), ("", "resourcequotas"), ("", "limitranges"), ("", "serviceaccounts"),
        ("", "persistentvolumeclaims"), ("", "pods"), ("", "events"), ("", "services"),
        ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
        ("builder.notebook-platform.io", "builds"), ("kubeflow.org", "poddefaults"),
    }
    verbs = {v for _, _, vs, _ in rules for v in vs}
    assert not verbs & {"escalate", "bind", "impersonate", "*"}
    events = [vs for g, r, vs, _ in rules if r == "events"]
    assert events == [("get", "list", "watch")]


def test_no_rule_anywhere_uses_wildcards_or_reads_secrets_cluster_wide(all_on: list[dict], default: list[dict]
                                                                      ) -> None:
    for objs in (default, all_on):
        for role in (o for o in objs if o["kind"] == "ClusterRole"):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role["metadata"]["name"]
                assert "secrets" not in rule["resources"], role["metadata"]["name"]


def test_every_binding_names_a_service_account_of_the_release(default: list[dict]) -> None:
    accounts = {o["metadata"]["name"] for o in default if o["kind"] == "ServiceAccount"}
    for b in (o for o in default if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        (subject,) = b["subjects"]
        assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
        assert subject["namespace"] == NAMESPACE


# --- every component ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values", ["default", "all_on"])
def test_every_container_has_requests_and_limits(values: str, request: pytest.FixtureRequest) -> None:
    for d in (o for o in request.getfixturevalue(values) if o["kind"] == "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), d


@pytest.mark.parametrize("values", ["default", "all_on"])
def test_every_object_carries_managed_by_and_component(values: str, request: pytest.FixtureRequest) -> None:
    for o in request.getfixturevalue(values):
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "notebook-platform", o["metadata"]["name"]
        assert labels["app.kubernetes.io/component"], o["metadata"]["name"]
        if o["kind"] == "Deployment":
            pod_labels = o["spec"]["template"]["metadata"]["labels"]
            assert pod_labels["app.kubernetes.io/managed-by"] == "notebook-platform"


def test_images_come_from_the_local_registry_by_default(default: list[dict]) -> None:
    images = {d["metadata"]["name"].removeprefix(f"{FULL}-"): container(d)["image"]
              for d in default if d["kind"] == "Deployment"}
    assert images == {c: f"registry.local:5000/notebook-platform/{c}:0.1.0"
                      for c in ("webhook", "builder", "hub", "proxy")}


def test_image_registry_and_tags_are_overridable(all_on: list[dict]) -> None:
    assert container(find(all_on, "Deployment", "-webhook"))["image"] == "registry.example.com/platform/webhook:1.2.4"
    assert container(find(all_on, "Deployment", "-hub"))["image"] == "registry.example.com/notebook-platform/hub:1.2.3"
    assert find(all_on, "Deployment", "-hub")["spec"]["template"]["spec"]["imagePullSecrets"] == [
        {"name": "registry-credentials"}]


def test_containers_run_unprivileged_with_read_only_root(default: list[dict]) -> None:
    for d in (o for o in default if o["kind"] == "Deployment"):
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        sc = container(d)["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}


def test_optional_objects_appear_only_when_enabled(default: list[dict], all_on: list[dict]) -> None:
    for kind in ("ServiceMonitor", "NetworkPolicy", "Certificate", "Issuer"):
        assert kind not in kinds(default)
        assert kind in kinds(all_on)


def test_service_monitors_scrape_the_metrics_ports(all_on: list[dict]) -> None:
    wh = find(all_on, "ServiceMonitor", "-webhook")["spec"]["endpoints"][0]
    assert (wh["port"], wh["path"], wh["scheme"]) == ("https", "/metrics", "https")
    assert wh["tlsConfig"]["ca"]["secret"]["key"] == "ca.crt"
    b = find(all_on, "ServiceMonitor", "-builder")["spec"]["endpoints"][0]
    assert (b["port"], b["path"]) == ("http", "/metrics")
    assert find(all_on, "ServiceMonitor", "-builder")["metadata"]["labels"]["release"] == "prometheus"


def test_network_policies_open_the_builder_and_hub_to_user_namespaces_only(all_on: list[dict]) -> None:
    user_ns = {"namespaceSelector": {"matchLabels": {wc.NAMESPACE_LABEL: wc.NAMESPACE_LABEL_VALUE}}}
    builder = find(all_on, "NetworkPolicy", "-builder")["spec"]["ingress"][0]
    assert user_ns in builder["from"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert monitoring in builder["from"] and len(builder["from"]) == 2
    proxy = find(all_on, "NetworkPolicy", "-proxy")["spec"]["ingress"]
    api = next(r for r in proxy if r["ports"][0]["port"] == "api")
    assert api["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "hub"


# --- hub and proxy --------------------------------------------------------------------------------------------------

def test_hub_is_one_recreated_replica_with_health_probes_under_base_url(default: list[dict], all_on: list[dict]
                                                                        ) -> None:
    d = find(default, "Deployment", "-hub")
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}
    assert container(d)["readinessProbe"]["httpGet"]["path"] == "/hub/health"
    assert container(find(all_on, "Deployment", "-hub"))["readinessProbe"]["httpGet"]["path"] == "/jupyter/hub/health"


def test_hub_and_proxy_share_the_proxy_token_and_the_proxy_targets_the_hub(default: list[dict]) -> None:
    hub, proxy = find(default, "Deployment", "-hub"), find(default, "Deployment", "-proxy")
    assert env_of(hub)["CONFIGPROXY_AUTH_TOKEN"] == env_of(proxy)["CONFIGPROXY_AUTH_TOKEN"]
    hub_svc = find(default, "Service", "-hub")["metadata"]["name"]
    assert f"--default-target=http://{hub_svc}:8081" in container(proxy)["command"]
    assert container(proxy)["command"][0] == "configurable-http-proxy"


def test_hub_db_volume_survives_uninstall(default: list[dict]) -> None:
    pvc = find(default, "PersistentVolumeClaim", "-hub-db")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_hub_extra_config_is_mounted_next_to_the_config(all_on: list[dict]) -> None:
    cm = find(all_on, "ConfigMap", "-hub")["data"]
    assert set(cm) == {"jupyterhub_config.py", "extra-10-logout.py", "extra-20-shutdown.py"}
    assert "configure_hub(c)" in cm["jupyterhub_config.py"]
    compile(cm["jupyterhub_config.py"], "jupyterhub_config.py", "exec")


def test_proxy_service_type_and_node_port(default: list[dict], all_on: list[dict]) -> None:
    assert find(default, "Service", "-proxy-public")["spec"]["type"] == "ClusterIP"
    svc = find(all_on, "Service", "-proxy-public")["spec"]
    assert svc["type"] == "NodePort" and svc["ports"][0]["nodePort"] == 31799


def test_builder_serves_https_from_a_tls_secret_when_one_is_named() -> None:
    import base64

    import yaml

    objs = render(sets=("builder.tls.secretName=builder-tls",))
    d = find(objs, "Deployment", "-builder")
    env = env_of(d)
    assert env["BUILDER_TLS_CERT_FILE"] == "/etc/builder/certs/tls.crt"
    assert env["BUILDER_TLS_KEY_FILE"] == "/etc/builder/certs/tls.key"
    assert container(d)["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    (vol,) = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "certs"]
    assert vol["secret"]["secretName"] == "builder-tls"
    hub = yaml.safe_load(base64.b64decode(find(objs, "Secret", "-hub")["data"]["settings.yaml"]))
    assert hub["builder"]["url"].startswith("https://")
    plain = find(render(), "Deployment", "-builder")
    assert "BUILDER_TLS_CERT_FILE" not in env_of(plain)
    assert container(plain)["readinessProbe"]["httpGet"]["scheme"] == "HTTP"


def hub_secret_and_settings(objs: list[dict]) -> tuple[dict, dict]:
    import yaml

    secret = find(objs, "Secret", "-hub")
    return secret["data"], yaml.safe_load(base64.b64decode(secret["data"]["settings.yaml"]))


def test_admin_users_get_a_generated_admin_password_distinct_from_the_shared_one(default: list[dict]) -> None:
    data, settings = hub_secret_and_settings(render(set_json={"hub": {"settings": {"admin_users": ["admin"]}}}))
    admin = base64.b64decode(data["admin-password"]).decode()
    assert settings["admin_users"] == ["admin"] and settings["admin_password"] == admin
    assert len(admin) >= 32  # JupyterHub's SharedPasswordAuthenticator refuses shorter admin passwords
    assert admin != settings["shared_password"]
    data, settings = hub_secret_and_settings(default)  # no admins: no admin password anywhere
    assert "admin-password" not in data and settings["admin_password"] is None
    data, settings = hub_secret_and_settings(render(set_json={"hub": {"settings": {
        "admin_users": ["root"], "admin_password": "an-operator-chosen-password-of-40-chars!"}}}))
    assert base64.b64decode(data["admin-password"]).decode() == settings["admin_password"] == \
        "an-operator-chosen-password-of-40-chars!"
