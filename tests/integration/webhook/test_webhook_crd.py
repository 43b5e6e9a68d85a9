"""The generated PodDefault CRD on the real apiserver: Kubeflow's YAML applies unchanged, bad PodDefaults
are refused naming the field, and `kubectl get` shows the printer columns."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

# Kubeflow's documented PodDefaults, written out in their published shape.
KUBEFLOW_EXAMPLES = """
apiVersion: "kubeflow.org/v1alpha1"
kind: PodDefault
metadata:
  name: add-gcp-secret
spec:
 selector:
  matchLabels:
    add-gcp-secret: "true"
 desc: "add gcp credential"
 volumeMounts:
 - name: secret-volume
   mountPath: /secret/gcp
 volumes:
 - name: secret-volume
   secret:
    secretName: gcp-secret
---
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata:
  name: testing
spec:
  selector:
    matchLabels:
      testing: "true"
  desc: "Testing PodDefault"
  env:
  - name: POD_DEFAULT
    value: "Testing is enabled"
  - name: DB_PASSWORD
    valueFrom:
      secretKeyRef:
        name: db-credentials
        key: password
---
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata:
  name: access-ml-pipeline
spec:
  desc: Allow access to Kubeflow Pipelines
  selector:
    matchLabels:
      access-ml-pipeline: "true"
  env:
  - name: KF_PIPELINES_SA_TOKEN_PATH
    value: /var/run/secrets/kubeflow/pipelines/token
  volumes:
  - name: volume-kf-pipeline-token
    projected:
      sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 7200
          audience: pipelines.kubeflow.org
  volumeMounts:
  - mountPath: /var/run/secrets/kubeflow/pipelines
    name: volume-kf-pipeline-token
    readOnly: true
---
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata:
  name: inject-containers
spec:
  desc: PodDefault to inject initContainers and sidecars
  selector:
    matchLabels:
      kubeflow.org/inject-containers: "true"
  initContainers:
  - name: init-kubectl
    image: gcr.io/cloud-builders/kubectl
    imagePullPolicy: Always
    command: ["echo", "kubectl image pulled"]
  sidecars:
  - name: kubectl
    image: gcr.io/cloud-builders/kubectl
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep infinity"]
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          apiVersion: v1
          fieldPath: metadata.name
    resources:
      limits: {cpu: 100m, memory: 64Mi}
    ports:
    - containerPort: 8080
---
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata:
  name: gpu-tolerations
spec:
  desc: Run on GPU nodes
  selector:
    matchExpressions:
    - {key: accelerator, operator: In, values: [nvidia]}
  tolerations:
  - key: nvidia.com/gpu
    operator: Exists
    effect: NoSchedule
  - operator: Exists
    effect: ""
  imagePullSecrets:
  - name: registry-credentials
  serviceAccountName: gpu-user
  automountServiceAccountToken: false
  labels: {gpu: "true"}
  annotations: {example.com/gpu: "1"}
  command: ["/usr/local/bin/start.sh"]
  args: ["--gpu"]
  envFrom:
  - configMapRef: {name: cuda-settings}
  - prefix: DB_
    secretRef: {name: db, optional: true}
"""


def test_crd_is_structural_with_printer_columns(poddefault_crd: str, rest: Any):
    crd = rest.ok("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{poddefault_crd}")
    version = crd["spec"]["versions"][0]
    assert [col["name"] for col in version["additionalPrinterColumns"]] == ["Description", "Selector", "Age"]
    assert version["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"] == ["selector"]
    conditions = {x["type"]: x["status"] for x in crd["status"]["conditions"]}
    assert conditions.get("NonStructuralSchema") in (None, "False")


def test_kubeflow_example_poddefaults_apply_unchanged(cluster: Any, poddefault_crd: str, namespace: str):
    out = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=KUBEFLOW_EXAMPLES)
    assert out.stdout.count("created") == 5
    stored = json.loads(cluster.kubectl("get", "poddefaults", "-n", namespace, "-o", "json").stdout)["items"]
    by_name = {pd["metadata"]["name"]: pd for pd in stored}
    for doc in yaml.safe_load_all(KUBEFLOW_EXAMPLES):
        # Nothing pruned, nothing defaulted: what was applied is what the webhook will read.
        assert by_name[doc["metadata"]["name"]]["spec"] == doc["spec"]


def test_kubectl_get_shows_description_and_selector(cluster: Any, poddefault_crd: str, namespace: str):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=KUBEFLOW_EXAMPLES)
    table = cluster.kubectl("get", "poddefaults", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "DESCRIPTION", "SELECTOR", "AGE"]
    assert "add gcp credential" in table and '{"matchLabels":{"add-gcp-secret":"true"}}' in table


INVALID = [
    # (spec, fragments of the error)
    ({"desc": "no selector"}, ["spec.selector", "Required value"]),
    ({"selector": {}, "env": [{"value": "no name"}]}, ["spec.env[0].name", "Required value"]),
    ({"selector": {}, "env": "X=1"}, ["spec.env", "must be of type array"]),
    ({"selector": {}, "volumeMounts": [{"name": "v"}]}, ["spec.volumeMounts[0].mountPath", "Required value"]),
    ({"selector": {}, "volumes": [{"secret": {"secretName": "s"}}]}, ["spec.volumes[0].name", "Required value"]),
    ({"selector": {}, "tolerations": [{"key": "k", "tolerationSeconds": "soon"}]},
     ["spec.tolerations[0].tolerationSeconds", "must be of type integer"]),
    ({"selector": {}, "sidecars": [{"image": "x"}]}, ["spec.sidecars[0].name", "Required value"]),
    ({"selector": {}, "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
     ["spec.env[0].valueFrom.secretKeyRef.key", "Required value"]),
    ({"selector": {"matchLabels": {"a": 1}}}, ["spec.selector.matchLabels.a", "must be of type string"]),
    ({"selector": {}, "volumes": [{"name": "e", "emptyDir": {"sizeLimit": "lots"}}]},
     ["spec.volumes[0].emptyDir.sizeLimit", "should match"]),
]


@pytest.mark.parametrize(("spec", "fragments"), INVALID, ids=[f[0] for _, f in INVALID])
def test_invalid_poddefault_is_rejected_naming_the_field(cluster: Any, poddefault_crd: str, namespace: str,
                                                        spec: dict[str, Any], fragments: list[str]):
    doc = {"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault", "metadata": {"name": "bad"}, "spec": spec}
    with pytest.raises(subprocess.CalledProcessError) as info:
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(doc))
    for fragment in fragments:
        assert fragment in info.value.stderr


def test_poddefault_without_spec_is_rejected(cluster: Any, poddefault_crd: str, namespace: str):
    doc = {"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault", "metadata": {"name": "empty"}}
    with pytest.raises(subprocess.CalledProcessError) as info:
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(doc))
    assert "spec: Required value" in info.value.stderr
