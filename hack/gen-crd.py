#!/usr/bin/env python3
"""Generates the PodDefault CRD (charts/notebook-platform/crds/poddefaults.yaml) from the real apiserver.

Why generate: a PodDefault carries core/v1 types (EnvVar, EnvFromSource, Volume, VolumeMount, Toleration,
LocalObjectReference, Container). Copying their schemas by hand drifts from Kubernetes; reading them from
the pinned kube-apiserver's OpenAPI v3 document keeps the CRD exact, so a bad PodDefault is rejected
when it is written (naming the field), not when a user's pod fails to start.

The result is a structural schema as CRDs require: every `$ref` inlined, int-or-string and Quantity as
`x-kubernetes-int-or-string`, and nothing a CRD schema may not carry. Dropped on purpose:
- `default`: the apiserver would write defaults into stored PodDefaults, and YAML read back would no
  longer be what the user applied (and would differ from what Kubeflow's CRD stores);
- `enum`: OpenAPI lists the non-empty values only, yet `""` is valid for several fields (a toleration's
  `effect`), and Kubeflow's controller-gen CRD has no enums, so existing YAML could be refused;
- list/map types and patch strategies: they only matter for server-side apply merging;
- descriptions below the PodDefault's own fields, to keep the CRD under the 256 KiB that client-side
  `kubectl apply` can store in its annotation (`kubectl explain` still documents the top level).

Usage (the cluster from `make cluster` must be up):
    .venv/bin/python hack/gen-crd.py                # write the CRD
    .venv/bin/python hack/gen-crd.py --check        # exit 1 if the committed file is out of date
    .venv/bin/python hack/gen-crd.py --openapi f.json --version v1.34.4   # offline, from a saved document
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhook import constants as c  # noqa: E402  (one place for the group, names and labels)

OUT = ROOT / "charts" / "notebook-platform" / "crds" / "poddefaults.yaml"
CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
CRD_FORMATS = {"int32", "int64", "float", "double", "byte", "date", "date-time", "password", "uri", "uuid"}


def _array(item: str, description: str) -> dict[str, Any]:
    return {"description": description, "type": "array", "items": {"$ref": item}}


# The PodDefault spec, field by field as Kubeflow defines it (kubeflow/dashboard poddefault_types.go).
SPEC_FIELDS: dict[str, dict[str, Any]] = {
    "selector": {"$ref": META + "LabelSelector",
                 "description": "Selects the pods of this namespace the PodDefault applies to (by their labels). "
                                "Required; {} selects every pod."},
    "desc": {"type": "string", "description": "Human-readable description, shown to users choosing "
                                               "configurations in the hub."},
    "serviceAccountName": {"type": "string", "description": "Service account the pod runs as."},
    "automountServiceAccountToken": {"type": "boolean",
                                     "description": "Whether the service account token is mounted."},
    "env": _array(CORE + "EnvVar", "Environment variables for every container."),
    "envFrom": _array(CORE + "EnvFromSource", "Sources of environment variables for every container."),
    "volumes": _array(CORE + "Volume", "Volumes added to the pod."),
    "volumeMounts": _array(CORE + "VolumeMount", "Volume mounts for every container."),
    "annotations": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Annotations added to the pod."},
    "labels": {"type": "object", "additionalProperties": {"type": "string"},
               "description": "Labels added to the pod."},
    "tolerations": _array(CORE + "Toleration", "Tolerations added to the pod."),
    "command": {"type": "array", "items": {"type": "string"},
                "description": "Entrypoint for containers that have none."},
    "args": {"type": "array", "items": {"type": "string"},
             "description": "Arguments for containers that have none."},
    "imagePullSecrets": _array(CORE + "LocalObjectReference", "Image pull secrets added to the pod."),
    "initContainers": _array(CORE + "Container", "Init containers added to the pod."),
    "sidecars": _array(CORE + "Container", "Containers added to the pod."),
}


class Converter:
    """OpenAPI v3 component schemas -> a structural CRD schema (refs inlined)."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self._stack: list[str] = []

    def ref(self, ref: str) -> dict[str, Any]:
        name = ref.rsplit("/", 1)[-1]
        if name in (QUANTITY, INT_OR_STRING):
            out: dict[str, Any] = {"anyOf": [{"type": "integer"}, {"type": "string"}],
                                   "x-kubernetes-int-or-string": True}
            if name == QUANTITY:
                out["pattern"] = QUANTITY_PATTERN
            return out
        if name in self._stack:
            raise SystemExit(f"recursive schema {' -> '.join([*self._stack, name])}: not representable in a CRD")
        if name not in self.schemas:
            raise SystemExit(f"schema {name} not in the apiserver's OpenAPI document")
        self._stack.append(name)
        try:
            return self.convert(self.schemas[name], keep_description=False)
        finally:
            self._stack.pop()

    def convert(self, schema: dict[str, Any], keep_description: bool) -> dict[str, Any]:
        if "$ref" in schema:
            out = self.ref(schema["$ref"])
        elif "allOf" in schema and len(schema["allOf"]) == 1 and "$ref" in schema["allOf"][0]:
            out = self.ref(schema["allOf"][0]["$ref"])
        else:
            out = {}
            if "type" in schema:
                out["type"] = schema["type"]
            if schema.get("format") in CRD_FORMATS:
                out["format"] = schema["format"]
            if "properties" in schema:
                out["properties"] = {k: self.convert(v, False) for k, v in sorted(schema["properties"].items())}
            if schema.get("required"):
                out["required"] = sorted(schema["required"])
            if "items" in schema:
                out["items"] = self.convert(schema["items"], False)
            if isinstance(schema.get("additionalProperties"), dict):
                out["additionalProperties"] = self.convert(schema["additionalProperties"], False)
            if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
                out["x-kubernetes-preserve-unknown-fields"] = True
            if "type" not in out and "x-kubernetes-int-or-string" not in out:
                raise SystemExit(f"schema without a type is not structural: {json.dumps(schema)[:200]}")
        if keep_description and schema.get("description"):
            out = {"description": schema["description"], **out}
        return out


def spec_schema(schemas: dict[str, Any]) -> dict[str, Any]:
    conv = Converter(schemas)
    props = {name: conv.convert(field, keep_description=True) for name, field in SPEC_FIELDS.items()}
    return {"description": "What to add to the pods the selector matches (Kubeflow's PodDefault).",
            "type": "object", "required": ["selector"], "properties": props}


def crd(schemas: dict[str, Any], kube_version: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": c.CRD_NAME,
            "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE, c.COMPONENT_LABEL: c.COMPONENT_VALUE},
            "annotations": {"notebook-platform.io/generated-by":
                            f"hack/gen-crd.py from the OpenAPI v3 of kube-apiserver {kube_version}"},
        },
        "spec": {
            "group": c.GROUP,
            "names": {"kind": c.KIND, "listKind": f"{c.KIND}List", "plural": c.PLURAL,
                      "singular": c.KIND.lower()},
            "scope": "Namespaced",
            "versions": [{
                "name": c.VERSION,
                "served": True,
                "storage": True,
                "additionalPrinterColumns": [
                    {"name": "Description", "type": "string", "jsonPath": ".spec.desc"},
                    {"name": "Selector", "type": "string", "jsonPath": ".spec.selector"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "description": "PodDefault adds env, volumes, tolerations and more to the pods of its "
                                   "namespace that its selector matches, when they are created.",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(schemas),
                    },
                }},
            }],
        },
    }


def fetch(kubeconfig: Path) -> tuple[dict[str, Any], str]:
    """The core/v1 OpenAPI v3 document and the server's version, through the admin kubeconfig."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        headers = {"Accept": "application/json"}
        token = api.configuration.get_api_key_with_prefix("BearerToken")  # client certificates need nothing
        if token:
            headers["Authorization"] = token
        resp = api.rest_client.request("GET", f"{api.configuration.host}/openapi/v3/api/v1", headers=headers)
        if resp.status != 200:
            raise SystemExit(f"GET /openapi/v3/api/v1: HTTP {resp.status}")
        doc = json.loads(resp.read() if callable(getattr(resp, "read", None)) else resp.data)
        version = client.VersionApi(api).get_code().git_version
    finally:
        api.close()
    return doc, version


def render(doc: dict[str, Any], version: str) -> str:
    header = ("# Generated by hack/gen-crd.py from the kube-apiserver's OpenAPI v3 document; do not edit.\n"
              "# Regenerate: .venv/bin/python hack/gen-crd.py (with `make cluster` running).\n")
    body = yaml.safe_dump(crd(doc["components"]["schemas"], version), sort_keys=False, width=120)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".local" / "kubeconfig")
    parser.add_argument("--openapi", type=Path, help="a saved /openapi/v3/api/v1 document instead of the server")
    parser.add_argument("--version", default="(from --openapi)", help="server version to record with --openapi")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = parser.parse_args(argv)

    if args.openapi:
        doc, version = json.loads(args.openapi.read_text()), args.version
    else:
        doc, version = fetch(args.kubeconfig)
    text = render(doc, version)
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run hack/gen-crd.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out.relative_to(ROOT)} ({len(text)} bytes, kube-apiserver {version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
