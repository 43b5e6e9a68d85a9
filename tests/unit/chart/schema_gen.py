"""Generates the chart's values.schema.json: chart-level keys written here, `<component>.settings` derived from
the services' settings classes, so the schema cannot drift from what the services read.

    .venv/bin/python tests/unit/chart/schema_gen.py          # rewrite charts/notebook-platform/values.schema.json
    .venv/bin/python tests/unit/chart/schema_gen.py --check  # exit 1 if the file is out of date

`test_chart_values.py` runs the check. Every object with named properties rejects unknown keys
(`additionalProperties: false`), so a typo in values fails `helm install` with the key's path.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = ROOT / "charts" / "notebook-platform" / "values.schema.json"

# Settings the chart derives from the deployment itself; they are not values (the test checks this list too).
CHART_DERIVED: dict[str, set[str]] = {
    "webhook": {"cert_file", "key_file", "kubeconfig", "cert_controller_enabled", "cert_secret_name",
                "cert_namespace", "cert_service_name", "cert_webhook_configuration"},
    "builder": {"kubeconfig", "tls_cert_file", "tls_key_file", "volume_agent_image",
                "volume_agent_image_pull_policy"},
    "hub": set(),
}


def settings_classes() -> dict[str, list[type]]:
    """Per component, the settings classes whose fields are its `settings` values."""
    sys.path.insert(0, str(ROOT))
    from builder.settings import Settings as BuilderSettings
    from hub_config.settings import HubSettings
    from webhook.certs import CertControllerSettings
    from webhook.settings import Settings as WebhookSettings

    return {"webhook": [WebhookSettings, CertControllerSettings], "builder": [BuilderSettings],
            "hub": [HubSettings]}


def settings_fields(component: str) -> set[str]:
    """The fields of a component's settings classes that are values (chart-derived ones removed)."""
    fields: set[str] = set()
    for cls in settings_classes()[component]:
        fields |= set(cls.model_fields)
    return fields - CHART_DERIVED[component]


def _clean(node: Any, prefix: str) -> Any:
    """Closes objects, renames $refs into the root's $defs under `prefix`, drops titles and `format: path`."""
    if isinstance(node, list):
        return [_clean(x, prefix) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _clean(v, prefix) for k, v in node.items() if k not in ("title", "writeOnly")}
    if out.get("format") == "path":
        del out["format"]
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/$defs/", f"#/$defs/{prefix}")
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def settings_schema(component: str, defs: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    prefix = component.capitalize()
    for cls in settings_classes()[component]:
        raw = cls.model_json_schema()
        for name, d in raw.get("$defs", {}).items():
            defs[prefix + name] = _clean(d, prefix)
        for name, p in raw["properties"].items():
            if name not in CHART_DERIVED[component]:
                props[name] = _clean(p, prefix)
    return {"type": "object", "description": f"{prefix} settings, field for field (see docs/install.md).",
            "properties": dict(sorted(props.items())), "additionalProperties": False}


def _obj(props: dict[str, Any], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if description:
        out["description"] = description
    return out


STR = {"type": "string"}
BOOL = {"type": "boolean"}
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
FREE_OBJ = {"type": "object"}
QUANTITY = {"type": ["string", "number"]}
RESOURCES = _obj({"requests": _obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}),
                  "limits": _obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY})},
                 "Requests and limits of the component's container.")
COMPONENT_IMAGE = _obj({"repository": {"type": "string", "minLength": 1},
                        "tag": {"type": "string", "description": "Empty: image.tag, else the appVersion."}})
SCHEDULING = {"nodeSelector": STR_MAP, "tolerations": {"type": "array", "items": FREE_OBJ},
              "priorityClassName": STR}


def build_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    component = {
        "webhook": _obj({
            "replicas": {"type": "integer", "minimum": 1},
            "image": COMPONENT_IMAGE, "resources": RESOURCES,
            "podDisruptionBudget": _obj({"enabled": BOOL, "minAvailable": {"type": ["integer", "string"]}}),
            "podAntiAffinity": {"enum": ["soft", "hard"]},
            # The preStop drain must end well inside the pod's 30 s grace period.
            "drainSeconds": {"type": "integer", "minimum": 0, "maximum": 25},
            "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 30},
            "namespaceSelector": _obj({
                "matchLabels": STR_MAP,
                "matchExpressions": {"type": "array", "items": {**_obj({
                    "key": {"type": "string", "minLength": 1},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": STR}}), "required": ["key", "operator"]}},
            }, "Namespaces the webhook serves; empty: notebook-platform.io/poddefaults=enabled."),
            **SCHEDULING,
            "settings": settings_schema("webhook", defs),
        }),
        "builder": _obj({
            "replicas": {"type": "integer", "minimum": 1},
            "tls": _obj({"secretName": {"type": "string", "description": "TLS Secret to serve HTTPS with."}}),
            "image": COMPONENT_IMAGE, "resources": RESOURCES, **SCHEDULING,
            "settings": settings_schema("builder", defs),
        }),
        "hub": _obj({
            "image": COMPONENT_IMAGE, "resources": RESOURCES,
            "persistence": _obj({"enabled": BOOL, "size": STR, "storageClass": {"type": ["string", "null"]}}),
            "extraConfig": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "Python snippets run after the settings, in name order."},
            **SCHEDULING,
            "settings": settings_schema("hub", defs),
        }),
        "proxy": _obj({
            "image": COMPONENT_IMAGE, "resources": RESOURCES,
            "service": _obj({"type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                             "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                             "nodePort": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                             "annotations": STR_MAP}),
            **SCHEDULING,
        }),
    }
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "notebook-platform chart values",
        "description": "Generated by tests/unit/chart/schema_gen.py from the chart keys and the services' "
                       "settings classes; do not edit by hand.",
        **_obj({
            "global": FREE_OBJ,
            "nameOverride": STR, "fullnameOverride": STR,
            "image": _obj({"registry": STR, "tag": STR,
                           "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                           "pullSecrets": {"type": "array", "items": STR}}),
            "podSecurityContext": FREE_OBJ, "containerSecurityContext": FREE_OBJ,
            **component,
            "certManager": _obj({
                "enabled": BOOL,
                "issuerRef": _obj({"name": STR, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": STR},
                                  "An existing issuer; empty name: a self-signed CA made by the chart."),
                "duration": {"type": "string", "pattern": "^[0-9]+(h|m|s)$"},
                "renewBefore": {"type": "string", "pattern": "^[0-9]+(h|m|s)$"},
            }),
            "metrics": _obj({"serviceMonitor": _obj({
                "enabled": BOOL, "interval": STR, "scrapeTimeout": STR, "labels": STR_MAP})}),
            "networkPolicy": _obj({"enabled": BOOL,
                                   "extraIngressNamespaceSelectors": {"type": "array", "items": FREE_OBJ}}),
        }),
    }
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


def render() -> str:
    return json.dumps(copy.deepcopy(build_schema()), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is out of date: run {Path(__file__).relative_to(ROOT)}", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
